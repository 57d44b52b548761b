//! How the domain is asked to end: the toolstack's `control/shutdown` key.
//!
//! When the runtime starts it advertises `control/feature-poweroff` and
//! `control/feature-reboot` (so `xl shutdown` and `xl reboot` use the PV
//! protocol, not ACPI) and watches `control/shutdown`. When the toolstack
//! writes a request there, the runtime clears the key (the acknowledgement
//! xl waits for) and returns the request, and the kernel ends the domain
//! with the matching `SCHEDOP_shutdown` reason. Suspend is not implemented, so
//! `control/feature-suspend` is never written.
//!
//! A read of the key that timed out (xenstored stalled) is owed: the event
//! that asked for it has been consumed and no other may come, so the loop
//! reads the key again once xenstored answers ([`Lifecycle::check_owed`]).
//! Never: retry a read that failed any other way (that would be a request
//! every turn).

use xen_pv::Hypervisor;
use xen_pv::xenstore::{Xenstore, XenstoreError};

/// What the toolstack asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// `poweroff` (and `halt`): end the domain.
    Poweroff,
    /// `reboot`: end it and let the toolstack start it again.
    Reboot,
}

/// A `control/shutdown` value this kernel does not act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedRequest<'a>(pub &'a str);

impl ShutdownRequest {
    /// Interprets a `control/shutdown` value; an empty value is no request.
    pub fn parse(value: &str) -> Result<Option<Self>, UnsupportedRequest<'_>> {
        match value.trim_end_matches('\0') {
            "" => Ok(None),
            "poweroff" | "halt" => Ok(Some(Self::Poweroff)),
            "reboot" => Ok(Some(Self::Reboot)),
            other => Err(UnsupportedRequest(other)),
        }
    }
}

/// The watched key, relative to the domain's home path.
pub const SHUTDOWN_KEY: &str = "control/shutdown";
/// The token of the watch on [`SHUTDOWN_KEY`].
pub const SHUTDOWN_TOKEN: &str = "xenecho-shutdown";
/// The features written at boot.
pub const FEATURE_KEYS: [&str; 2] = ["control/feature-poweroff", "control/feature-reboot"];

/// The runtime's side of the protocol: the features, the watch, and a
/// read that is owed.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Whether a read of [`SHUTDOWN_KEY`] timed out since the last one that
    /// worked.
    check_owed: bool,
}

impl Lifecycle {
    /// Advertises the features and watches `control/shutdown`.
    pub fn init<H: Hypervisor>(store: &mut Xenstore<'_, H>) -> Result<Self, XenstoreError> {
        for key in FEATURE_KEYS {
            store.write(key, "1")?;
        }
        store.watch(SHUTDOWN_KEY, SHUTDOWN_TOKEN)?;
        Ok(Self::default())
    }

    /// Whether [`SHUTDOWN_KEY`] must be read again (without a watch event)
    /// because the last read timed out.
    pub fn check_owed(&self) -> bool {
        self.check_owed
    }

    /// Acts on a watch event for [`SHUTDOWN_TOKEN`] (or an owed check):
    /// returns a shutdown request if the toolstack made one (and
    /// acknowledges it).
    pub fn on_watch_event<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>) -> Option<ShutdownRequest> {
        let outcome = store.read(SHUTDOWN_KEY);
        let timed_out = outcome == Err(XenstoreError::TimedOut);
        let was_owed = core::mem::replace(&mut self.check_owed, timed_out);
        let value = match outcome {
            Ok(value) => value,
            Err(XenstoreError::NotFound) => return None,
            Err(XenstoreError::TimedOut) if was_owed => return None, // said once already
            Err(error) => {
                log::warn!("reading {SHUTDOWN_KEY}: {error:?}");
                return None;
            }
        };
        match ShutdownRequest::parse(&value) {
            Ok(None) => None,
            Ok(Some(request)) => {
                if let Err(error) = store.write(SHUTDOWN_KEY, "") {
                    log::warn!("acknowledging {SHUTDOWN_KEY}: {error:?}");
                }
                Some(request)
            }
            Err(unsupported) => {
                log::warn!("{SHUTDOWN_KEY} = {:?}: not supported, ignored", unsupported.0);
                let _ = store.write(SHUTDOWN_KEY, "");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_toolstack_requests() {
        assert_eq!(ShutdownRequest::parse(""), Ok(None));
        assert_eq!(ShutdownRequest::parse("poweroff"), Ok(Some(ShutdownRequest::Poweroff)));
        assert_eq!(ShutdownRequest::parse("halt"), Ok(Some(ShutdownRequest::Poweroff)));
        assert_eq!(ShutdownRequest::parse("reboot"), Ok(Some(ShutdownRequest::Reboot)));
        assert_eq!(ShutdownRequest::parse("suspend"), Err(UnsupportedRequest("suspend")));
        assert_eq!(ShutdownRequest::parse("reboot\0"), Ok(Some(ShutdownRequest::Reboot)));
    }
}
