//! Telling the network where the appliance is after a resume: gratuitous
//! ARP.
//!
//! A domain restored on another host (or on the same host behind a new vif)
//! has the same MAC and addresses, but the switches between it and its
//! peers still send its frames to where it was until their tables age out.
//! So once its link is up again it broadcasts, for each IPv4 address, an
//! ARP request for that very address, sent from its MAC (sender and target
//! address both its own, target MAC zero): switches learn the MAC's new
//! port from the frame, and hosts that cache the address refresh their
//! entry, as Linux's netfront makes its stack do after a resume. Frames
//! get lost (a backend still settling, a busy bridge), so it is sent
//! [`ANNOUNCEMENTS`] times, [`ANNOUNCE_INTERVAL`] apart.
//!
//! Pure: [`gratuitous_arp`] builds the frame, [`Announcement`] keeps the
//! schedule; the event loop sends through the frontend.

use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Ipv4Address,
};

/// How many times the addresses are announced after a resume.
pub const ANNOUNCEMENTS: u8 = 3;
/// The time between announcements.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(1);
/// The length of a gratuitous ARP frame (Ethernet header and ARP body; the
/// backend pads it to the minimum frame size on the wire).
pub const GRATUITOUS_ARP_LEN: usize = 14 + 28;

/// The gratuitous ARP for `address` from `mac`: a broadcast ARP request
/// whose sender and target address are both `address`.
pub fn gratuitous_arp(mac: EthernetAddress, address: Ipv4Address) -> [u8; GRATUITOUS_ARP_LEN] {
    let mut frame = [0; GRATUITOUS_ARP_LEN];
    let ethernet =
        EthernetRepr { src_addr: mac, dst_addr: EthernetAddress::BROADCAST, ethertype: EthernetProtocol::Arp };
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: address,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: address,
    };
    let mut packet = EthernetFrame::new_unchecked(&mut frame[..]);
    ethernet.emit(&mut packet);
    arp.emit(&mut ArpPacket::new_unchecked(packet.payload_mut()));
    frame
}

/// The announcements still due after a resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    left: u8,
    next: Option<Instant>,
}

impl Default for Announcement {
    fn default() -> Self {
        Self::new()
    }
}

impl Announcement {
    /// [`ANNOUNCEMENTS`] announcements, the first as soon as the link is up.
    pub fn new() -> Self {
        Self { left: ANNOUNCEMENTS, next: None }
    }

    /// Whether one is due at `now` with the link `up`; counts it as sent.
    /// A link that is down delays the schedule (the first goes out the
    /// moment it is up).
    pub fn due(&mut self, now: Instant, up: bool) -> bool {
        if !up || self.left == 0 || self.next.is_some_and(|next| now < next) {
            return false;
        }
        self.left -= 1;
        self.next = Some(now + ANNOUNCE_INTERVAL);
        true
    }

    /// When the next is due (`None` once all went out, or while the first
    /// waits for the link).
    pub fn deadline(&self) -> Option<Instant> {
        if self.left == 0 { None } else { self.next }
    }

    /// Whether every announcement went out.
    pub fn is_done(&self) -> bool {
        self.left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::EthernetFrame;

    const MAC: EthernetAddress = EthernetAddress([0x00, 0x16, 0x3e, 0x5a, 0x00, 0x01]);

    #[test]
    fn the_frame_is_a_broadcast_request_for_the_own_address() {
        let address = Ipv4Address::new(10, 88, 0, 2);
        let frame = gratuitous_arp(MAC, address);
        let ethernet = EthernetFrame::new_checked(&frame[..]).unwrap();
        assert_eq!(ethernet.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(ethernet.src_addr(), MAC);
        assert_eq!(ethernet.ethertype(), EthernetProtocol::Arp);
        let arp = ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).unwrap()).unwrap();
        assert_eq!(
            arp,
            ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Request,
                source_hardware_addr: MAC,
                source_protocol_addr: address,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: address,
            }
        );
    }

    #[test]
    fn three_announcements_a_second_apart_once_the_link_is_up() {
        let mut announcement = Announcement::new();
        let start = Instant::from_secs(100);
        assert!(!announcement.due(start, false), "not while the link is down");
        assert_eq!(announcement.deadline(), None);
        let up = start + Duration::from_millis(300);
        assert!(announcement.due(up, true));
        assert!(!announcement.due(up, true), "one at a time");
        assert_eq!(announcement.deadline(), Some(up + ANNOUNCE_INTERVAL));
        assert!(announcement.due(up + ANNOUNCE_INTERVAL, true));
        assert!(!announcement.is_done());
        assert!(announcement.due(up + ANNOUNCE_INTERVAL * 2, true));
        assert!(announcement.is_done());
        assert_eq!(announcement.deadline(), None);
        assert!(!announcement.due(up + ANNOUNCE_INTERVAL * 9, true));
    }
}
