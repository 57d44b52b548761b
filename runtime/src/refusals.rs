//! The refusal budget: while every connection slot of a service is busy,
//! the SYNs that would only lead to a refusal are let through at a bounded
//! rate, and the rest are dropped unanswered.
//!
//! A service with a fixed number of slots answers a connection beyond them
//! with a refusal (the appliance's HTTP service: `503 Service Unavailable`
//! and a close). A refusal costs about as many packets as a handful of
//! requests on a keep-alive connection (the handshake, the answer, both
//! closes), and a load generator or an impatient client opens a new
//! connection the moment it is refused. Without a bound, clients beyond the
//! slots would spend the appliance's packets (and the host's, which pays
//! per packet too) on being refused, and starve the connections it serves.
//!
//! So while the service reports that every slot is busy on a port
//! ([`crate::Service::saturated_port`]), each SYN for that port takes a
//! token from a bucket of [`REFUSALS_PER_SECOND`] a second, holding at most
//! [`REFUSAL_BURST`]; a SYN that finds the bucket empty is dropped before
//! smoltcp sees it, and counted ([`RefusalBudget::deferred`]). Its client
//! sends it again after its SYN timeout (1 s, then 2 s, 4 s, ...), as it
//! would to a Linux server whose accept queue is full, and by then a slot
//! may be free or the budget refilled. A SYN to a port with a free slot,
//! or to any other port, is never looked at. The tokens are shared by
//! everyone beyond the slots, a SYN flood included: while every slot is
//! busy and a flood spends them, real clients beyond the slots wait for
//! their SYN's next try rather than get a refusal.
//!
//! The rate is fixed, not sized from the slots: a refusal's cost is in
//! packets, and how many packets the appliance can handle depends on the
//! host (its CPU, dom0's), not on its memory, which sizes the slots.
//!
//! Contract: decides on a frame from its headers alone (checked parsers,
//! never a length trusted), in constant time; allocates nothing; logs at
//! most one line per [`LOG_INTERVAL`].

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket};

/// SYNs let through a second while every slot is busy (each leads to one
/// refusal at most).
pub const REFUSALS_PER_SECOND: u64 = 32;
/// Most SYNs let through at once on the budget (the bucket's size).
pub const REFUSAL_BURST: u64 = 32;
/// Least time between two log lines about SYNs dropped for the budget.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Tokens are kept in thousandths, so that a millisecond's refill is whole.
const MILLI: u64 = 1000;

/// The refusal budget's state between turns.
#[derive(Debug, Clone)]
pub struct RefusalBudget {
    /// The port whose every slot is busy, as the service last said.
    saturated: Option<u16>,
    /// Tokens, in thousandths.
    tokens: u64,
    /// When the tokens were last refilled.
    refilled_at: Option<Instant>,
    /// SYNs dropped for want of a token.
    deferred: u64,
    /// SYNs let through on a token.
    spent: u64,
    /// When the last log line went out, and the count it gave.
    logged: Option<(Instant, u64)>,
}

impl Default for RefusalBudget {
    fn default() -> Self {
        Self { saturated: None, tokens: REFUSAL_BURST * MILLI, refilled_at: None, deferred: 0, spent: 0, logged: None }
    }
}

impl RefusalBudget {
    /// Takes what the service says after its poll at `now`: the port whose
    /// every slot is busy, if any.
    pub fn note_saturated(&mut self, port: Option<u16>, now: Instant) {
        self.refill(now);
        self.saturated = port;
    }

    /// Whether SYNs are metered now (some port is saturated).
    pub fn metering(&self) -> bool {
        self.saturated.is_some()
    }

    /// SYNs dropped so far for want of a token.
    pub fn deferred(&self) -> u64 {
        self.deferred
    }

    /// SYNs let through on a token so far (while every slot was busy).
    pub fn spent(&self) -> u64 {
        self.spent
    }

    fn refill(&mut self, now: Instant) {
        // smoltcp's `Instant - Instant` is the distance either way: a clock
        // that went back earns nothing.
        let elapsed = self.refilled_at.filter(|&at| now > at).map_or(0, |at| (now - at).total_millis());
        let earned = elapsed.saturating_mul(REFUSALS_PER_SECOND * MILLI / 1000);
        self.tokens = self.tokens.saturating_add(earned).min(REFUSAL_BURST * MILLI);
        self.refilled_at = Some(self.refilled_at.map_or(now, |at| at.max(now)));
    }

    /// Whether to drop `frame`, received at `now`: a SYN opening a
    /// connection to the saturated port when no token is left. A SYN let
    /// through takes a token.
    pub fn defers(&mut self, frame: &[u8], now: Instant) -> bool {
        let Some(port) = self.saturated else { return false };
        if syn_port(frame) != Some(port) {
            return false;
        }
        self.refill(now);
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            self.spent += 1;
            return false;
        }
        self.deferred += 1;
        match self.logged {
            None => log::warn!(
                "port {port}: every connection slot busy and the refusal budget ({REFUSALS_PER_SECOND} a second) \
                 spent: SYNs beyond it are left unanswered, and their clients send them again"
            ),
            Some((at, count)) if now >= at + LOG_INTERVAL => log::warn!(
                "port {port}: every connection slot busy and the refusal budget ({REFUSALS_PER_SECOND} a second) \
                 spent: {} SYNs left unanswered in the last {} s, {} in all",
                self.deferred - count,
                (now - at).secs(),
                self.deferred
            ),
            Some(_) => return true,
        }
        self.logged = Some((now, self.deferred));
        true
    }
}

/// The destination port of a frame holding a SYN that opens a TCP
/// connection (SYN without ACK or RST), over IPv4 (unfragmented) or IPv6
/// (TCP right after the fixed header); `None` for anything else.
pub fn syn_port(frame: &[u8]) -> Option<u16> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    let tcp = match ethernet.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            TcpPacket::new_checked(ip.payload()).ok()?
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(ethernet.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            TcpPacket::new_checked(ip.payload()).ok()?
        }
        _ => return None,
    };
    (tcp.syn() && !tcp.ack() && !tcp.rst()).then(|| tcp.dst_port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, Ipv6Address, Ipv6Repr, TcpControl, TcpRepr,
        TcpSeqNumber,
    };

    /// A TCP segment without data to `port`, over IPv4 or IPv6.
    fn segment(v6: bool, port: u16, control: TcpControl, ack: bool) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 40_000,
            dst_port: port,
            control,
            seq_number: TcpSeqNumber(1),
            ack_number: ack.then_some(TcpSeqNumber(7)),
            window_len: 1024,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let (source, destination): (IpAddress, IpAddress) = if v6 {
            (Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 7).into(), Ipv6Address::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).into())
        } else {
            (Ipv4Address::new(10, 0, 1, 7).into(), Ipv4Address::new(10, 0, 0, 1).into())
        };
        let ethertype = if v6 { EthernetProtocol::Ipv6 } else { EthernetProtocol::Ipv4 };
        let ethernet = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 7]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype,
        };
        let ip_length = if v6 { 40 } else { 20 };
        let mut frame = vec![0; ethernet.buffer_len() + ip_length + tcp.buffer_len()];
        let mut ethernet_frame = EthernetFrame::new_unchecked(&mut frame[..]);
        ethernet.emit(&mut ethernet_frame);
        let checksums = ChecksumCapabilities::default();
        match (source, destination) {
            (IpAddress::Ipv4(src_addr), IpAddress::Ipv4(dst_addr)) => {
                let ip = Ipv4Repr {
                    src_addr,
                    dst_addr,
                    next_header: IpProtocol::Tcp,
                    payload_len: tcp.buffer_len(),
                    hop_limit: 64,
                };
                let mut packet = Ipv4Packet::new_unchecked(ethernet_frame.payload_mut());
                ip.emit(&mut packet, &checksums);
                tcp.emit(&mut TcpPacket::new_unchecked(packet.payload_mut()), &source, &destination, &checksums);
            }
            (IpAddress::Ipv6(src_addr), IpAddress::Ipv6(dst_addr)) => {
                let ip = Ipv6Repr {
                    src_addr,
                    dst_addr,
                    next_header: IpProtocol::Tcp,
                    payload_len: tcp.buffer_len(),
                    hop_limit: 64,
                };
                let mut packet = Ipv6Packet::new_unchecked(ethernet_frame.payload_mut());
                ip.emit(&mut packet);
                tcp.emit(&mut TcpPacket::new_unchecked(packet.payload_mut()), &source, &destination, &checksums);
            }
            _ => unreachable!(),
        }
        frame
    }

    fn syn(port: u16) -> Vec<u8> {
        segment(false, port, TcpControl::Syn, false)
    }

    fn at(millis: i64) -> Instant {
        Instant::from_millis(millis)
    }

    #[test]
    fn only_a_syn_opening_a_connection_names_its_port() {
        assert_eq!(syn_port(&syn(80)), Some(80));
        assert_eq!(syn_port(&segment(true, 8080, TcpControl::Syn, false)), Some(8080), "IPv6");
        assert_eq!(syn_port(&segment(false, 80, TcpControl::Syn, true)), None, "a SYN-ACK");
        assert_eq!(syn_port(&segment(false, 80, TcpControl::None, true)), None, "an ACK");
        assert_eq!(syn_port(&segment(false, 80, TcpControl::Rst, false)), None, "a RST");
        assert_eq!(syn_port(&segment(true, 80, TcpControl::Fin, true)), None, "a FIN");
        let frame = syn(80);
        for length in 0..frame.len() {
            assert_eq!(syn_port(&frame[..length]), None, "cut to {length} bytes");
        }
    }

    #[test]
    fn nothing_is_dropped_while_no_port_is_saturated() {
        let mut budget = RefusalBudget::default();
        budget.note_saturated(None, at(0));
        assert!(!budget.metering());
        for _ in 0..10 * REFUSAL_BURST {
            assert!(!budget.defers(&syn(80), at(0)));
        }
        assert_eq!((budget.deferred(), budget.spent()), (0, 0));
    }

    #[test]
    fn while_saturated_syns_pass_at_the_budgets_rate_and_the_rest_are_dropped() {
        let mut budget = RefusalBudget::default();
        budget.note_saturated(Some(80), at(0));
        // The bucket's worth at once, then nothing.
        let passed = (0..3 * REFUSAL_BURST).filter(|_| !budget.defers(&syn(80), at(0))).count() as u64;
        assert_eq!(passed, REFUSAL_BURST);
        assert_eq!((budget.spent(), budget.deferred()), (REFUSAL_BURST, 2 * REFUSAL_BURST));
        // Other ports, and everything but a SYN, are never held back.
        assert!(!budget.defers(&syn(7), at(0)));
        assert!(!budget.defers(&segment(false, 80, TcpControl::None, true), at(0)));
        assert!(!budget.defers(&[0u8; 3], at(0)));
        // Over ten seconds of a SYN every millisecond: the rate, to the SYN.
        let mut passed = 0;
        for millis in 1..=10_000 {
            passed += u64::from(!budget.defers(&syn(80), at(millis)));
        }
        assert_eq!(passed, 10 * REFUSALS_PER_SECOND);
        // A port with a slot free again: everything passes, and the bucket
        // fills meanwhile, never beyond its size.
        budget.note_saturated(None, at(10_000));
        assert!(!budget.defers(&syn(80), at(20_000)));
        budget.note_saturated(Some(80), at(60_000));
        let passed = (0..3 * REFUSAL_BURST).filter(|_| !budget.defers(&syn(80), at(60_000))).count() as u64;
        assert_eq!(passed, REFUSAL_BURST);
    }

    std::thread_local! {
        /// The warnings logged on this thread (each test runs on its own).
        static WARNINGS: core::cell::RefCell<Vec<std::string::String>> = const { core::cell::RefCell::new(Vec::new()) };
    }

    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.level() <= log::Level::Warn
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                WARNINGS.with(|lines| lines.borrow_mut().push(std::format!("{}", record.args())));
            }
        }
        fn flush(&self) {}
    }

    static CAPTURE: Capture = Capture;

    #[test]
    fn the_log_says_so_at_most_once_per_interval() {
        let _ = log::set_logger(&CAPTURE);
        log::set_max_level(log::LevelFilter::Warn);
        let mut budget = RefusalBudget::default();
        budget.note_saturated(Some(80), at(0));
        // A SYN every millisecond for 31 s, nearly all dropped: a line at the
        // first drop, then one every 10 s.
        for millis in 0..31_000 {
            budget.defers(&syn(80), at(millis));
        }
        let lines = WARNINGS.with(|lines| lines.take());
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(lines[0].starts_with("port 80: every connection slot busy"), "{}", lines[0]);
        // Each later line: what was dropped since the one before, in 10 s at
        // 1 000 a second less the budget's 32 a second.
        let expected = 10 * (1000 - REFUSALS_PER_SECOND);
        for line in &lines[1..] {
            assert!(line.contains(&std::format!(": {expected} SYNs left unanswered in the last 10 s, ")), "{line}");
        }
    }

    #[test]
    fn time_going_backwards_earns_nothing() {
        let mut budget = RefusalBudget::default();
        budget.note_saturated(Some(80), at(5_000));
        while !budget.defers(&syn(80), at(5_000)) {}
        budget.note_saturated(Some(80), at(1_000));
        assert!(budget.defers(&syn(80), at(1_000)));
        assert!(budget.defers(&syn(80), at(5_000)), "no token for the time already counted");
        assert!(
            !budget.defers(&syn(80), at(5_000 + 1_000 / REFUSALS_PER_SECOND as i64 + 1)),
            "a token's worth of time later"
        );
    }
}
