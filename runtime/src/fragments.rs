//! IPv4 fragments: the bounds on reassembly, and a screen in front of the
//! stack that counts fragments and drops those beyond the size bound.
//!
//! smoltcp reassembles fragmented IPv4 datagrams (feature
//! `proto-ipv4-fragmentation`) in [`REASSEMBLY_SLOTS`] slots; a fragment of
//! a further datagram is dropped while all slots are taken. A slot is freed
//! when its datagram is complete, or [`REASSEMBLY_TIMEOUT`] after its first
//! fragment arrived (at the interface's next poll), complete or not. A reply
//! larger than the MTU is sent in fragments from one buffer of
//! [`FRAGMENTATION_BUFFER_BYTES`] inside the interface; a larger one is
//! dropped.
//!
//! With its `alloc` feature smoltcp grows a slot's buffer to whatever the
//! fragments ask (up to 128 KiB, offset plus length), and keeps it. The
//! [`Screened`] device bounds that: a fragment whose data would end beyond
//! [`MAX_REASSEMBLED_PAYLOAD`] never reaches the stack, so reassembly holds
//! at most [`REASSEMBLY_SLOTS`] × [`MAX_REASSEMBLED_PAYLOAD`] bytes (about
//! 64 KiB), allocated as slots are first used and reused after. Overlapping
//! fragments are merged by smoltcp (later bytes overwrite earlier ones) in
//! the slot's own buffer, within the same bound.

use smoltcp::iface::Interface;
use smoltcp::phy::{self, Device, DeviceCapabilities};
use smoltcp::time::{Duration, Instant};

/// Datagrams reassembled at once (smoltcp's `reassembly-buffer-count-4`).
pub const REASSEMBLY_SLOTS: usize = 4;

/// How long a slot waits for a datagram's missing fragments after its first
/// fragment, before the slot is freed. Long enough for a slow link's
/// fragments to arrive, short enough that a flood of partial datagrams
/// holds the slots for only a few seconds at a time (RFC 791 suggests 15 s
/// as an upper bound).
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest IPv4 payload a fragmented datagram may carry here: 16 KiB less
/// a 20-byte header, so that the echo reply of the largest datagram taken
/// (same payload, a plain header) fits the fragmentation buffer. An ICMP
/// echo of up to 16,356 bytes of data (`ping -s 16356`) is answered.
pub const MAX_REASSEMBLED_PAYLOAD: usize = FRAGMENTATION_BUFFER_BYTES - IPV4_HEADER_BYTES;

/// The outgoing fragmentation buffer (smoltcp's
/// `fragmentation-buffer-size-16384`): the largest IPv4 datagram sent,
/// header included.
pub const FRAGMENTATION_BUFFER_BYTES: usize = 16 * 1024;

const IPV4_HEADER_BYTES: usize = 20;
const ETHERNET_HEADER_BYTES: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;

/// Sets the interface's reassembly timeout to [`REASSEMBLY_TIMEOUT`].
pub fn configure(interface: &mut Interface) {
    interface.set_reassembly_timeout(REASSEMBLY_TIMEOUT);
}

/// What the screen counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragmentCounters {
    /// IPv4 fragments received (more-fragments set or a non-zero offset).
    pub received: u64,
    /// Fragments dropped before the stack because their data would end
    /// beyond [`MAX_REASSEMBLED_PAYLOAD`].
    pub oversized: u64,
}

/// What a frame is to the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not an IPv4 fragment (or not parseable here: smoltcp judges it).
    Whole,
    /// A fragment within the bound.
    Fragment,
    /// A fragment whose data would end beyond the bound.
    Oversized,
}

/// Classifies an Ethernet frame.
fn classify(frame: &[u8]) -> Kind {
    let Some(ip) = frame.get(ETHERNET_HEADER_BYTES..) else { return Kind::Whole };
    if frame[12..14] != ETHERTYPE_IPV4.to_be_bytes() || ip.len() < IPV4_HEADER_BYTES || ip[0] >> 4 != 4 {
        return Kind::Whole;
    }
    let header = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let flags = u16::from_be_bytes([ip[6], ip[7]]);
    let more = flags & 0x2000 != 0;
    let offset = usize::from(flags & 0x1fff) * 8;
    if !more && offset == 0 {
        return Kind::Whole;
    }
    if offset + total.saturating_sub(header) > MAX_REASSEMBLED_PAYLOAD { Kind::Oversized } else { Kind::Fragment }
}

/// `device` with the fragment screen in front, for one turn.
pub struct Screened<'d, D: Device> {
    device: &'d mut D,
    counters: &'d mut FragmentCounters,
}

impl<'d, D: Device> Screened<'d, D> {
    /// `device` screened, counting into `counters`.
    pub fn new(device: &'d mut D, counters: &'d mut FragmentCounters) -> Self {
        Self { device, counters }
    }
}

/// A received frame, looked at before the stack sees it.
pub struct ScreenedRx<'a, R: phy::RxToken> {
    token: R,
    counters: &'a mut FragmentCounters,
}

impl<R: phy::RxToken> phy::RxToken for ScreenedRx<'_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        let counters = self.counters;
        self.token.consume(|bytes| match classify(bytes) {
            Kind::Whole => f(bytes),
            Kind::Fragment => {
                counters.received += 1;
                f(bytes)
            }
            Kind::Oversized => {
                counters.received += 1;
                counters.oversized += 1;
                // An empty frame: smoltcp takes it as processed and drops it.
                f(&[])
            }
        })
    }
}

impl<D: Device> Device for Screened<'_, D> {
    type RxToken<'a>
        = ScreenedRx<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let (rx, tx) = self.device.receive(now)?;
        Some((ScreenedRx { token: rx, counters: &mut *self.counters }, tx))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        self.device.transmit(now)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 header: `flags` (more-fragments and
    /// offset in 8-byte units) and `payload` bytes after the header.
    fn frame(flags: u16, payload: usize) -> Vec<u8> {
        let mut frame = vec![0u8; ETHERNET_HEADER_BYTES + IPV4_HEADER_BYTES + payload];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = &mut frame[ETHERNET_HEADER_BYTES..];
        ip[0] = 0x45;
        let total = u16::try_from(IPV4_HEADER_BYTES + payload).unwrap();
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        frame
    }

    #[test]
    fn fragments_are_told_from_whole_datagrams_and_the_bound_is_exact() {
        assert_eq!(classify(&frame(0, 1480)), Kind::Whole);
        assert_eq!(classify(&frame(0x4000, 1480)), Kind::Whole, "don't-fragment alone is no fragment");
        assert_eq!(classify(&frame(0x2000, 1480)), Kind::Fragment);
        assert_eq!(classify(&frame(185, 100)), Kind::Fragment, "a last fragment");
        // The last fragment ending exactly at the bound is taken; one byte
        // more is not.
        let units = u16::try_from((MAX_REASSEMBLED_PAYLOAD - 4) / 8).unwrap();
        let rest = MAX_REASSEMBLED_PAYLOAD - usize::from(units) * 8;
        assert_eq!(classify(&frame(units, rest)), Kind::Fragment);
        assert_eq!(classify(&frame(units, rest + 1)), Kind::Oversized);
        assert_eq!(classify(&frame(0x1fff, 8)), Kind::Oversized, "the largest offset");
        assert_eq!(classify(&[0u8; 10]), Kind::Whole, "too short to judge");
    }
}
