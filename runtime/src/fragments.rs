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

use core::cell::{Cell, RefCell};
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

/// The most fragments one reply is sent in: the fragmentation buffer in
/// frames of the smallest MTU IPv4 allows (68: 48 bytes of data each), so a
/// reply's fragments go out within one turn however small the MTU.
pub const MAX_FRAGMENTS_PER_REPLY: usize = FRAGMENTATION_BUFFER_BYTES.div_ceil(48);

/// Sets the interface's reassembly timeout to [`REASSEMBLY_TIMEOUT`] and
/// starts `screen`'s account of the interface's slots afresh (a new
/// interface has empty slots); its counters go on.
pub fn configure(interface: &mut Interface, screen: &mut FragmentScreen) {
    interface.set_reassembly_timeout(REASSEMBLY_TIMEOUT);
    screen.slots = [None; REASSEMBLY_SLOTS];
    screen.sending = None;
}

/// What the screen counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragmentCounters {
    /// IPv4 fragments received (more-fragments set or a non-zero offset).
    pub received: u64,
    /// Fragments dropped before the stack because their data would end
    /// beyond [`MAX_REASSEMBLED_PAYLOAD`].
    pub oversized: u64,
    /// Fragments dropped because all [`REASSEMBLY_SLOTS`] slots held other
    /// datagrams.
    pub no_slot: u64,
    /// Datagrams whose fragments all arrived.
    pub reassembled: u64,
    /// Datagrams given up [`REASSEMBLY_TIMEOUT`] after their first
    /// fragment, with fragments missing.
    pub timed_out: u64,
}

impl core::ops::AddAssign for FragmentCounters {
    fn add_assign(&mut self, other: Self) {
        self.received += other.received;
        self.oversized += other.oversized;
        self.no_slot += other.no_slot;
        self.reassembled += other.reassembled;
        self.timed_out += other.timed_out;
    }
}

/// Bytes of datagram data one slot's account covers, in 8-byte units.
const UNITS: usize = MAX_REASSEMBLED_PAYLOAD.div_ceil(8);

/// Which datagram a fragment belongs to: RFC 791's identification, source,
/// destination and protocol (smoltcp keys its slots the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    ident: u16,
    source: [u8; 4],
    destination: [u8; 4],
    protocol: u8,
}

/// The screen's account of one of the interface's reassembly slots: which
/// datagram it holds, since when, which 8-byte units of data have arrived
/// and, once the last fragment came, where the data ends.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: Key,
    since: Instant,
    arrived: [u64; UNITS.div_ceil(64)],
    end: Option<usize>,
}

impl Slot {
    fn new(key: Key, since: Instant) -> Self {
        Self { key, since, arrived: [0; UNITS.div_ceil(64)], end: None }
    }

    /// Notes data at `offset..offset + length` (bytes); whether the
    /// datagram is now whole.
    fn note(&mut self, offset: usize, length: usize, last: bool) -> bool {
        if last {
            self.end = Some(offset + length);
        }
        for unit in offset / 8..(offset + length).div_ceil(8).min(UNITS) {
            self.arrived[unit / 64] |= 1 << (unit % 64);
        }
        self.end.is_some_and(|end| (0..end.div_ceil(8)).all(|unit| self.arrived[unit / 64] & (1 << (unit % 64)) != 0))
    }
}

/// The fragment screen in front of the stack: it counts IPv4 fragments,
/// drops those beyond the size bound, keeps an account of the interface's
/// reassembly slots (same number, same timeout, same keys) so that
/// reassembled and timed-out datagrams and slot exhaustion can be counted,
/// and notes when a fragmented reply is being sent. It holds no heap
/// memory: about 1 KiB in all.
#[derive(Debug, Clone, Default)]
pub struct FragmentScreen {
    counters: FragmentCounters,
    slots: [Option<Slot>; REASSEMBLY_SLOTS],
    /// The identification of the fragmented datagram being sent, from its
    /// first fragment out until its last.
    sending: Option<u16>,
    /// Fragments sent.
    sent: u64,
}

/// What the screen does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// To the stack.
    Pass,
    /// To the stack, and it completes a datagram: the stack answers it now.
    Completes,
    /// Not to the stack.
    Drop,
}

impl FragmentScreen {
    /// What was counted.
    pub fn counters(&self) -> FragmentCounters {
        self.counters
    }

    /// Whether a fragmented datagram is part-sent (the interface has one
    /// fragmentation buffer, so its fragments should go out before anything
    /// else can complete).
    pub fn sending(&self) -> bool {
        self.sending.is_some()
    }

    /// Fragments sent so far (a fragmented datagram's progress).
    pub fn fragments_sent(&self) -> u64 {
        self.sent
    }

    /// Gives up the slots whose time ran out by `now`, as the interface
    /// does at the start of a poll (the data path calls it there, so a
    /// timeout is counted when it happens, not when the next fragment
    /// comes).
    pub fn expire(&mut self, now: Instant) {
        for slot in &mut self.slots {
            if slot.is_some_and(|held| held.since + REASSEMBLY_TIMEOUT < now) {
                *slot = None;
                self.counters.timed_out += 1;
            }
        }
    }

    /// Judges a received Ethernet frame at `now`.
    fn judge(&mut self, frame: &[u8], now: Instant) -> Verdict {
        let Some(fragment) = Fragment::parse(frame) else { return Verdict::Pass };
        self.counters.received += 1;
        if fragment.offset + fragment.length > MAX_REASSEMBLED_PAYLOAD {
            self.counters.oversized += 1;
            return Verdict::Drop;
        }
        self.expire(now);
        let index = match self.slots.iter().position(|slot| slot.is_some_and(|held| held.key == fragment.key)) {
            Some(index) => index,
            None => match self.slots.iter().position(Option::is_none) {
                Some(free) => {
                    self.slots[free] = Some(Slot::new(fragment.key, now));
                    free
                }
                None => {
                    self.counters.no_slot += 1;
                    return Verdict::Drop;
                }
            },
        };
        let slot = self.slots[index].as_mut().expect("found or filled above");
        if slot.note(fragment.offset, fragment.length, fragment.last) {
            self.slots[index] = None;
            self.counters.reassembled += 1;
            Verdict::Completes
        } else {
            Verdict::Pass
        }
    }

    /// Notes a frame sent: the first and last fragments of a fragmented
    /// datagram.
    fn sent(&mut self, frame: &[u8]) {
        let Some(fragment) = Fragment::parse(frame) else { return };
        self.sent += 1;
        if fragment.offset == 0 {
            self.sending = Some(fragment.key.ident);
        } else if fragment.last && self.sending == Some(fragment.key.ident) {
            self.sending = None;
        }
    }
}

/// An IPv4 fragment as the screen reads it.
struct Fragment {
    key: Key,
    /// Where its data starts in the datagram (bytes).
    offset: usize,
    /// Its data's length (bytes).
    length: usize,
    /// Whether more-fragments is clear.
    last: bool,
}

impl Fragment {
    /// The fragment in an Ethernet frame; `None` if the frame holds no IPv4
    /// fragment (or nothing the stack would take for one: it judges that).
    fn parse(frame: &[u8]) -> Option<Self> {
        let ip = frame.get(ETHERNET_HEADER_BYTES..)?;
        if frame[12..14] != ETHERTYPE_IPV4.to_be_bytes() || ip.len() < IPV4_HEADER_BYTES || ip[0] >> 4 != 4 {
            return None;
        }
        let header = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let flags = u16::from_be_bytes([ip[6], ip[7]]);
        let more = flags & 0x2000 != 0;
        let offset = usize::from(flags & 0x1fff) * 8;
        if !more && offset == 0 {
            return None;
        }
        let key = Key {
            ident: u16::from_be_bytes([ip[4], ip[5]]),
            source: ip[12..16].try_into().ok()?,
            destination: ip[16..20].try_into().ok()?,
            protocol: ip[9],
        };
        Some(Self { key, offset, length: total.saturating_sub(header), last: !more })
    }
}

/// `device` with the fragment screen in front, for one turn. A received
/// frame's two tokens (the frame, and the answer to it) both reach the
/// screen, one after the other: the answer is written only once the frame
/// has been judged.
pub struct Screened<'d, D: Device> {
    device: &'d mut D,
    screen: RefCell<&'d mut FragmentScreen>,
    /// Set once a frame that completes a datagram went to the stack: the
    /// stack's answer may be fragmented, and the next completed datagram's
    /// answer would take its buffer, so nothing more is read this turn.
    closed: Cell<bool>,
}

impl<'d, D: Device> Screened<'d, D> {
    /// `device` screened by `screen`.
    pub fn new(device: &'d mut D, screen: &'d mut FragmentScreen) -> Self {
        Self { device, screen: RefCell::new(screen), closed: Cell::new(false) }
    }

    /// Whether the screen stopped reading frames this turn (more may wait).
    pub fn closed(&self) -> bool {
        self.closed.get()
    }
}

/// A received frame, judged before the stack sees it.
pub struct ScreenedRx<'a, 'd, R: phy::RxToken> {
    token: R,
    screen: &'a RefCell<&'d mut FragmentScreen>,
    closed: &'a Cell<bool>,
    now: Instant,
}

impl<R: phy::RxToken> phy::RxToken for ScreenedRx<'_, '_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        let Self { token, screen, closed, now } = self;
        token.consume(|bytes| {
            // The verdict first: the stack may answer inside `f`.
            let verdict = screen.borrow_mut().judge(bytes, now);
            match verdict {
                Verdict::Pass => f(bytes),
                Verdict::Completes => {
                    closed.set(true);
                    f(bytes)
                }
                // An empty frame: smoltcp takes it as processed and drops it.
                Verdict::Drop => f(&[]),
            }
        })
    }
}

/// A frame to send, looked at once written.
pub struct ScreenedTx<'a, 'd, T: phy::TxToken> {
    token: T,
    screen: &'a RefCell<&'d mut FragmentScreen>,
}

impl<T: phy::TxToken> phy::TxToken for ScreenedTx<'_, '_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
        let Self { token, screen } = self;
        token.consume(length, |bytes| {
            let result = f(bytes);
            screen.borrow_mut().sent(bytes);
            result
        })
    }

    fn set_meta(&mut self, meta: phy::PacketMeta) {
        self.token.set_meta(meta);
    }
}

impl<'d, D: Device> Device for Screened<'d, D> {
    type RxToken<'a>
        = ScreenedRx<'a, 'd, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = ScreenedTx<'a, 'd, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.closed.get() {
            return None;
        }
        let (rx, tx) = self.device.receive(now)?;
        let (screen, closed) = (&self.screen, &self.closed);
        Some((ScreenedRx { token: rx, screen, closed, now }, ScreenedTx { token: tx, screen }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let token = self.device.transmit(now)?;
        Some(ScreenedTx { token, screen: &self.screen })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 header: identification `ident`,
    /// `flags` (more-fragments and offset in 8-byte units) and `payload`
    /// bytes after the header.
    fn frame(ident: u16, flags: u16, payload: usize) -> Vec<u8> {
        let mut frame = vec![0u8; ETHERNET_HEADER_BYTES + IPV4_HEADER_BYTES + payload];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = &mut frame[ETHERNET_HEADER_BYTES..];
        ip[0] = 0x45;
        let total = u16::try_from(IPV4_HEADER_BYTES + payload).unwrap();
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        ip[9] = 1;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        frame
    }

    const MORE: u16 = 0x2000;
    const T0: Instant = Instant::from_millis_const(100_000);

    #[test]
    fn whole_datagrams_pass_uncounted_and_the_size_bound_is_exact() {
        let mut screen = FragmentScreen::default();
        assert_eq!(screen.judge(&frame(1, 0, 1480), T0), Verdict::Pass);
        assert_eq!(screen.judge(&frame(1, 0x4000, 1480), T0), Verdict::Pass, "don't-fragment alone is no fragment");
        assert_eq!(screen.judge(&[0u8; 10], T0), Verdict::Pass, "too short to judge: the stack does");
        assert_eq!(screen.counters(), FragmentCounters::default());
        // A last fragment ending exactly at the bound is taken; one byte
        // more is not.
        let units = u16::try_from((MAX_REASSEMBLED_PAYLOAD - 4) / 8).unwrap();
        let rest = MAX_REASSEMBLED_PAYLOAD - usize::from(units) * 8;
        assert_eq!(screen.judge(&frame(2, units, rest), T0), Verdict::Pass);
        assert_eq!(screen.judge(&frame(3, units, rest + 1), T0), Verdict::Drop);
        assert_eq!(screen.judge(&frame(4, 0x1fff, 8), T0), Verdict::Drop, "the largest offset");
        let counters = screen.counters();
        assert_eq!((counters.received, counters.oversized), (3, 2));
    }

    #[test]
    fn a_datagram_completes_whatever_the_order_and_overlap_of_its_fragments() {
        let mut screen = FragmentScreen::default();
        // 0..1480, 1480..2960, 2960..3000, sent last first, the middle one
        // twice and once overlapping the first.
        assert_eq!(screen.judge(&frame(7, 370, 40), T0), Verdict::Pass);
        assert_eq!(screen.judge(&frame(7, MORE | 185, 1480), T0), Verdict::Pass);
        assert_eq!(screen.judge(&frame(7, MORE | 100, 1480), T0), Verdict::Pass);
        assert_eq!(screen.judge(&frame(7, MORE | 185, 1480), T0), Verdict::Pass);
        assert_eq!(screen.judge(&frame(7, MORE, 800), T0), Verdict::Completes);
        assert_eq!(screen.counters().reassembled, 1);
        assert!(screen.slots.iter().all(Option::is_none), "the slot is free again");
    }

    #[test]
    fn slots_are_bounded_and_freed_by_time_with_the_loss_counted() {
        let mut screen = FragmentScreen::default();
        for ident in 0..4 {
            assert_eq!(screen.judge(&frame(ident, MORE, 1480), T0), Verdict::Pass);
        }
        assert_eq!(screen.judge(&frame(4, MORE, 1480), T0), Verdict::Drop, "a fifth datagram finds no slot");
        assert_eq!(screen.judge(&frame(0, 185, 8), T0 + REASSEMBLY_TIMEOUT), Verdict::Completes, "on time");
        // The three others time out just after their deadline, as the
        // interface's do; a new datagram then finds a slot.
        let late = T0 + REASSEMBLY_TIMEOUT + Duration::from_millis(1);
        assert_eq!(screen.judge(&frame(5, MORE, 1480), late), Verdict::Pass);
        let counters = screen.counters();
        assert_eq!((counters.no_slot, counters.reassembled, counters.timed_out), (1, 1, 3));
    }

    #[test]
    fn a_fragmented_datagram_sent_is_followed_from_first_to_last_fragment() {
        let mut screen = FragmentScreen::default();
        screen.sent(&frame(9, MORE, 1480));
        assert!(screen.sending());
        screen.sent(&frame(3, 0, 100));
        screen.sent(&frame(9, MORE | 185, 1480));
        assert!(screen.sending(), "a whole datagram or a middle fragment between");
        screen.sent(&frame(9, 370, 40));
        assert!(!screen.sending());
        assert_eq!(screen.fragments_sent(), 3);
    }
}
