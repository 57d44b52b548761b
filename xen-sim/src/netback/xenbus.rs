//! The xenbus side of the simulated netback: the vif's xenstore nodes, the
//! backend state machine, and detach/attach as the toolstack does them.
//!
//! Creating the device writes what libxl writes for a vif (frontend and
//! backend directories) and what netback's probe adds (the `feature-*`
//! keys); the backend then follows the frontend's `state` like Linux's
//! `frontend_changed` → `set_backend_state`, by the same shortest paths
//! (`Connected` → `Closing` → `Closed` → `InitWait`, ...), connecting on the
//! way from `InitWait` to `Connected` and disconnecting on the way out of
//! `Connected`. It reacts to changes of the frontend's state, as a watch
//! does, not to the value being there.
//!
//! Deviations from Linux, on purpose: a failed connect leaves the backend
//! in `Closing` (Linux's `connect` returns nothing, so after its
//! `xenbus_dev_fatal` wrote `Closing` the caller still switches to
//! `Connected`); a bad frontend state disconnects before writing
//! `Closing`; a reconnect clears the "disabled" mark.
//! Never: leave a ring mapped once the backend has left `Connected`.

use super::connect::ConnectFailure;
use super::options::NetbackOptions;
use super::{GUEST_DOMAIN, SimNetback, Violation};
use crate::xenstore::GUEST_HOME;
use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

pub use xen_pv::abi::xenbus::XenbusState;

/// Whether the vif exists in xenstore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attachment {
    /// Both directories exist.
    Attached,
    /// `xl network-detach` is under way: the toolstack wrote `online = 0`
    /// and `state = 5`; the directories go once the backend reaches `Closed`.
    Detaching,
    /// Removed: steps do nothing until [`SimNetback::attach`].
    Detached,
}

/// How [`SimNetback::detach`] removes the vif.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detach {
    /// As libxl does: ask the backend to close, wait for the frontend to
    /// close, then remove both directories.
    Graceful,
    /// At once, as libxl after its timeout: unmap everything and remove
    /// both directories now.
    Forced,
}

/// The vif's xenstore paths.
pub(super) struct Paths {
    /// `/local/domain/1/device/vif/<device>`
    pub frontend: String,
    /// `/local/domain/<backend>/backend/vif/1/<device>`
    pub backend: String,
    /// Where `xenbus_dev_error` writes: `/local/domain/<backend>/error/backend/vif/1/<device>/error`.
    pub error: String,
}

impl Paths {
    pub fn new(options: &NetbackOptions) -> Self {
        let (device, home) = (options.device, format!("/local/domain/{}", options.backend_domain));
        Self {
            frontend: format!("{GUEST_HOME}/device/vif/{device}"),
            backend: format!("{home}/backend/vif/{GUEST_DOMAIN}/{device}"),
            error: format!("{home}/error/backend/vif/{GUEST_DOMAIN}/{device}/error"),
        }
    }
}

/// What the backend last saw in the frontend's `state` node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FrontendSeen {
    State(XenbusState),
    Missing,
    Malformed(String),
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

impl SimNetback<'_> {
    /// Writes the toolstack's nodes and netback's probe, then follows the
    /// frontend's `Initialising` to `InitWait`.
    pub(super) fn create_device(&mut self) {
        let mut nodes = self.toolstack_nodes();
        nodes.extend(self.probe_nodes());
        self.xen.with_xenstore(|server| nodes.iter().for_each(|(path, value)| server.write_as_dom0(path, value)));
        self.attachment = Attachment::Attached;
        self.state = XenbusState::Initialising;
        self.frontend_seen = None;
        self.follow_frontend();
    }

    /// What libxl writes for a vif.
    fn toolstack_nodes(&self) -> Vec<(String, String)> {
        let (frontend, backend) = (&self.paths.frontend, &self.paths.backend);
        let (mac, device) = (self.options.mac_text(), self.options.device.to_string());
        let mut nodes = vec![
            (format!("{frontend}/backend"), backend.clone()),
            (format!("{frontend}/backend-id"), self.options.backend_domain.to_string()),
            (format!("{frontend}/state"), "1".to_string()),
            (format!("{frontend}/handle"), device.clone()),
            (format!("{frontend}/mac"), mac.clone()),
            (format!("{backend}/frontend"), frontend.clone()),
            (format!("{backend}/frontend-id"), GUEST_DOMAIN.to_string()),
            (format!("{backend}/online"), "1".to_string()),
            (format!("{backend}/state"), "1".to_string()),
            (format!("{backend}/script"), "/etc/xen/scripts/vif-bridge".to_string()),
            (format!("{backend}/mac"), mac),
            (format!("{backend}/bridge"), "xenbr0".to_string()),
            (format!("{backend}/handle"), device),
            (format!("{backend}/type"), "vif".to_string()),
        ];
        if let Some(trusted) = self.options.trusted {
            nodes.push((format!("{frontend}/trusted"), flag(trusted).to_string()));
        }
        if let Some(mtu) = self.options.mtu {
            nodes.push((format!("{frontend}/mtu"), mtu.to_string()));
            nodes.push((format!("{backend}/mtu"), mtu.to_string()));
        }
        nodes
    }

    /// What netback's probe (and the hotplug script) add.
    fn probe_nodes(&self) -> Vec<(String, String)> {
        let features = self.options.features;
        let keys = [
            ("feature-sg", flag(features.scatter_gather)),
            ("feature-gso-tcpv4", flag(features.gso_tcpv4)),
            ("feature-gso-tcpv6", flag(features.gso_tcpv6)),
            ("feature-ipv6-csum-offload", flag(features.ipv6_checksum_offload)),
            ("feature-rx-copy", flag(features.receive_copy)),
            ("feature-rx-flip", "0"),
            ("feature-multicast-control", flag(features.multicast_control)),
            ("feature-dynamic-multicast-control", flag(features.multicast_control)),
            ("feature-split-event-channels", flag(features.split_event_channels)),
            ("multi-queue-max-queues", "1"),
            ("hotplug-status", "connected"),
        ];
        keys.iter().map(|(key, value)| (format!("{}/{key}", self.paths.backend), value.to_string())).collect()
    }

    /// Reacts to a change of the frontend's `state`, as netback's watch does.
    pub(super) fn follow_frontend(&mut self) {
        // Netback runs `frontend_changed` on each watch event of the
        // frontend's `state`: every write of it, even of the value it had
        // (a frontend answering a backend that went through `Closed` and
        // back to `Closing` writes `Closed` again), and nothing else.
        let state_path = format!("{}/state", self.paths.frontend);
        let changed_at = self.xen.with_xenstore(|server| server.changed_at(&state_path));
        if self.frontend_seen.is_some() && self.store_generation_seen == changed_at {
            return;
        }
        self.store_generation_seen = changed_at;
        let seen = self.read_frontend_state();
        self.frontend_seen = Some(seen.clone());
        match seen {
            FrontendSeen::State(state) => self.frontend_changed(state),
            FrontendSeen::Missing => self.set_backend_state(XenbusState::Closed),
            FrontendSeen::Malformed(text) => self.bad_frontend_state(&text),
        }
    }

    fn read_frontend_state(&self) -> FrontendSeen {
        let Some(text) = self.frontend_value("state") else { return FrontendSeen::Missing };
        match super::connect::parse_unsigned(&text).and_then(XenbusState::from_number) {
            Some(state) => FrontendSeen::State(state),
            None => FrontendSeen::Malformed(text),
        }
    }

    /// Netback's `frontend_changed`.
    fn frontend_changed(&mut self, state: XenbusState) {
        use XenbusState::*;
        match state {
            Initialising => self.set_backend_state(InitWait),
            Initialised if self.options.connect_on_initialised => self.set_backend_state(Connected),
            Initialised => {}
            Connected => self.set_backend_state(Connected),
            Closing => self.set_backend_state(Closing),
            Closed | Unknown => self.set_backend_state(Closed),
            InitWait | Reconfiguring | Reconfigured => self.bad_frontend_state(&state.number().to_string()),
        }
    }

    fn bad_frontend_state(&mut self, text: &str) {
        let message = format!("saw state {text} at frontend");
        self.xenbus_fatal(ConnectFailure::new(Violation::BadFrontendState, super::connect::EINVAL, message));
    }

    /// Netback's `set_backend_state`: walks to `target` by the shortest
    /// path, connecting and disconnecting on the way; stops if a connect fails.
    pub(super) fn set_backend_state(&mut self, target: XenbusState) {
        while self.state != target {
            let Some(next) = self.next_hop(target) else { return };
            self.switch_state(next);
        }
    }

    fn next_hop(&mut self, target: XenbusState) -> Option<XenbusState> {
        use XenbusState::*;
        Some(match (self.state, target) {
            (Initialising, Closed) => Closed,
            (Initialising, _) => InitWait,
            (InitWait, Connected) => return self.connect().then_some(Connected),
            (InitWait, _) => Closing,
            (Connected, _) => {
                self.disconnect();
                Closing
            }
            (Closing, _) => Closed,
            (Closed, Closing) => Closing,
            // Closed, and the states only `flap_state` leaves the backend in.
            _ => InitWait,
        })
    }

    /// Writes the backend's `state` node (`xenbus_switch_state`).
    pub(super) fn switch_state(&mut self, state: XenbusState) {
        self.state = state;
        let path = format!("{}/state", self.paths.backend);
        self.xen.with_xenstore(|server| server.write_as_dom0(&path, &state.number().to_string()));
    }

    /// `xenbus_dev_fatal`: logs the error in xenstore, tears down, `Closing`.
    pub(super) fn xenbus_fatal(&mut self, failure: ConnectFailure) {
        *self.counters.violations.entry(failure.kind).or_default() += 1;
        let text = format!("{} {}", failure.errno, failure.message);
        let path = self.paths.error.clone();
        self.xen.with_xenstore(|server| server.write_as_dom0(&path, &text));
        self.errors.push(text);
        self.disconnect();
        self.switch_state(XenbusState::Closing);
    }

    /// A value in the frontend's directory.
    pub(super) fn frontend_value(&self, key: &str) -> Option<String> {
        let path = format!("{}/{key}", self.paths.frontend);
        self.xen.with_xenstore(|server| server.read_as_dom0(&path))
    }

    /// Completes a graceful detach once the backend is `Closed`.
    pub(super) fn finish_detach_if_closed(&mut self) {
        if self.attachment == Attachment::Detaching && self.state == XenbusState::Closed {
            self.remove_device();
        }
    }

    fn remove_device(&mut self) {
        self.disconnect();
        let (frontend, backend) = (self.paths.frontend.clone(), self.paths.backend.clone());
        self.xen.with_xenstore(|server| {
            server.rm_as_dom0(&backend);
            server.rm_as_dom0(&frontend);
        });
        self.attachment = Attachment::Detached;
        self.state = XenbusState::Closed;
        self.frontend_seen = None;
        self.counters.detaches += 1;
    }
}

/// Tests' levers on the device's life.
impl SimNetback<'_> {
    /// Forces the backend's state to `state` now, as a backend that goes
    /// away or restarts would: leaving `Connected` unmaps the rings and
    /// every grant first. The backend then follows the frontend's next
    /// state change as usual. `Connected` while not connected is a lie the
    /// backend tells without mapping anything.
    pub fn flap_state(&mut self, state: XenbusState) {
        if state != XenbusState::Connected {
            self.disconnect();
        }
        self.switch_state(state);
        self.counters.state_flaps += 1;
    }

    /// Removes the vif like `xl network-detach`. Panics unless attached.
    pub fn detach(&mut self, how: Detach) {
        assert_eq!(self.attachment, Attachment::Attached, "simulated netback: detach of a vif that is not attached");
        match how {
            Detach::Graceful => self.start_graceful_detach(),
            Detach::Forced => self.remove_device(),
        }
    }

    fn start_graceful_detach(&mut self) {
        let backend = self.paths.backend.clone();
        self.xen.with_xenstore(|server| {
            server.write_as_dom0(&format!("{backend}/online"), "0");
            server.write_as_dom0(&format!("{backend}/state"), "5");
        });
        self.attachment = Attachment::Detaching;
    }

    /// Creates a fresh vif like `xl network-attach`, with the same options.
    /// Panics unless detached.
    pub fn attach(&mut self) {
        self.attach_with(self.options.clone());
    }

    /// Creates a fresh vif with new options (another MAC, another device
    /// index). Panics unless detached.
    pub fn attach_with(&mut self, options: NetbackOptions) {
        assert_eq!(self.attachment, Attachment::Detached, "simulated netback: attach while the vif exists");
        self.paths = Paths::new(&options);
        self.options = options;
        self.disabled = false;
        self.receive_queue.clear();
        self.counters.attaches += 1;
        self.create_device();
    }
}
