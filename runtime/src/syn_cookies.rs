//! SYN cookies in front of smoltcp: a SYN flood costs the appliance no
//! state, and a real client's handshake cannot be pushed out of the backlog.
//!
//! smoltcp keeps every half-open handshake in a socket; under a flood the
//! oldest are dropped to make room (`src/pool.rs` in the appliance), and a
//! real client whose ACK comes back later than the backlog lasts is reset.
//! While the service reports SYN pressure ([`SynCookies::note_pressure`]),
//! [`Guarded`] answers SYNs itself, statelessly: the SYN-ACK's sequence
//! number is a cookie (a keyed hash of the connection's addresses and ports,
//! a 64 s time step, and the client's MSS). An ACK that carries a valid
//! cookie proves the client real: only then does smoltcp hear of it, through
//! a replayed handshake (a SYN built from the ACK, smoltcp's SYN-ACK held
//! back, then the client's ACK) on the socket the pool gives it. smoltcp
//! chose its own initial sequence number, the client knows the cookie: for
//! that connection's life every segment's sequence (to the client) or
//! acknowledgement (from it) number is shifted by the difference, as
//! netfilter's SYNPROXY does.
//!
//! What a cookie cannot carry, a proxied connection does without: no window
//! scaling, no SACK, no timestamps (the appliance's windows are 16 KiB, so
//! scaling would not change them), and an MSS from four steps.
//!
//! The guard also applies the refusal budget ([`crate::refusals`]): while
//! the service reports every slot busy on a port, a SYN for it that finds
//! the budget spent is dropped here, before the cookie logic and smoltcp
//! see it.
//!
//! Contract: a `smoltcp::phy::Device` wrapper, like `crate::budget`; frames
//! that are not TCP, and every frame while no cookie is out and no proxied
//! connection lives, pass through untouched and uncopied (while the refusal
//! budget meters SYNs, such a frame's headers are read as smoltcp takes it,
//! and a SYN it drops reaches smoltcp as an empty frame, which smoltcp
//! ignores). Memory is fixed when [`SynCookies::new`] runs ([`HEAP_BYTES`] per interface): a
//! proxied-connection table of fixed size (when it is full, SYNs go to
//! smoltcp as before) and two buffers of the largest frame netfront hands
//! up, one for received frames and one for sent ones. They are allocated up
//! front, not when a flood starts: a flood is no time to find the heap
//! short.
//! Never: trust a frame's lengths before smoltcp's wire parsers checked them,
//! or allocate per frame.

use crate::refusals::RefusalBudget;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, RxToken as _, TxToken as _};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    TcpControl, TcpPacket, TcpRepr, TcpSeqNumber,
};

/// Most connections proxied at once.
pub const PROXIED_CONNECTIONS: usize = 512;
/// The MSS values a cookie can carry (two bits).
const MSS_STEPS: [u16; 4] = [536, 1220, 1440, 1460];
/// A cookie's time step: a cookie is good for one to two steps.
const COOKIE_STEP_SECONDS: u64 = 64;
/// How long cookies stay on after the service last reported pressure.
pub const PRESSURE_HOLD: Duration = Duration::from_secs(10);
/// A proxied connection with no frame either way for this long is forgotten.
const PROXIED_IDLE: Duration = Duration::from_secs(600);
/// A proxied connection that saw both FINs is forgotten this long after.
const PROXIED_LINGER: Duration = Duration::from_secs(60);
/// The window the cookie SYN-ACK advertises (unscaled).
const COOKIE_WINDOW: u16 = 16 * 1024;
/// The largest frame looked at, and the size of each of the two frame
/// buffers: the largest frame netfront hands up
/// ([`netfront::link::MAX_FRAME`], 65 549 bytes: netfront negotiates
/// receive GSO, so a TCP segment of up to 64 KiB arrives as one frame),
/// which is also the largest smoltcp can send through it (the vif's MTU is
/// at most 65 535 bytes). A larger frame (none comes from netfront) would
/// be dropped on the way in while cookies are active, and go out unshifted.
const FRAME_BYTES: usize = netfront::link::MAX_FRAME;

/// Heap bytes [`SynCookies::new`] allocates, and all an interface's SYN
/// cookies ever hold (164 KiB): two buffers of netfront's largest frame
/// ([`netfront::link::MAX_FRAME`]), most of it, then the proxied-connection
/// table and its replay queue.
pub const HEAP_BYTES: usize =
    2 * FRAME_BYTES + PROXIED_CONNECTIONS * (size_of::<Option<Proxied>>() + size_of::<usize>());

/// Where a proxied connection's handshake is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// smoltcp has the replayed SYN; its SYN-ACK has not been seen yet.
    Replaying,
    /// smoltcp's SYN-ACK was held back; the client's ACK waits to be
    /// replayed.
    Acknowledging,
    /// Both ends agree; numbers are shifted by `delta`.
    Established,
}

/// Who sends a frame to whom, on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Endpoints {
    source_mac: EthernetAddress,
    destination_mac: EthernetAddress,
    source: (Ipv4Address, u16),
    destination: (Ipv4Address, u16),
}

impl Endpoints {
    fn reversed(self) -> Endpoints {
        Endpoints {
            source_mac: self.destination_mac,
            destination_mac: self.source_mac,
            source: self.destination,
            destination: self.source,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Proxied {
    /// The client's frames' endpoints (client to appliance): the
    /// connection's identity too.
    endpoints: Endpoints,
    /// The client's next sequence number and window, from its ACK.
    client_seq: u32,
    client_window: u16,
    /// The cookie: the server's initial sequence number as the client knows it.
    cookie: u32,
    /// smoltcp's initial sequence number minus the cookie.
    delta: u32,
    phase: Phase,
    last_seen: Instant,
    /// FINs seen: 1 from the client, 2 from smoltcp.
    fins: u8,
    closed_at: Option<Instant>,
}

/// What SYN cookies did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynCookieCounters {
    /// SYNs answered with a cookie.
    pub cookies_sent: u64,
    /// ACKs whose cookie was good: connections handed to smoltcp.
    pub cookies_accepted: u64,
    /// Connections proxied now.
    pub proxied: u64,
    /// SYNs dropped unanswered because every slot of their port was busy
    /// and the refusal budget was spent ([`crate::refusals`]).
    pub deferred: u64,
    /// SYNs let through on the refusal budget while every slot of their
    /// port was busy.
    pub budgeted: u64,
}

impl core::ops::AddAssign for SynCookieCounters {
    fn add_assign(&mut self, other: Self) {
        self.cookies_sent += other.cookies_sent;
        self.cookies_accepted += other.cookies_accepted;
        self.proxied += other.proxied;
        self.deferred += other.deferred;
        self.budgeted += other.budgeted;
    }
}

/// The state SYN cookies (and the refusal budget) keep between turns.
pub struct SynCookies {
    state: State,
    /// The frame handed to smoltcp when it is not the device's own.
    frame: Vec<u8>,
    /// The refusal budget for the SYNs of a saturated port.
    refusals: RefusalBudget,
}

struct State {
    secret: (u64, u64),
    pressure: bool,
    pressure_until: Option<Instant>,
    /// Cookie ACKs are looked for until then (two steps after the last
    /// cookie went out).
    checking_until: Option<Instant>,
    table: Vec<Option<Proxied>>,
    /// Connections whose client ACK smoltcp is to take in next.
    replay: VecDeque<usize>,
    /// A frame in `SynCookies::frame` not yet handed to smoltcp (there was
    /// no transmit token for its answers), by length.
    held: Option<usize>,
    /// Where frames smoltcp sends are looked at.
    scratch: Vec<u8>,
    counters: SynCookieCounters,
}

impl SynCookies {
    /// SYN cookies keyed by `seed` (make it unpredictable: boot time, a
    /// counter, anything the attacker cannot read).
    pub fn new(seed: u64) -> Self {
        let mut mix = seed ^ 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            mix = mix.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut value = mix;
            value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            value ^ (value >> 31)
        };
        let state = State {
            secret: (next(), next()),
            pressure: false,
            pressure_until: None,
            checking_until: None,
            table: vec![None; PROXIED_CONNECTIONS],
            replay: VecDeque::with_capacity(PROXIED_CONNECTIONS),
            held: None,
            scratch: vec![0; FRAME_BYTES],
            counters: SynCookieCounters::default(),
        };
        Self { state, frame: vec![0; FRAME_BYTES], refusals: RefusalBudget::default() }
    }

    /// Tells whether the service's backlog is under pressure at `now`;
    /// SYNs are answered with cookies from then until [`PRESSURE_HOLD`]
    /// after the last pressure seen (so cookies do not flap on and off as
    /// the backlog drains and fills).
    pub fn note_pressure(&mut self, pressure: bool, now: Instant) {
        if pressure {
            self.state.pressure_until = Some(now + PRESSURE_HOLD);
        }
        self.state.pressure = self.state.pressure_until.is_some_and(|until| now < until);
    }

    /// Answers no SYN with a cookie from now on, until pressure is noted
    /// again (the service stopped listening: a SYN should meet smoltcp's
    /// RST, not a handshake that leads nowhere). Connections already
    /// proxied go on.
    pub fn stop(&mut self) {
        self.state.pressure_until = None;
        self.state.pressure = false;
    }

    /// Takes what the service says after its poll at `now`: the port on
    /// which every slot is busy, if any, whose SYNs the refusal budget
    /// meters until it says otherwise ([`crate::refusals`]).
    pub fn note_saturated(&mut self, port: Option<u16>, now: Instant) {
        self.refusals.note_saturated(port, now);
    }

    /// What SYN cookies and the refusal budget did so far.
    pub fn counters(&self) -> SynCookieCounters {
        let proxied = self.state.table.iter().flatten().count() as u64;
        let (deferred, budgeted) = (self.refusals.deferred(), self.refusals.spent());
        SynCookieCounters { proxied, deferred, budgeted, ..self.state.counters }
    }

    /// Whether frames wait to be replayed to smoltcp (poll again at once).
    pub fn has_replay(&self) -> bool {
        !self.state.replay.is_empty() || self.state.held.is_some()
    }
}

impl State {
    /// Whether frames must be looked at: cookies go out, may come back, or
    /// connections are proxied.
    fn active(&self, now: Instant) -> bool {
        self.pressure || self.checking_until.is_some_and(|until| now < until) || self.proxying()
    }

    fn proxying(&self) -> bool {
        self.table.iter().any(Option::is_some)
    }

    fn cookie(&self, client: (Ipv4Address, u16), server: (Ipv4Address, u16), step: u64, mss_index: u32) -> u32 {
        use core::hash::Hasher;
        #[allow(deprecated, reason = "core's SipHasher is the keyed hash no_std offers")]
        let mut hasher = core::hash::SipHasher::new_with_keys(self.secret.0, self.secret.1);
        hasher.write(&client.0.octets());
        hasher.write_u16(client.1);
        hasher.write(&server.0.octets());
        hasher.write_u16(server.1);
        hasher.write_u64(step);
        ((hasher.finish() as u32) & !3) | mss_index
    }

    /// The MSS a cookie carries, if it is good for this connection now.
    fn check_cookie(
        &self,
        client: (Ipv4Address, u16),
        server: (Ipv4Address, u16),
        value: u32,
        now: Instant,
    ) -> Option<u16> {
        let step = now.secs() as u64 / COOKIE_STEP_SECONDS;
        let mss_index = value & 3;
        [step, step.wrapping_sub(1)]
            .into_iter()
            .any(|step| self.cookie(client, server, step, mss_index) == value)
            .then(|| MSS_STEPS[mss_index as usize])
    }

    fn find(&self, client: (Ipv4Address, u16), server: (Ipv4Address, u16)) -> Option<usize> {
        self.table.iter().position(|entry| {
            entry.is_some_and(|entry| entry.endpoints.source == client && entry.endpoints.destination == server)
        })
    }

    /// Forgets connections that ended or went quiet.
    fn expire(&mut self, now: Instant) {
        for index in 0..self.table.len() {
            let Some(entry) = self.table[index] else { continue };
            let idle = now >= entry.last_seen + PROXIED_IDLE;
            let closed = entry.closed_at.is_some_and(|at| now >= at + PROXIED_LINGER);
            if idle || closed {
                self.forget(index);
            }
        }
    }

    fn forget(&mut self, index: usize) {
        self.table[index] = None;
    }

    /// Decides what becomes of a received frame; writes what smoltcp (or
    /// the client) gets instead into `out`.
    fn inspect_received(&mut self, frame: &[u8], now: Instant, out: &mut [u8]) -> Verdict {
        let Some(segment) = segment(frame) else { return Verdict::Pass };
        let (client, server) = (segment.endpoints.source, segment.endpoints.destination);
        if let Some(index) = self.find(client, server) {
            return self.client_frame(index, frame, segment, now, out);
        }
        let room = self.table.iter().any(Option::is_none);
        if segment.syn && !segment.ack && !segment.rst && self.pressure && room {
            let mss = syn_mss(frame).unwrap_or(MSS_STEPS[0]);
            let mss_index = MSS_STEPS.iter().rposition(|&step| step <= mss).unwrap_or(0) as u32;
            let cookie = self.cookie(client, server, now.secs() as u64 / COOKIE_STEP_SECONDS, mss_index);
            let fields = Fields { control: TcpControl::Syn, seq: cookie, ack: Some(segment.seq.wrapping_add(1)) };
            let length = build(segment.endpoints.reversed(), fields, COOKIE_WINDOW, Some(MSS_STEPS[3]), out);
            self.counters.cookies_sent += 1;
            self.checking_until = Some(now + Duration::from_secs(2 * COOKIE_STEP_SECONDS));
            return Verdict::Answer(length);
        }
        let checking = self.checking_until.is_some_and(|until| now < until);
        if checking && segment.ack && !segment.syn && !segment.rst {
            let cookie = segment.ack_number.wrapping_sub(1);
            if let Some(mss) = self.check_cookie(client, server, cookie, now) {
                // With no room to proxy it, drop it rather than let smoltcp
                // answer a stranger's ACK with RST: the client sends again.
                return if room { self.accept(segment, cookie, mss, now, out) } else { Verdict::Drop };
            }
        }
        Verdict::Pass
    }

    /// A good cookie ACK: remember the connection and give smoltcp the SYN
    /// it would have had. Any data the ACK carried is dropped (the client
    /// sends it again when smoltcp acknowledges less than it sent).
    fn accept(&mut self, segment: Segment, cookie: u32, mss: u16, now: Instant, out: &mut [u8]) -> Verdict {
        let Some(slot) = self.table.iter().position(Option::is_none) else {
            return Verdict::Drop;
        };
        self.table[slot] = Some(Proxied {
            endpoints: segment.endpoints,
            client_seq: segment.seq,
            client_window: segment.window,
            cookie,
            delta: 0,
            phase: Phase::Replaying,
            last_seen: now,
            fins: 0,
            closed_at: None,
        });
        self.counters.cookies_accepted += 1;
        let fields = Fields { control: TcpControl::Syn, seq: segment.seq.wrapping_sub(1), ack: None };
        Verdict::Rewritten(build(segment.endpoints, fields, segment.window, Some(mss), out))
    }

    /// The client's ACK of smoltcp's SYN-ACK for connection `index`, in
    /// smoltcp's numbers, into `out`; its length (0 if the connection is gone).
    fn replayed_ack(&mut self, index: usize, out: &mut [u8]) -> usize {
        let Some(entry) = self.table[index].as_mut() else { return 0 };
        if entry.phase != Phase::Acknowledging {
            return 0;
        }
        entry.phase = Phase::Established;
        let acknowledged = entry.cookie.wrapping_add(1).wrapping_add(entry.delta);
        let fields = Fields { control: TcpControl::None, seq: entry.client_seq, ack: Some(acknowledged) };
        build(entry.endpoints, fields, entry.client_window, None, out)
    }

    /// A frame from a proxied connection's client.
    fn client_frame(&mut self, index: usize, frame: &[u8], segment: Segment, now: Instant, out: &mut [u8]) -> Verdict {
        let Some(entry) = self.table[index].as_mut() else { return Verdict::Pass };
        entry.last_seen = now;
        if entry.phase != Phase::Established {
            // The client's data before smoltcp is ready: drop it (it is sent
            // again).
            return Verdict::Drop;
        }
        if segment.rst {
            entry.closed_at = Some(now);
        }
        if segment.fin {
            entry.fins |= 1;
            if entry.fins == 3 {
                entry.closed_at.get_or_insert(now);
            }
        }
        // `out` holds the largest frame netfront hands up; a longer one
        // cannot be shifted whole, and a cut one is no use to smoltcp.
        let Some(rewritten) = out.get_mut(..frame.len()) else { return Verdict::Drop };
        rewritten.copy_from_slice(frame);
        shift(rewritten, 0, entry.delta);
        Verdict::Rewritten(frame.len())
    }

    /// Looks at a frame smoltcp sends: shifts a proxied connection's
    /// numbers, or holds back the SYN-ACK of a replayed handshake (and queues
    /// the client's ACK for smoltcp). Returns whether to send it.
    fn inspect_sent(&mut self, frame: &mut [u8], now: Instant) -> bool {
        let Some(segment) = segment(frame) else { return true };
        let (server, client) = (segment.endpoints.source, segment.endpoints.destination);
        let Some(index) = self.find(client, server) else { return true };
        let Some(entry) = self.table[index].as_mut() else { return true };
        entry.last_seen = now;
        match entry.phase {
            Phase::Replaying if segment.syn && segment.ack => {
                entry.delta = segment.seq.wrapping_sub(entry.cookie);
                entry.phase = Phase::Acknowledging;
                self.replay.push_back(index);
                false
            }
            Phase::Replaying | Phase::Acknowledging if segment.rst => {
                // smoltcp refused the replayed SYN (nothing listens): the
                // client, which believes itself connected, must hear it, in
                // the numbers it knows.
                let by = entry.cookie.wrapping_add(1).wrapping_sub(segment.seq);
                shift(frame, by, 0);
                self.forget(index);
                true
            }
            // Anything else smoltcp says before the handshake is replayed:
            // not for the client's ears.
            Phase::Replaying | Phase::Acknowledging => false,
            Phase::Established => {
                if segment.rst {
                    entry.closed_at = Some(now);
                }
                if segment.fin {
                    entry.fins |= 2;
                    if entry.fins == 3 {
                        entry.closed_at.get_or_insert(now);
                    }
                }
                shift(frame, entry.delta.wrapping_neg(), 0);
                true
            }
        }
    }
}

/// What to do with a received frame.
enum Verdict {
    /// Hand it to smoltcp as it is.
    Pass,
    /// Hand `out[..length]` to smoltcp instead.
    Rewritten(usize),
    /// Send `out[..length]` back through the paired transmit token;
    /// smoltcp never sees the frame.
    Answer(usize),
    /// Nobody sees it.
    Drop,
}

/// The TCP fields of a frame built here.
struct Fields {
    control: TcpControl,
    seq: u32,
    ack: Option<u32>,
}

/// A TCP segment's addresses and the fields that matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Segment {
    endpoints: Endpoints,
    syn: bool,
    ack: bool,
    rst: bool,
    fin: bool,
    seq: u32,
    ack_number: u32,
    window: u16,
}

/// Parses an Ethernet frame holding an unfragmented IPv4 TCP segment;
/// `None` for anything else or anything malformed (smoltcp will judge it).
fn segment(frame: &[u8]) -> Option<Segment> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(Segment {
        endpoints: Endpoints {
            source_mac: ethernet.src_addr(),
            destination_mac: ethernet.dst_addr(),
            source: (ip.src_addr(), tcp.src_port()),
            destination: (ip.dst_addr(), tcp.dst_port()),
        },
        syn: tcp.syn(),
        ack: tcp.ack(),
        rst: tcp.rst(),
        fin: tcp.fin(),
        seq: tcp.seq_number().0 as u32,
        ack_number: tcp.ack_number().0 as u32,
        window: tcp.window_len(),
    })
}

/// The MSS option of a SYN, if it has one.
fn syn_mss(frame: &[u8]) -> Option<u16> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let (source, destination) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    TcpRepr::parse(&tcp, &source, &destination, &ChecksumCapabilities::ignored()).ok()?.max_seg_size
}

/// Moves a TCP frame's sequence number by `seq_by` and acknowledgement
/// number by `ack_by`, and fixes its checksum. The frame was parsed by
/// [`segment`] (so its lengths hold).
fn shift(frame: &mut [u8], seq_by: u32, ack_by: u32) {
    let mut ethernet = EthernetFrame::new_unchecked(frame);
    let mut ip = Ipv4Packet::new_unchecked(ethernet.payload_mut());
    let (source, destination) = (IpAddress::Ipv4(ip.src_addr()), IpAddress::Ipv4(ip.dst_addr()));
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    let seq = tcp.seq_number().0 as u32;
    tcp.set_seq_number(TcpSeqNumber(seq.wrapping_add(seq_by) as i32));
    if tcp.ack() {
        let ack = tcp.ack_number().0 as u32;
        tcp.set_ack_number(TcpSeqNumber(ack.wrapping_add(ack_by) as i32));
    }
    tcp.fill_checksum(&source, &destination);
}

/// Builds into `out` a payload-less segment between `endpoints`; returns
/// its length.
fn build(endpoints: Endpoints, fields: Fields, window: u16, mss: Option<u16>, out: &mut [u8]) -> usize {
    let Endpoints { source_mac, destination_mac, source, destination } = endpoints;
    let repr = TcpRepr {
        src_port: source.1,
        dst_port: destination.1,
        control: fields.control,
        seq_number: TcpSeqNumber(fields.seq as i32),
        ack_number: fields.ack.map(|ack| TcpSeqNumber(ack as i32)),
        window_len: window,
        window_scale: None,
        max_seg_size: mss,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload: &[],
    };
    let ip_repr = Ipv4Repr {
        src_addr: source.0,
        dst_addr: destination.0,
        next_header: IpProtocol::Tcp,
        payload_len: repr.buffer_len(),
        hop_limit: 64,
    };
    let length = ETHERNET_HEADER + ip_repr.buffer_len() + repr.buffer_len();
    let mut out_ethernet = EthernetFrame::new_unchecked(&mut out[..length]);
    out_ethernet.set_src_addr(source_mac);
    out_ethernet.set_dst_addr(destination_mac);
    out_ethernet.set_ethertype(EthernetProtocol::Ipv4);
    let checksums = ChecksumCapabilities::default();
    let mut out_ip = Ipv4Packet::new_unchecked(out_ethernet.payload_mut());
    ip_repr.emit(&mut out_ip, &checksums);
    let mut out_tcp = TcpPacket::new_unchecked(out_ip.payload_mut());
    repr.emit(&mut out_tcp, &IpAddress::Ipv4(source.0), &IpAddress::Ipv4(destination.0), &checksums);
    length
}

const ETHERNET_HEADER: usize = 14;
/// Most frames one `receive` call answers with cookies before it yields.
const ANSWERS_PER_RECEIVE: usize = 64;

/// `device` with SYN cookies in front, for one turn.
pub struct Guarded<'d, D: Device> {
    device: &'d mut D,
    cookies: &'d mut SynCookies,
    /// A replayed SYN went to smoltcp in this poll: take no further frame
    /// in it (see [`Guarded::receive`]).
    replayed_syn: bool,
}

impl<'d, D: Device> Guarded<'d, D> {
    /// `device` guarded by `cookies`.
    pub fn new(device: &'d mut D, cookies: &'d mut SynCookies) -> Self {
        Self { device, cookies, replayed_syn: false }
    }

    /// Whether this poll stopped taking frames after a replayed SYN (see
    /// [`Guarded::receive`]): frames may be waiting, so poll again at once.
    pub fn stopped_early(&self) -> bool {
        self.replayed_syn
    }
}

/// A received frame for smoltcp: the device's own, or one held here.
pub enum GuardedRx<'a, R: phy::RxToken> {
    /// The device's frame, untouched.
    Device(R),
    /// The device's frame, untouched unless the refusal budget drops it as
    /// smoltcp takes it (smoltcp then gets an empty frame, which it
    /// ignores).
    Metered {
        /// The device's token.
        token: R,
        /// The budget that decides.
        refusals: &'a mut RefusalBudget,
        /// When it arrived.
        now: Instant,
    },
    /// Bytes built, rewritten or replayed here.
    Held(&'a [u8]),
}

impl<R: phy::RxToken> phy::RxToken for GuardedRx<'_, R> {
    fn consume<T, F: FnOnce(&[u8]) -> T>(self, f: F) -> T {
        match self {
            GuardedRx::Device(token) => token.consume(f),
            GuardedRx::Metered { token, refusals, now } => {
                token.consume(|bytes| if refusals.defers(bytes, now) { f(&[]) } else { f(bytes) })
            }
            GuardedRx::Held(bytes) => f(bytes),
        }
    }
}

/// A frame smoltcp sends, looked at on its way out while connections are
/// proxied.
pub struct GuardedTx<'a, T: phy::TxToken> {
    token: T,
    state: Option<&'a mut State>,
    now: Instant,
}

impl<T: phy::TxToken> phy::TxToken for GuardedTx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
        // smoltcp sends nothing longer than the device's MTU allows, which
        // netfront keeps within FRAME_BYTES: while connections are proxied,
        // every frame is looked at.
        let Some(state) = self.state.filter(|state| state.proxying() && length <= FRAME_BYTES) else {
            return self.token.consume(length, f);
        };
        let mut scratch = core::mem::take(&mut state.scratch);
        let result = f(&mut scratch[..length]);
        if state.inspect_sent(&mut scratch[..length], self.now) {
            self.token.consume(length, |buffer| buffer.copy_from_slice(&scratch[..length]));
        }
        state.scratch = scratch;
        result
    }
}

impl<D: Device> Device for Guarded<'_, D> {
    type RxToken<'a>
        = GuardedRx<'a, D::RxToken<'a>>
    where
        Self: 'a;
    type TxToken<'a>
        = GuardedTx<'a, D::TxToken<'a>>
    where
        Self: 'a;

    fn receive(&mut self, now: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let SynCookies { state, frame, refusals } = &mut *self.cookies;
        // A frame held back for want of a transmit token, then the client
        // ACKs of replayed handshakes, before anything new.
        let pending = match state.held {
            Some(length) => Some(length),
            None => loop {
                let Some(&index) = state.replay.front() else { break None };
                let length = state.replayed_ack(index, frame);
                state.replay.pop_front();
                if length > 0 {
                    break Some(length);
                }
            },
        };
        if let Some(length) = pending {
            let Some(token) = self.device.transmit(now) else {
                state.held = Some(length);
                return None;
            };
            state.held = None;
            return Some((GuardedRx::Held(&frame[..length]), GuardedTx { token, state: Some(state), now }));
        }
        // A client sends its first data right behind the ACK that carried
        // its cookie, but smoltcp answers the replayed SYN only when it
        // sends, after this poll's frames are in; until the client's ACK is
        // replayed, the connection is not smoltcp's and its data would be
        // dropped (the client sends it again only after its retransmission
        // timeout, a second or more, holding a socket meanwhile). So the
        // poll that took a replayed SYN takes nothing more: smoltcp sends
        // its SYN-ACK, the ACK is queued for replay (`has_replay`, so the
        // loop turns again at once), and the data waiting behind it meets
        // an open connection ([`Guarded::stopped_early`]).
        if self.replayed_syn {
            return None;
        }
        if !state.active(now) {
            let (rx, tx) = self.device.receive(now)?;
            let rx = if refusals.metering() {
                GuardedRx::Metered { token: rx, refusals, now }
            } else {
                GuardedRx::Device(rx)
            };
            return Some((rx, GuardedTx { token: tx, state: None, now }));
        }
        state.expire(now);
        let accepted = state.counters.cookies_accepted;
        let mut answered = 0;
        let length = loop {
            if answered == ANSWERS_PER_RECEIVE {
                return None;
            }
            let (rx, tx) = self.device.receive(now)?;
            let verdict = rx.consume(|bytes| {
                if refusals.defers(bytes, now) {
                    return Verdict::Drop;
                }
                match state.inspect_received(bytes, now, frame) {
                    Verdict::Pass if bytes.len() <= frame.len() => {
                        frame[..bytes.len()].copy_from_slice(bytes);
                        Verdict::Rewritten(bytes.len())
                    }
                    verdict => verdict,
                }
            });
            match verdict {
                Verdict::Rewritten(length) => {
                    self.replayed_syn = state.counters.cookies_accepted != accepted;
                    break length;
                }
                Verdict::Answer(length) => {
                    tx.consume(length, |buffer| buffer.copy_from_slice(&frame[..length]));
                    answered += 1;
                }
                // Too large to hold here, or dropped: smoltcp does not see it.
                Verdict::Pass | Verdict::Drop => answered += 1,
            }
        };
        // The frame is held here now; smoltcp's reply goes out through a
        // transmit token of its own. With no room to send, the frame waits
        // for the next turn.
        let Some(token) = self.device.transmit(now) else {
            state.held = Some(length);
            return None;
        };
        Some((GuardedRx::Held(&frame[..length]), GuardedTx { token, state: Some(state), now }))
    }

    fn transmit(&mut self, now: Instant) -> Option<Self::TxToken<'_>> {
        let token = self.device.transmit(now)?;
        Some(GuardedTx { token, state: Some(&mut self.cookies.state), now })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.device.capabilities()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: (Ipv4Address, u16) = (Ipv4Address::new(10, 0, 1, 7), 40_000);
    const SERVER: (Ipv4Address, u16) = (Ipv4Address::new(10, 0, 0, 1), 80);

    fn at(seconds: u64) -> Instant {
        Instant::from_secs(seconds as i64)
    }

    #[test]
    fn a_cookie_is_good_for_its_connection_for_one_to_two_steps_and_carries_the_mss() {
        let cookies = SynCookies::new(7);
        let state = &cookies.state;
        let cookie = state.cookie(CLIENT, SERVER, 10, 2);
        assert_eq!(cookie & 3, 2);
        assert_eq!(state.check_cookie(CLIENT, SERVER, cookie, at(10 * COOKIE_STEP_SECONDS)), Some(MSS_STEPS[2]));
        assert_eq!(state.check_cookie(CLIENT, SERVER, cookie, at(11 * COOKIE_STEP_SECONDS + 63)), Some(MSS_STEPS[2]));
        assert_eq!(state.check_cookie(CLIENT, SERVER, cookie, at(12 * COOKIE_STEP_SECONDS)), None, "expired");
        let other_port = (CLIENT.0, CLIENT.1 + 1);
        assert_eq!(state.check_cookie(other_port, SERVER, cookie, at(10 * COOKIE_STEP_SECONDS)), None);
        assert_eq!(state.check_cookie(CLIENT, SERVER, cookie ^ 4, at(10 * COOKIE_STEP_SECONDS)), None);
        let other_key = SynCookies::new(8);
        assert_ne!(other_key.state.cookie(CLIENT, SERVER, 10, 2), cookie, "the secret matters");
    }

    /// A segment without data between `endpoints`, built as the guard
    /// builds its own.
    fn bare(endpoints: Endpoints, fields: Fields, mss: Option<u16>) -> Vec<u8> {
        let mut frame = vec![0u8; 80];
        let length = build(endpoints, fields, 512, mss, &mut frame);
        frame.truncate(length);
        frame
    }

    /// An ACK from the client with the given numbers.
    fn client_ack(seq: u32, ack: u32) -> Vec<u8> {
        let endpoints = Endpoints {
            source_mac: EthernetAddress([2, 0, 0, 0, 0, 7]),
            destination_mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source: CLIENT,
            destination: SERVER,
        };
        bare(endpoints, Fields { control: TcpControl::None, seq, ack: Some(ack) }, None)
    }

    /// Whether `frame`'s TCP checksum holds.
    fn checksum_holds(frame: &[u8]) -> bool {
        let ethernet = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        tcp.verify_checksum(&IpAddress::Ipv4(ip.src_addr()), &IpAddress::Ipv4(ip.dst_addr()))
    }

    #[test]
    fn shifting_moves_the_numbers_and_keeps_the_checksum_valid() {
        let mut frame = client_ack(1000, 5000);
        let before = segment(&frame).expect("a TCP frame");
        let (source, destination) = (before.endpoints.source, before.endpoints.destination);
        assert_eq!((source, destination, before.seq, before.ack_number), (CLIENT, SERVER, 1000, 5000));
        shift(&mut frame, 7u32.wrapping_neg(), u32::MAX - 10);
        let after = segment(&frame).expect("still a TCP frame");
        assert_eq!((after.seq, after.ack_number), (993, 4989), "moved, wrapping");
        assert!(checksum_holds(&frame));
    }

    #[test]
    fn only_an_ack_with_a_good_cookie_reaches_smoltcp_as_a_syn() {
        let mut cookies = SynCookies::new(3);
        cookies.note_pressure(true, at(100));
        let state = &mut cookies.state;
        state.checking_until = Some(at(200));
        let mut out = vec![0u8; FRAME_BYTES];
        let forged = client_ack(77, 12_345);
        assert!(matches!(state.inspect_received(&forged, at(100), &mut out), Verdict::Pass), "a guessed cookie");
        let cookie = state.cookie(CLIENT, SERVER, 100 / COOKIE_STEP_SECONDS, 3);
        let good = client_ack(77, cookie.wrapping_add(1));
        let Verdict::Rewritten(length) = state.inspect_received(&good, at(100), &mut out) else {
            panic!("not accepted")
        };
        let syn = segment(&out[..length]).unwrap();
        assert!(syn.syn && !syn.ack && syn.seq == 76, "the client's SYN, replayed: {syn:?}");
        assert_eq!(syn_mss(&out[..length]), Some(MSS_STEPS[3]));
        assert_eq!(state.counters.cookies_accepted, 1);
    }

    #[test]
    fn heap_bytes_is_what_new_allocates() {
        let cookies = SynCookies::new(2);
        let state = &cookies.state;
        let table = state.table.capacity() * size_of::<Option<Proxied>>();
        let replay = state.replay.capacity() * size_of::<usize>();
        assert_eq!(cookies.frame.capacity() + state.scratch.capacity() + table + replay, HEAP_BYTES);
    }

    #[test]
    fn nothing_is_looked_at_without_pressure_or_cookies_out() {
        let mut cookies = SynCookies::new(1);
        assert!(!cookies.state.active(at(0)));
        cookies.note_pressure(true, at(0));
        assert!(cookies.state.active(at(5)));
        cookies.note_pressure(false, at(11));
        assert!(!cookies.state.pressure, "pressure holds for 10 s after it was last seen");
        assert!(!cookies.state.active(at(11)));
    }

    /// A device whose frames arrive from a queue and are kept as sent; its
    /// MTU is netfront's largest.
    #[derive(Default)]
    struct Wire {
        arriving: VecDeque<Vec<u8>>,
        sent: Vec<Vec<u8>>,
    }

    struct WireRx(Vec<u8>);
    struct WireTx<'w>(&'w mut Vec<Vec<u8>>);

    impl phy::RxToken for WireRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for WireTx<'_> {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, length: usize, f: F) -> R {
            let mut frame = vec![0; length];
            let result = f(&mut frame);
            self.0.push(frame);
            result
        }
    }

    impl Device for Wire {
        type RxToken<'a> = WireRx;
        type TxToken<'a> = WireTx<'a>;

        fn receive(&mut self, _: Instant) -> Option<(WireRx, WireTx<'_>)> {
            let frame = self.arriving.pop_front()?;
            Some((WireRx(frame), WireTx(&mut self.sent)))
        }

        fn transmit(&mut self, _: Instant) -> Option<WireTx<'_>> {
            Some(WireTx(&mut self.sent))
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut capabilities = DeviceCapabilities::default();
            capabilities.medium = phy::Medium::Ethernet;
            capabilities.max_transmission_unit = FRAME_BYTES;
            capabilities
        }
    }

    /// The endpoints of netfront's test frames (`netfront::testing::ip_frame`):
    /// a client at 10.0.0.2:12345 sending to the guest at 10.0.0.1:80.
    const BULK: Endpoints = Endpoints {
        source_mac: EthernetAddress([0x02, 0, 0, 0, 0, 0x02]),
        destination_mac: EthernetAddress([0x00, 0x16, 0x3e, 0, 0, 0x01]),
        source: (Ipv4Address::new(10, 0, 0, 2), 12345),
        destination: (Ipv4Address::new(10, 0, 0, 1), 80),
    };

    /// netfront's test TCP frame (`netfront::testing::ip_frame`) with
    /// `bytes` of data, readdressed to go between `endpoints`, with ACK and
    /// PSH and these numbers.
    fn data_segment(endpoints: Endpoints, bytes: usize, seq: u32, ack: u32) -> Vec<u8> {
        let mut frame = netfront::testing::ip_frame(ETHERNET_HEADER + 20 + 20 + bytes, true, 9);
        let mut ethernet = EthernetFrame::new_checked(&mut frame[..]).unwrap();
        ethernet.set_src_addr(endpoints.source_mac);
        ethernet.set_dst_addr(endpoints.destination_mac);
        let mut ip = Ipv4Packet::new_checked(ethernet.payload_mut()).unwrap();
        ip.set_src_addr(endpoints.source.0);
        ip.set_dst_addr(endpoints.destination.0);
        ip.fill_checksum();
        let (source, destination) = (IpAddress::Ipv4(endpoints.source.0), IpAddress::Ipv4(endpoints.destination.0));
        let mut tcp = TcpPacket::new_checked(ip.payload_mut()).unwrap();
        tcp.set_src_port(endpoints.source.1);
        tcp.set_dst_port(endpoints.destination.1);
        tcp.set_seq_number(TcpSeqNumber(seq as i32));
        tcp.set_ack_number(TcpSeqNumber(ack as i32));
        tcp.clear_flags();
        tcp.set_ack(true);
        tcp.set_psh(true);
        tcp.set_urgent_at(0);
        tcp.fill_checksum(&source, &destination);
        assert!(segment(&frame).is_some_and(|parsed| parsed.endpoints == endpoints && parsed.ack));
        frame
    }

    /// A TCP frame's data.
    fn data(frame: &[u8]) -> Vec<u8> {
        let ethernet = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(ethernet.payload()).unwrap();
        TcpPacket::new_checked(ip.payload()).unwrap().payload().to_vec()
    }

    #[test]
    fn while_cookies_are_out_a_large_segment_on_a_connection_reaches_smoltcp_whole() {
        let now = at(100);
        let mut cookies = SynCookies::new(5);
        cookies.note_pressure(true, now);
        let mut wire = Wire::default();
        // A flood's SYN gets a cookie; then 30 000 bytes arrive in one
        // segment on a connection smoltcp already had.
        let flood = Endpoints { source: (Ipv4Address::new(10, 0, 0, 66), 4444), ..BULK };
        wire.arriving.push_back(bare(flood, Fields { control: TcpControl::Syn, seq: 1, ack: None }, Some(1460)));
        let upload = data_segment(BULK, 30_000, 5_000, 9_000);
        assert!(upload.len() > 9000 + 14 + 4, "more than a jumbo frame");
        wire.arriving.push_back(upload.clone());
        let mut guarded = Guarded::new(&mut wire, &mut cookies);
        let (rx, _) = guarded.receive(now).expect("the segment is handed on, not dropped");
        assert_eq!(phy::RxToken::consume(rx, <[u8]>::to_vec), upload, "whole and unchanged");
        assert_eq!(cookies.counters().cookies_sent, 1);
        assert_eq!(wire.sent.len(), 1, "the cookie SYN-ACK");
    }

    #[test]
    fn a_proxied_connections_large_segments_are_shifted_whole_both_ways() {
        let now = at(100);
        let mut cookies = SynCookies::new(5);
        cookies.note_pressure(true, now);
        let mut wire = Wire::default();
        let (client_isn, server_isn) = (1_000u32, 70_000u32);
        // The handshake, smoltcp's part played here. The client's SYN gets a
        // cookie...
        let syn = Fields { control: TcpControl::Syn, seq: client_isn, ack: None };
        wire.arriving.push_back(bare(BULK, syn, Some(1460)));
        assert!(Guarded::new(&mut wire, &mut cookies).receive(now).is_none(), "answered here");
        let cookie_syn_ack = segment(&wire.sent.pop().expect("a SYN-ACK")).unwrap();
        assert!(cookie_syn_ack.syn && cookie_syn_ack.ack_number == client_isn + 1);
        let cookie = cookie_syn_ack.seq;
        // ...its ACK brings the cookie back: smoltcp gets a SYN, and its
        // SYN-ACK is held back...
        let ack = Fields { control: TcpControl::None, seq: client_isn + 1, ack: Some(cookie.wrapping_add(1)) };
        wire.arriving.push_back(bare(BULK, ack, None));
        let mut guarded = Guarded::new(&mut wire, &mut cookies);
        let (rx, tx) = guarded.receive(now).expect("the replayed SYN");
        assert!(phy::RxToken::consume(rx, |bytes| segment(bytes).unwrap().syn));
        let syn_ack = Fields { control: TcpControl::Syn, seq: server_isn, ack: Some(client_isn + 1) };
        let syn_ack = bare(BULK.reversed(), syn_ack, Some(1460));
        phy::TxToken::consume(tx, syn_ack.len(), |buffer| buffer.copy_from_slice(&syn_ack));
        // ...and the client's ACK is replayed to smoltcp in its numbers.
        let (rx, _) = guarded.receive(now).expect("the replayed ACK");
        assert_eq!(phy::RxToken::consume(rx, |bytes| segment(bytes).unwrap().ack_number), server_isn + 1);
        assert!(wire.sent.is_empty(), "smoltcp's SYN-ACK stayed here");
        assert_eq!(cookies.counters().proxied, 1);

        // 30 000 bytes from the client in one segment: smoltcp gets them
        // whole, with the acknowledgement number in its own numbers.
        let upload = data_segment(BULK, 30_000, client_isn + 1, cookie.wrapping_add(1));
        wire.arriving.push_back(upload.clone());
        let mut guarded = Guarded::new(&mut wire, &mut cookies);
        let (rx, _) = guarded.receive(now).expect("the segment is handed on, not dropped");
        let received = phy::RxToken::consume(rx, <[u8]>::to_vec);
        assert_eq!(received.len(), upload.len(), "whole");
        let seen = segment(&received).unwrap();
        assert_eq!((seen.seq, seen.ack_number), (client_isn + 1, server_isn + 1));
        assert_eq!(data(&received), data(&upload));
        assert!(checksum_holds(&received));
        // A 30 000-byte frame from smoltcp (which keeps to the MSS the
        // cookie carried, but the guard does not count on that): the client
        // gets it whole, in the cookie's numbers.
        let download = data_segment(BULK.reversed(), 30_000, server_isn + 1, client_isn + 30_001);
        let tx = guarded.transmit(now).expect("room to send");
        phy::TxToken::consume(tx, download.len(), |buffer| buffer.copy_from_slice(&download));
        let sent = wire.sent.pop().expect("sent");
        assert_eq!(sent.len(), download.len(), "whole");
        let seen = segment(&sent).unwrap();
        assert_eq!((seen.seq, seen.ack_number), (cookie.wrapping_add(1), client_isn + 30_001));
        assert_eq!(data(&sent), data(&download));
        assert!(checksum_holds(&sent));
        // A frame longer than the buffer (none comes from netfront) is
        // dropped, not cut short: a cut frame's headers promise more bytes
        // than it has.
        let mut short = vec![0u8; upload.len() - 1];
        assert!(matches!(cookies.state.inspect_received(&upload, now, &mut short), Verdict::Drop));
    }

    /// A SYN from `source` (client port `port`) to the guest's HTTP port.
    fn syn_from(port: u16) -> Vec<u8> {
        let endpoints = Endpoints { source: (Ipv4Address::new(10, 0, 0, 9), port), ..BULK };
        bare(endpoints, Fields { control: TcpControl::Syn, seq: 1, ack: None }, Some(1460))
    }

    /// Takes every frame the guard hands smoltcp in one poll, as smoltcp
    /// would (till `receive` says no more).
    fn one_poll(wire: &mut Wire, cookies: &mut SynCookies, now: Instant) -> Vec<Vec<u8>> {
        let mut guarded = Guarded::new(wire, cookies);
        let mut taken = Vec::new();
        while let Some((rx, _)) = guarded.receive(now) {
            taken.push(phy::RxToken::consume(rx, <[u8]>::to_vec));
        }
        taken
    }

    #[test]
    fn past_the_refusal_budget_a_syn_to_the_saturated_port_reaches_nobody() {
        let now = at(100);
        let mut cookies = SynCookies::new(9);
        cookies.note_saturated(Some(80), now);
        let mut wire = Wire::default();
        let budget = crate::refusals::REFUSAL_BURST as u16;
        for port in 0..budget + 3 {
            wire.arriving.push_back(syn_from(1000 + port));
        }
        let upload = data_segment(BULK, 100, 5, 9);
        wire.arriving.push_back(upload.clone());
        // No cookie out: frames are handed on as they come, and the SYNs past
        // the budget as empty frames, which smoltcp ignores.
        let taken = one_poll(&mut wire, &mut cookies, now);
        assert_eq!(taken.len(), usize::from(budget) + 4);
        assert!(taken[..usize::from(budget)].iter().all(|frame| segment(frame).is_some_and(|syn| syn.syn)));
        assert!(taken[usize::from(budget)..usize::from(budget) + 3].iter().all(Vec::is_empty));
        assert_eq!(taken.last(), Some(&upload), "anything but a SYN goes on");
        assert_eq!((cookies.counters().budgeted, cookies.counters().deferred), (u64::from(budget), 3));
        // With cookies out, the SYN past the budget gets no cookie either.
        cookies.note_pressure(true, now);
        wire.arriving.push_back(syn_from(2000));
        assert!(one_poll(&mut wire, &mut cookies, now).is_empty());
        assert!(wire.sent.is_empty(), "no SYN-ACK");
        assert_eq!((cookies.counters().cookies_sent, cookies.counters().deferred), (0, 4));
        // A slot free again: SYNs go on, and get their cookie.
        cookies.note_saturated(None, now);
        wire.arriving.push_back(syn_from(2001));
        assert!(one_poll(&mut wire, &mut cookies, now).is_empty());
        assert_eq!((wire.sent.len(), cookies.counters().cookies_sent), (1, 1));
    }

    #[test]
    fn the_data_right_behind_a_cookie_ack_waits_for_the_replayed_handshake() {
        let now = at(100);
        let mut cookies = SynCookies::new(4);
        cookies.note_pressure(true, now);
        let mut wire = Wire::default();
        let (client_isn, server_isn) = (3_000u32, 90_000u32);
        wire.arriving.push_back(bare(
            BULK,
            Fields { control: TcpControl::Syn, seq: client_isn, ack: None },
            Some(1460),
        ));
        assert!(one_poll(&mut wire, &mut cookies, now).is_empty(), "answered with a cookie");
        let cookie = segment(&wire.sent.pop().expect("a SYN-ACK")).unwrap().seq;
        // The client's ACK and its request, in one batch.
        let ack = Fields { control: TcpControl::None, seq: client_isn + 1, ack: Some(cookie.wrapping_add(1)) };
        wire.arriving.push_back(bare(BULK, ack, None));
        let request = data_segment(BULK, 40, client_isn + 1, cookie.wrapping_add(1));
        wire.arriving.push_back(request.clone());
        // The poll that takes the replayed SYN takes nothing more...
        let mut guarded = Guarded::new(&mut wire, &mut cookies);
        let (rx, _) = guarded.receive(now).expect("the replayed SYN");
        assert!(phy::RxToken::consume(rx, |bytes| segment(bytes).unwrap().syn));
        assert!(guarded.receive(now).is_none(), "the request waits");
        // ...smoltcp's SYN-ACK goes out then, and is held back...
        let fields = Fields { control: TcpControl::Syn, seq: server_isn, ack: Some(client_isn + 1) };
        let syn_ack = bare(BULK.reversed(), fields, None);
        let tx = guarded.transmit(now).expect("room to send");
        phy::TxToken::consume(tx, syn_ack.len(), |buffer| buffer.copy_from_slice(&syn_ack));
        assert!(cookies.has_replay(), "the loop turns again at once");
        // ...and the next poll replays the ACK, then hands on the request,
        // in smoltcp's numbers.
        let taken = one_poll(&mut wire, &mut cookies, now);
        assert_eq!(taken.len(), 2, "{taken:?}");
        assert_eq!(segment(&taken[0]).unwrap().ack_number, server_isn + 1);
        assert_eq!(data(&taken[1]), data(&request));
        assert_eq!(segment(&taken[1]).unwrap().ack_number, server_isn + 1);
        assert!(wire.sent.is_empty());
    }
}
