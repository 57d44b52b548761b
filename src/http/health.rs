//! The two reserved paths on the HTTP port, for load balancers and
//! orchestrators: `/healthz` (the appliance is alive: 200 while its event
//! loop runs) and `/readyz` (it should get traffic: 200 only while the link
//! is up, an address is bound and it is not draining; otherwise 503 with
//! the reason on one line). Exactly these paths, with or without a query
//! string; any method; echo options do not apply to them (but `close`).
//! Every other target is echoed as before.

/// A probe a request target names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`.
    Health,
    /// `/readyz`.
    Ready,
}

impl Probe {
    /// The probe `target` names: exactly `/healthz` or `/readyz`, a query
    /// allowed.
    pub fn of(target: &[u8]) -> Option<Probe> {
        let path = target.split(|&byte| byte == b'?').next().unwrap_or_default();
        match path {
            b"/healthz" => Some(Probe::Health),
            b"/readyz" => Some(Probe::Ready),
            _ => None,
        }
    }

    /// The answer's status code and body when the appliance is as
    /// `readiness` says.
    pub fn answer(self, readiness: Readiness) -> (u16, &'static [u8]) {
        match (self, readiness) {
            (Probe::Health, _) | (Probe::Ready, Readiness::Ready) => (200, b"ok\n"),
            (Probe::Ready, not_ready) => (503, not_ready.reason()),
        }
    }
}

/// Whether the appliance should get traffic, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Link up, address bound, not draining.
    Ready,
    /// The vif's link is down (no backend connected).
    NoLink,
    /// No address but the IPv6 link-local one: no IPv4 address (no DHCP
    /// lease yet, or it was lost) and no static or SLAAC IPv6 address.
    NoAddress,
    /// Asked to end: finishing what is in flight.
    Draining,
}

impl Readiness {
    /// Draining first, then the link, then the address.
    pub fn of(link_up: bool, address_bound: bool, draining: bool) -> Readiness {
        match (draining, link_up, address_bound) {
            (true, _, _) => Readiness::Draining,
            (false, false, _) => Readiness::NoLink,
            (false, true, false) => Readiness::NoAddress,
            (false, true, true) => Readiness::Ready,
        }
    }

    /// The one-line reason `/readyz` gives (`ok` when ready).
    pub fn reason(self) -> &'static [u8] {
        match self {
            Readiness::Ready => b"ok\n",
            Readiness::NoLink => b"link down\n",
            Readiness::NoAddress => b"no address\n",
            Readiness::Draining => b"draining\n",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_exact_paths_are_probes() {
        assert_eq!(Probe::of(b"/healthz"), Some(Probe::Health));
        assert_eq!(Probe::of(b"/readyz?verbose"), Some(Probe::Ready));
        assert_eq!(Probe::of(b"/healthz/"), None);
        assert_eq!(Probe::of(b"/healthzz"), None);
        assert_eq!(Probe::of(b"/readyz#x"), None);
        assert_eq!(Probe::of(b"/x/healthz"), None);
        assert_eq!(Probe::of(b"http://host/healthz"), None);
        assert_eq!(Probe::of(b"/"), None);
    }

    #[test]
    fn readiness_says_the_first_reason_and_health_stays_ok() {
        assert_eq!(Readiness::of(true, true, false), Readiness::Ready);
        assert_eq!(Readiness::of(false, false, false), Readiness::NoLink);
        assert_eq!(Readiness::of(true, false, false), Readiness::NoAddress);
        assert_eq!(Readiness::of(false, false, true), Readiness::Draining);
        for readiness in [Readiness::Ready, Readiness::NoLink, Readiness::NoAddress, Readiness::Draining] {
            assert_eq!(Probe::Health.answer(readiness), (200, &b"ok\n"[..]));
        }
        assert_eq!(Probe::Ready.answer(Readiness::Ready), (200, &b"ok\n"[..]));
        assert_eq!(Probe::Ready.answer(Readiness::Draining), (503, &b"draining\n"[..]));
        assert_eq!(Probe::Ready.answer(Readiness::NoLink), (503, &b"link down\n"[..]));
        assert_eq!(Probe::Ready.answer(Readiness::NoAddress), (503, &b"no address\n"[..]));
    }
}
