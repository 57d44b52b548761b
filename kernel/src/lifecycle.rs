//! How the domain is asked to end: the toolstack's `control/shutdown` key.
//!
//! At boot the kernel advertises `control/feature-poweroff` and
//! `control/feature-reboot` (so `xl shutdown` and `xl reboot` use the PV
//! protocol, not ACPI) and watches `control/shutdown`. When the toolstack
//! writes a request there, the kernel clears the key (the acknowledgement
//! xl waits for), lets the appliance stop, and ends the domain with the
//! matching `SCHEDOP_shutdown` reason. Suspend is not implemented, so
//! `control/feature-suspend` is never written.

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

#[cfg(target_os = "none")]
pub use platform::*;

#[cfg(target_os = "none")]
mod platform {
    use super::*;
    use xen_pv::xenstore::XenstoreError;

    /// Advertises the features and watches `control/shutdown`.
    pub fn init() -> Result<(), XenstoreError> {
        let mut store = crate::pv::xenstore();
        for key in FEATURE_KEYS {
            store.write(key, "1")?;
        }
        store.watch(SHUTDOWN_KEY, SHUTDOWN_TOKEN)
    }

    /// Acts on a watch event for [`SHUTDOWN_TOKEN`]: returns a shutdown
    /// request if the toolstack made one (and acknowledges it).
    pub fn on_watch_event(store: &mut crate::pv::XenstoreGuard) -> Option<ShutdownRequest> {
        read_request(store)
    }

    fn read_request(store: &mut crate::pv::XenstoreGuard) -> Option<ShutdownRequest> {
        let value = match store.read(SHUTDOWN_KEY) {
            Ok(value) => value,
            Err(XenstoreError::NotFound) => return None,
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
