//! How the domain is asked to end: the toolstack's `control/shutdown` key.
//!
//! When the runtime starts it advertises what it does with the toolstack's
//! requests ([`FEATURES`]): `control/feature-poweroff` and
//! `control/feature-reboot` are 1 (so `xl shutdown` and `xl reboot` use the
//! PV protocol, not ACPI), and `control/feature-suspend` is what
//! [`SUSPEND_SUPPORTED`] says: 1 on x86_64, 0 on ARM64 (Xen has no save or
//! migration there). Then it watches `control/shutdown`.
//!
//! A request is acknowledged only if it will be carried out, as Linux
//! does: for `poweroff`, `halt` and `reboot` the runtime clears the key (the
//! acknowledgement the toolstack waits for) and returns the request, and
//! the kernel ends the domain with the matching `SCHEDOP_shutdown` reason;
//! for `suspend`, where supported, it clears the key and the event loop
//! suspends the domain ([`Request::Suspend`]; after a resume in a new
//! domain [`Lifecycle::resumed`] writes the features and sets the watch
//! again). Any other value (`suspend` where it is not supported, or one no
//! toolstack writes) is left as it is, and said once in the log: the
//! toolstack then gives up at its own timeout and clears the key itself,
//! and the appliance keeps serving. Never
//! clear a request that will not be carried out: to the toolstack, a cleared
//! key means "yes", and libxl would then wait for a suspend that never
//! comes and report that the guest did not suspend (see
//! `docs/lifecycle.md`).
//!
//! A read of the key that timed out (xenstored stalled) is owed: the event
//! that asked for it has been consumed and no other may come, so the loop
//! reads the key again once xenstored answers ([`Lifecycle::check_owed`]).
//! Never: retry a read that failed any other way (that would be a request
//! every turn).

use alloc::string::{String, ToString};
use xen_pv::Hypervisor;
use xen_pv::xenstore::{Xenstore, XenstoreError};

/// What the toolstack asked for, among the requests this kernel carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownRequest {
    /// `poweroff` (and `halt`): end the domain.
    Poweroff,
    /// `reboot`: end it and let the toolstack start it again.
    Reboot,
}

/// What the toolstack asked for, among the requests the runtime carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// End the domain.
    End(ShutdownRequest),
    /// Suspend it (`xl save`, `xl migrate`): the event loop quiesces the
    /// network, suspends through the platform, and carries on after.
    Suspend,
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

/// Whether this kernel carries out `control/shutdown = suspend` (and says
/// so with `control/feature-suspend = 1`): on x86_64 (PVH). Xen has no
/// save, restore or migration on ARM.
pub const SUSPEND_SUPPORTED: bool = cfg!(target_arch = "x86_64");

/// The watched key, relative to the domain's home path.
pub const SHUTDOWN_KEY: &str = "control/shutdown";
/// The token of the watch on [`SHUTDOWN_KEY`].
pub const SHUTDOWN_TOKEN: &str = "xenecho-shutdown";
/// The features written at boot, with their values: 1 for a request this
/// kernel carries out, 0 for one it does not (a toolstack that reads them
/// need not ask, or wait).
pub const FEATURES: [(&str, &str); 3] = features(SUSPEND_SUPPORTED);

/// The features, for a kernel that does (or does not) suspend.
pub const fn features(suspend_supported: bool) -> [(&'static str, &'static str); 3] {
    [
        ("control/feature-poweroff", "1"),
        ("control/feature-reboot", "1"),
        ("control/feature-suspend", if suspend_supported { "1" } else { "0" }),
    ]
}

/// The runtime's side of the protocol: the features, the watch, a read
/// that is owed, and the request left unacknowledged.
#[derive(Debug)]
pub struct Lifecycle {
    /// Whether `suspend` is carried out ([`SUSPEND_SUPPORTED`] but in tests).
    suspend_supported: bool,
    /// Whether a read of [`SHUTDOWN_KEY`] timed out since the last one that
    /// worked.
    check_owed: bool,
    /// The unsupported value in [`SHUTDOWN_KEY`] now, once said in the log
    /// (until the key changes to another value).
    refused: Option<String>,
    /// How many unsupported requests were left unacknowledged.
    refused_count: u64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new(SUSPEND_SUPPORTED)
    }
}

impl Lifecycle {
    /// The protocol's state before anything was written, for a kernel that
    /// does (or does not) suspend.
    pub fn new(suspend_supported: bool) -> Self {
        Self { suspend_supported, check_owed: false, refused: None, refused_count: 0 }
    }

    /// Advertises the features and watches `control/shutdown`. A feature
    /// the toolstack did not make writable is said in the log, and the
    /// requests are watched all the same; only a failed watch is an error.
    pub fn init<H: Hypervisor>(store: &mut Xenstore<'_, H>) -> Result<Self, XenstoreError> {
        Self::init_with(store, SUSPEND_SUPPORTED)
    }

    /// [`Self::init`] for a kernel that does (or does not) suspend.
    pub fn init_with<H: Hypervisor>(
        store: &mut Xenstore<'_, H>,
        suspend_supported: bool,
    ) -> Result<Self, XenstoreError> {
        let lifecycle = Self::new(suspend_supported);
        lifecycle.advertise(store)?;
        Ok(lifecycle)
    }

    /// After a resume in a new domain, whose xenstore home and connection
    /// are new: writes the features and sets the watch again (its first
    /// event reads the key, empty in the new domain).
    pub fn resumed<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>) -> Result<(), XenstoreError> {
        self.check_owed = false;
        self.refused = None;
        self.advertise(store)
    }

    fn advertise<H: Hypervisor>(&self, store: &mut Xenstore<'_, H>) -> Result<(), XenstoreError> {
        for (key, value) in features(self.suspend_supported) {
            if let Err(error) = store.write(key, value) {
                log::warn!("xenstore: cannot write {key} = {value}: {error:?}");
            }
        }
        store.watch(SHUTDOWN_KEY, SHUTDOWN_TOKEN)
    }

    /// From now on `suspend` is not carried out (the domain is ending: it
    /// drains): it is left unacknowledged and said once, as where suspend
    /// is not supported. The feature key is left as it was.
    pub fn refuse_suspend(&mut self) {
        self.suspend_supported = false;
    }

    /// Whether [`SHUTDOWN_KEY`] must be read again (without a watch event)
    /// because the last read timed out.
    pub fn check_owed(&self) -> bool {
        self.check_owed
    }

    /// How many requests this kernel does not carry out were left
    /// unacknowledged (each counted, and logged, once).
    pub fn refused_requests(&self) -> u64 {
        self.refused_count
    }

    /// Acts on a watch event for [`SHUTDOWN_TOKEN`] (or an owed check):
    /// returns a request this kernel carries out, acknowledged; leaves any
    /// other value in the key.
    pub fn on_watch_event<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>) -> Option<Request> {
        let outcome = store.read(SHUTDOWN_KEY);
        let timed_out = outcome == Err(XenstoreError::TimedOut);
        let was_owed = core::mem::replace(&mut self.check_owed, timed_out);
        let value = match outcome {
            Ok(value) => value,
            Err(XenstoreError::NotFound) => {
                self.refused = None;
                return None;
            }
            Err(XenstoreError::TimedOut) if was_owed => return None, // said once already
            Err(error) => {
                log::warn!("reading {SHUTDOWN_KEY}: {error:?}");
                return None;
            }
        };
        let request = match ShutdownRequest::parse(&value) {
            Ok(None) => None,
            Ok(Some(request)) => Some(Request::End(request)),
            Err(UnsupportedRequest("suspend")) if self.suspend_supported => Some(Request::Suspend),
            Err(UnsupportedRequest(unsupported)) => {
                if self.refused.as_deref() != Some(unsupported) {
                    log::warn!("{SHUTDOWN_KEY} = {unsupported:?}: not supported, left unacknowledged");
                    self.refused = Some(unsupported.to_string());
                    self.refused_count += 1;
                }
                return None;
            }
        };
        self.refused = None;
        if request.is_some() {
            // Cleared before the domain ends or suspends: the toolstack
            // waits for this.
            if let Err(error) = store.write(SHUTDOWN_KEY, "") {
                log::warn!("acknowledging {SHUTDOWN_KEY}: {error:?}");
            }
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_pv::event_channel::EventChannels;
    use xen_sim::{SimXen, XENSTORE_PORT};

    /// Runs `test` with the guest's xenstore client on `xen`.
    fn with_store<R>(xen: &SimXen, test: impl FnOnce(&mut Xenstore<'_, SimXen>) -> R) -> R {
        let events = EventChannels::new(xen, xen.shared_info());
        let mut store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
        test(&mut store)
    }

    /// `key` under the guest's home, as dom0 reads it.
    fn dom0_reads(xen: &SimXen, key: &str) -> Option<std::string::String> {
        xen.with_xenstore(|server| server.read_as_dom0(key))
    }

    /// The toolstack writes `value` to `control/shutdown`; the guest takes
    /// the watch event.
    fn request(
        xen: &SimXen,
        store: &mut Xenstore<'_, SimXen>,
        lifecycle: &mut Lifecycle,
        value: &str,
    ) -> Option<Request> {
        xen.with_xenstore(|server| server.write_as_dom0(SHUTDOWN_KEY, value));
        lifecycle.on_watch_event(store)
    }

    const POWEROFF: Option<Request> = Some(Request::End(ShutdownRequest::Poweroff));
    const REBOOT: Option<Request> = Some(Request::End(ShutdownRequest::Reboot));

    #[test]
    fn parses_the_toolstack_requests() {
        assert_eq!(ShutdownRequest::parse(""), Ok(None));
        assert_eq!(ShutdownRequest::parse("poweroff"), Ok(Some(ShutdownRequest::Poweroff)));
        assert_eq!(ShutdownRequest::parse("halt"), Ok(Some(ShutdownRequest::Poweroff)));
        assert_eq!(ShutdownRequest::parse("reboot"), Ok(Some(ShutdownRequest::Reboot)));
        assert_eq!(ShutdownRequest::parse("suspend"), Err(UnsupportedRequest("suspend")));
        assert_eq!(ShutdownRequest::parse("reboot\0"), Ok(Some(ShutdownRequest::Reboot)));
    }

    #[test]
    fn advertises_poweroff_reboot_and_suspend_where_supported() {
        for supported in [true, false] {
            let xen = SimXen::new(1);
            with_store(&xen, |store| Lifecycle::init_with(store, supported).expect("init"));
            assert_eq!(dom0_reads(&xen, "control/feature-poweroff").as_deref(), Some("1"));
            assert_eq!(dom0_reads(&xen, "control/feature-reboot").as_deref(), Some("1"));
            let expected = if supported { "1" } else { "0" };
            assert_eq!(dom0_reads(&xen, "control/feature-suspend").as_deref(), Some(expected));
        }
        assert_eq!(SUSPEND_SUPPORTED, cfg!(target_arch = "x86_64"), "x86_64 suspends, ARM64 does not");
        assert_eq!(FEATURES, features(SUSPEND_SUPPORTED));
    }

    #[test]
    fn suspend_where_supported_is_acknowledged_and_returned() {
        let xen = SimXen::new(1);
        with_store(&xen, |store| {
            let mut lifecycle = Lifecycle::init_with(store, true).expect("init");
            assert_eq!(request(&xen, store, &mut lifecycle, "suspend"), Some(Request::Suspend));
            assert_eq!(dom0_reads(&xen, SHUTDOWN_KEY).as_deref(), Some(""), "acknowledged");
            assert_eq!(lifecycle.refused_requests(), 0);
        });
    }

    /// After a resume in a new domain, the features and the watch are set
    /// again in the new home.
    #[test]
    fn resumed_advertises_and_watches_again() {
        let xen = SimXen::new(1);
        let events = EventChannels::new(&xen, xen.shared_info());
        let mut store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
        let mut lifecycle = Lifecycle::init_with(&mut store, true).expect("init");
        xen.restore_in_new_domain();
        store.resume(xen.xenstore_port());
        assert_eq!(dom0_reads(&xen, "control/feature-suspend"), None, "a new home");
        lifecycle.resumed(&mut store).expect("the watch is set again");
        assert_eq!(dom0_reads(&xen, "control/feature-suspend").as_deref(), Some("1"));
        assert_eq!(xen.with_xenstore(|server| server.watch_count()), 1);
        assert_eq!(request(&xen, &mut store, &mut lifecycle, "poweroff"), POWEROFF);
    }

    /// Xen's convention allows a toolstack not to make the feature keys
    /// writable: the requests are still watched and carried out.
    #[test]
    fn a_feature_the_guest_may_not_write_does_not_stop_the_watch() {
        let xen = SimXen::new(1);
        xen.with_xenstore(|server| {
            server.write_as_dom0("control/feature-suspend", "");
            server.set_read_only("control/feature-suspend");
        });
        with_store(&xen, |store| {
            let mut lifecycle = Lifecycle::init(store).expect("the watch is set");
            assert_eq!(dom0_reads(&xen, "control/feature-poweroff").as_deref(), Some("1"));
            assert_eq!(request(&xen, store, &mut lifecycle, "poweroff"), POWEROFF);
        });
        assert_eq!(dom0_reads(&xen, "control/feature-suspend").as_deref(), Some(""), "as the toolstack left it");
    }

    #[test]
    fn requests_carried_out_are_acknowledged_and_returned() {
        for (value, expected) in [("poweroff", POWEROFF), ("halt", POWEROFF), ("reboot", REBOOT)] {
            let xen = SimXen::new(1);
            with_store(&xen, |store| {
                let mut lifecycle = Lifecycle::init(store).expect("init");
                assert_eq!(request(&xen, store, &mut lifecycle, value), expected, "{value}");
            });
            assert_eq!(dom0_reads(&xen, SHUTDOWN_KEY).as_deref(), Some(""), "{value} acknowledged");
        }
    }

    /// Linux's rule: a request the guest will not carry out is left in the
    /// key (the toolstack times out and clears it), and said once. ARM64
    /// does not suspend.
    #[test]
    fn suspend_where_unsupported_and_unknown_values_are_left_unacknowledged_and_counted_once() {
        let xen = SimXen::new(1);
        with_store(&xen, |store| {
            let mut lifecycle = Lifecycle::init_with(store, false).expect("init");
            assert_eq!(request(&xen, store, &mut lifecycle, "suspend"), None);
            assert_eq!(dom0_reads(&xen, SHUTDOWN_KEY).as_deref(), Some("suspend"), "not acknowledged");
            // Another event for the same request (the key read again).
            assert_eq!(lifecycle.on_watch_event(store), None);
            assert_eq!(dom0_reads(&xen, SHUTDOWN_KEY).as_deref(), Some("suspend"));
            assert_eq!(lifecycle.refused_requests(), 1, "one request, said once");

            // The toolstack gives up and clears the key; a second `xl save`
            // is a second request.
            assert_eq!(request(&xen, store, &mut lifecycle, ""), None);
            assert_eq!(request(&xen, store, &mut lifecycle, "suspend"), None);
            assert_eq!(lifecycle.refused_requests(), 2);

            assert_eq!(request(&xen, store, &mut lifecycle, "hibernate now"), None);
            assert_eq!(dom0_reads(&xen, SHUTDOWN_KEY).as_deref(), Some("hibernate now"), "junk is not acknowledged");
            assert_eq!(lifecycle.refused_requests(), 3);

            // A request carried out after all of that still is.
            assert_eq!(request(&xen, store, &mut lifecycle, "reboot"), REBOOT);
        });
        assert_eq!(dom0_reads(&xen, SHUTDOWN_KEY).as_deref(), Some(""));
    }
}
