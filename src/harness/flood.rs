//! A half-open SYN flood: SYNs from spoofed off-link addresses
//! (198.18.0.0/15, the benchmarking range) that never finish their
//! handshake. The flooder stands behind the appliance's gateway (it answers
//! ARP for [`super::GATEWAY_ADDRESS`]), so the appliance's SYN-ACKs do go
//! out, as they would to a router, and then it ignores everything it
//! receives.

use super::hub::Port;
use alloc::vec;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

/// A SYN flood's shape.
pub struct SynFlood {
    /// SYNs a second.
    pub rate: u64,
    /// SYNs in all.
    pub total: u64,
    /// Target address and port.
    pub target: (Ipv4Address, u16),
    /// The target's MAC.
    pub target_mac: EthernetAddress,
    /// Seed of the spoofed addresses and ports.
    pub seed: u64,
    sent: u64,
    started: Option<Instant>,
    port: Option<Port>,
}

impl SynFlood {
    /// `total` SYNs at `rate` a second to the appliance's HTTP port.
    pub fn new(rate: u64, total: u64, seed: u64) -> SynFlood {
        SynFlood {
            rate,
            total,
            target: (super::SERVER_ADDRESS, super::HTTP_PORT),
            target_mac: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
            seed: seed | 1,
            sent: 0,
            started: None,
            port: None,
        }
    }

    pub(super) fn plugged(mut self, port: Port) -> SynFlood {
        self.port = Some(port);
        self
    }

    pub(super) fn mac(&self) -> EthernetAddress {
        self.port.as_ref().map_or(EthernetAddress([0; 6]), Port::mac)
    }

    /// SYNs sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    fn random(&mut self) -> u64 {
        // xorshift64: reproducible, good enough to spread addresses.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed
    }

    /// Sends the SYNs due by `now`, at most `burst` of them: called before
    /// each of the appliance's turns, so the flood is spread over them and
    /// meets every client's SYN in the same batch.
    pub(super) fn send(&mut self, now: Instant, burst: u64) {
        let started = *self.started.get_or_insert(now);
        let elapsed_ms = (now - started).total_millis();
        let due = (elapsed_ms * self.rate / 1000 + 1).min(self.total).min(self.sent + burst);
        while self.sent < due {
            let value = self.random();
            let source = Ipv4Address::new(198, 18 | (value >> 24) as u8 & 1, (value >> 8) as u8, value as u8);
            let frame = self.syn_frame(source, 1024 + (value >> 16) as u16 % 60_000, TcpSeqNumber(value as i32));
            if let Some(port) = self.port.as_mut() {
                port.send_frame(frame);
            }
            self.sent += 1;
        }
    }

    fn syn_frame(&self, source: Ipv4Address, source_port: u16, sequence: TcpSeqNumber) -> alloc::vec::Vec<u8> {
        let tcp = TcpRepr {
            src_port: source_port,
            dst_port: self.target.1,
            control: TcpControl::Syn,
            seq_number: sequence,
            ack_number: None,
            window_len: 64_240,
            window_scale: Some(7),
            max_seg_size: Some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: source,
            dst_addr: self.target.0,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let ethernet =
            EthernetRepr { src_addr: self.mac(), dst_addr: self.target_mac, ethertype: EthernetProtocol::Ipv4 };
        let mut frame = vec![0; ethernet.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut ethernet_frame = EthernetFrame::new_unchecked(&mut frame[..]);
        ethernet.emit(&mut ethernet_frame);
        let checksums = ChecksumCapabilities::default();
        let mut ip_packet = Ipv4Packet::new_unchecked(ethernet_frame.payload_mut());
        ip.emit(&mut ip_packet, &checksums);
        let mut tcp_packet = TcpPacket::new_unchecked(ip_packet.payload_mut());
        tcp.emit(&mut tcp_packet, &source.into(), &self.target.0.into(), &checksums);
        frame
    }

    /// Answers ARP requests for the gateway; drops everything else.
    pub(super) fn answer_arp(&mut self) {
        let mac = self.mac();
        let Some(port) = self.port.as_mut() else { return };
        while let Some(frame) = port.receive_frame() {
            let Some(reply) = runtime::testing::arp_reply(&frame, super::GATEWAY_ADDRESS, mac) else { continue };
            port.send_frame(reply);
        }
    }
}
