//! A pool of listening sockets on one port, each followed through its life
//! with a bound on every stage. The HTTP, metrics and TCP echo services are
//! each one pool plus what they do with an open connection.
//!
//! Who frees a socket, stage by stage (the numbers are [`TcpBounds`]):
//! - **half-open** (SYN received, handshake unfinished): smoltcp aborts it
//!   after `half_open_timeout` without the client's ACK; beyond
//!   [`SocketPool::half_open_cap`] half-open sockets the oldest is aborted
//!   first, so a SYN flood churns through the backlog and never reaches the
//!   sockets that serve; and while fewer than the pool's listening reserve
//!   (the frames one turn of the event loop takes in, see
//!   `runtime::budget`) listen, the oldest half-open ones are aborted too, so
//!   every SYN of the next batch finds a listener instead of a RST;
//! - **open**: the service bounds what the peer does (the HTTP engine's
//!   timers, the metrics request timer, the echo idle timer); beneath it
//!   smoltcp aborts a peer that stays silent for `silence_timeout` while
//!   data waits for it or while keep-alive probes (every
//!   `keep_alive_interval` of quiet) go unanswered: a vanished client;
//! - **closing** (the service closed; the peer has not finished: FIN-WAIT,
//!   LAST-ACK, a final response it will not read): aborted after
//!   `close_timeout`;
//! - **closed** or **time-wait**: listens again at the next poll, unless
//!   the pool has stopped listening ([`SocketPool::stop_listening`], the
//!   appliance draining before it ends): then it stays closed.
//!
//! Contract: never panics; never allocates after [`SocketPool::add_sockets`];
//! every socket in the pool listens again within the bounds above, whatever
//! the peer does or fails to do.

use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{IpAddress, IpListenEndpoint};

/// The time bounds every pooled socket lives within.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpBounds {
    /// How long a handshake may stay unfinished (SYN-RECEIVED).
    pub half_open_timeout: Duration,
    /// How long an open connection's peer may stay silent while data waits
    /// for it or keep-alive probes go out.
    pub silence_timeout: Duration,
    /// Quiet time on an open connection after which a keep-alive probe goes
    /// out.
    pub keep_alive_interval: Duration,
    /// How long the peer has to finish closing once the service closed.
    pub close_timeout: Duration,
}

impl Default for TcpBounds {
    /// 5 s half-open, 30 s silence with a probe every 10 s, 10 s to close.
    fn default() -> TcpBounds {
        TcpBounds {
            half_open_timeout: Duration::from_secs(5),
            silence_timeout: Duration::from_secs(30),
            keep_alive_interval: Duration::from_secs(10),
            close_timeout: Duration::from_secs(10),
        }
    }
}

/// Where a pooled socket is in its life, as the service sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a SYN.
    Listening,
    /// A SYN arrived; the handshake is unfinished. `order` breaks ties
    /// between sockets seen half-open at the same instant (lower: older).
    HalfOpen {
        /// When the service first saw it half-open.
        since: Instant,
        /// Position among the half-open sockets seen so far.
        order: u64,
    },
    /// Established: the service's to serve.
    Open {
        /// When the service first saw it open.
        since: Instant,
    },
    /// The service closed it; the peer has `close_timeout` from `since` to
    /// finish.
    Closing {
        /// When the service closed it.
        since: Instant,
    },
    /// Closed and not listening: the pool stopped listening.
    Stopped,
}

/// What changed for a socket since the last poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing the service must act on.
    None,
    /// The handshake finished: the service serves it or refuses it now.
    Opened,
    /// The connection is over (closed, reset, timed out or aborted) and the
    /// socket listens again: the service lets go of what it held for it.
    Freed,
}

/// Counts of what the pool's bounds did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCounters {
    /// Half-open sockets aborted to keep within the cap (oldest first).
    pub half_open_dropped: u64,
    /// Closing sockets aborted because the peer did not finish in time.
    pub close_timeouts: u64,
}

struct Slot<T> {
    handle: SocketHandle,
    stage: Stage,
    state: T,
}

/// Sockets listening on one port, with per-slot service state `T`.
pub struct SocketPool<T> {
    port: u16,
    /// The local address it accepts connections to (`None`: any).
    address: Option<IpAddress>,
    /// Whether it stopped listening for good.
    stopped: bool,
    bounds: TcpBounds,
    half_open_cap: usize,
    listen_reserve: usize,
    slots: Vec<Slot<T>>,
    next_order: u64,
    /// What the bounds did so far.
    pub counters: PoolCounters,
}

impl<T> SocketPool<T> {
    /// An empty pool for `port`; at most `half_open_cap` of its sockets are
    /// half-open at once (at least 1), and half-open ones give way while
    /// fewer than `listen_reserve` listen.
    pub fn new(port: u16, bounds: TcpBounds, half_open_cap: usize, listen_reserve: usize) -> Self {
        Self {
            port,
            address: None,
            stopped: false,
            bounds,
            half_open_cap: half_open_cap.max(1),
            listen_reserve,
            slots: Vec::new(),
            next_order: 0,
            counters: PoolCounters::default(),
        }
    }

    /// This pool, accepting only connections to `address` (a SYN to any
    /// other address of the interface finds no listener, and smoltcp
    /// answers it with RST).
    pub fn bound_to(mut self, address: Option<IpAddress>) -> Self {
        self.address = address;
        self
    }

    fn listen_endpoint(&self) -> IpListenEndpoint {
        IpListenEndpoint { addr: self.address, port: self.port }
    }

    /// Adds `count` sockets with `rx` and `tx` bytes of buffer, each with
    /// service state `state()`, listening from the next poll on.
    pub fn add_sockets(
        &mut self,
        sockets: &mut SocketSet<'static>,
        count: usize,
        (rx, tx): (usize, usize),
        mut state: impl FnMut() -> T,
    ) {
        self.slots.reserve_exact(count);
        for _ in 0..count {
            let socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; rx]), tcp::SocketBuffer::new(vec![0; tx]));
            let handle = sockets.add(socket);
            self.slots.push(Slot { handle, stage: Stage::Listening, state: state() });
        }
    }

    /// How many sockets the pool has.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the pool has no socket.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Most sockets half-open at once.
    pub fn half_open_cap(&self) -> usize {
        self.half_open_cap
    }

    /// The stage of slot `index`.
    pub fn stage(&self, index: usize) -> Stage {
        self.slots[index].stage
    }

    /// How many slots are in a stage `matches` accepts.
    pub fn count(&self, matches: impl Fn(&Stage) -> bool) -> usize {
        self.slots.iter().filter(|slot| matches(&slot.stage)).count()
    }

    /// Slot `index`'s socket handle.
    pub fn handle(&self, index: usize) -> SocketHandle {
        self.slots[index].handle
    }

    /// Slot `index`'s service state.
    pub fn state(&self, index: usize) -> &T {
        &self.slots[index].state
    }

    /// Slot `index`'s service state, to change.
    pub fn state_mut(&mut self, index: usize) -> &mut T {
        &mut self.slots[index].state
    }

    /// Every slot's service state, in slot order.
    pub fn states(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|slot| &slot.state)
    }

    /// Slot `index`'s socket and service state, for the service to work on.
    pub fn slot_mut<'s>(
        &mut self,
        index: usize,
        sockets: &'s mut SocketSet<'static>,
    ) -> (&'s mut tcp::Socket<'static>, &mut T) {
        let slot = &mut self.slots[index];
        (sockets.get_mut::<tcp::Socket>(slot.handle), &mut slot.state)
    }

    /// Brings slot `index`'s stage up to date with its socket at `now`:
    /// re-listens a finished socket, notes a new half-open or open one, and
    /// aborts a close that ran out of time.
    pub fn update(&mut self, index: usize, sockets: &mut SocketSet<'static>, now: Instant) -> Change {
        let (endpoint, bounds, stopped) = (self.listen_endpoint(), self.bounds, self.stopped);
        let (port, slot) = (endpoint.port, &mut self.slots[index]);
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
        if !socket.is_open() {
            let was_serving = matches!(slot.stage, Stage::Open { .. } | Stage::Closing { .. });
            if stopped {
                slot.stage = Stage::Stopped;
                return if was_serving { Change::Freed } else { Change::None };
            }
            slot.stage = Stage::Listening;
            socket.set_keep_alive(None);
            socket.set_timeout(Some(smoltcp_duration(bounds.half_open_timeout)));
            if let Err(error) = socket.listen(endpoint) {
                log::error!("listen on {port}: {error:?}");
            }
            return if was_serving { Change::Freed } else { Change::None };
        }
        match (socket.state(), slot.stage) {
            (tcp::State::Listen, _) => slot.stage = Stage::Listening,
            (tcp::State::SynReceived, Stage::HalfOpen { .. }) => {}
            (tcp::State::SynReceived | tcp::State::SynSent, _) => {
                slot.stage = Stage::HalfOpen { since: now, order: self.next_order };
                self.next_order += 1;
            }
            (_, Stage::Listening | Stage::HalfOpen { .. }) => {
                slot.stage = Stage::Open { since: now };
                socket.set_timeout(Some(smoltcp_duration(bounds.silence_timeout)));
                socket.set_keep_alive(Some(smoltcp_duration(bounds.keep_alive_interval)));
                return Change::Opened;
            }
            (_, Stage::Closing { since }) if now >= since + smoltcp_duration(bounds.close_timeout) => {
                socket.abort();
                self.counters.close_timeouts += 1;
            }
            (_, Stage::Open { .. } | Stage::Closing { .. } | Stage::Stopped) => {}
        }
        Change::None
    }

    /// Stops listening for good (the appliance drains before it ends):
    /// listening sockets close (a SYN then finds no listener and smoltcp
    /// answers RST, so a client fails at once), half-open handshakes are
    /// reset, and no socket listens again. Open and closing connections go
    /// on.
    pub fn stop_listening(&mut self, sockets: &mut SocketSet<'static>) {
        self.stopped = true;
        for slot in &mut self.slots {
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            match slot.stage {
                Stage::Listening => socket.close(),
                Stage::HalfOpen { .. } => socket.abort(),
                Stage::Open { .. } | Stage::Closing { .. } | Stage::Stopped => continue,
            }
            slot.stage = Stage::Stopped;
        }
    }

    /// How many connections are still owed something: open or half-open
    /// ones, and closing ones whose data or FIN the peer has not yet
    /// acknowledged (once it has, the peer has the whole answer).
    pub fn in_flight(&self, sockets: &SocketSet<'static>) -> usize {
        (0..self.slots.len()).filter(|&index| self.owes(index, sockets)).count()
    }

    fn owes(&self, index: usize, sockets: &SocketSet<'static>) -> bool {
        let slot = &self.slots[index];
        match slot.stage {
            Stage::Listening | Stage::Stopped => false,
            Stage::HalfOpen { .. } | Stage::Open { .. } => true,
            Stage::Closing { .. } => {
                let socket = sockets.get::<tcp::Socket>(slot.handle);
                let acknowledged = matches!(
                    socket.state(),
                    tcp::State::Closed | tcp::State::Listen | tcp::State::FinWait2 | tcp::State::TimeWait
                );
                !acknowledged || socket.send_queue() > 0
            }
        }
    }

    /// Resets every connection [`SocketPool::in_flight`] counts; returns
    /// how many.
    pub fn cut(&mut self, sockets: &mut SocketSet<'static>, now: Instant) -> usize {
        let mut cut = 0;
        for index in 0..self.slots.len() {
            if self.owes(index, sockets) {
                self.close(index, sockets, now, false);
                cut += 1;
            }
        }
        cut
    }

    /// Closes slot `index`'s connection: gracefully (FIN after what is
    /// queued) or by reset; either way the close bound starts now.
    pub fn close(&mut self, index: usize, sockets: &mut SocketSet<'static>, now: Instant, graceful: bool) {
        let slot = &mut self.slots[index];
        let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
        if graceful {
            socket.close();
        } else {
            socket.abort();
        }
        if !matches!(slot.stage, Stage::Closing { .. }) {
            slot.stage = Stage::Closing { since: now };
        }
    }

    /// Aborts the oldest half-open sockets until at most the cap remain and
    /// the listening reserve is met (or none is half-open); returns how many
    /// it aborted. Call it after every slot's update.
    pub fn enforce_half_open_cap(&mut self, sockets: &mut SocketSet<'static>) -> usize {
        let mut half_open = self.count(|stage| matches!(stage, Stage::HalfOpen { .. }));
        let mut listening = self.count(|stage| matches!(stage, Stage::Listening));
        let endpoint = self.listen_endpoint();
        let mut dropped = 0;
        while half_open > self.half_open_cap || (half_open > 0 && listening < self.listen_reserve) {
            let oldest = self
                .slots
                .iter_mut()
                .filter_map(|slot| match slot.stage {
                    Stage::HalfOpen { since, order } => Some(((since, order), slot)),
                    _ => None,
                })
                .min_by_key(|(key, _)| *key)
                .map(|(_, slot)| slot);
            let Some(slot) = oldest else { break };
            let socket = sockets.get_mut::<tcp::Socket>(slot.handle);
            socket.abort();
            // It listens again at once, so no RST goes out (no backscatter to
            // spoofed sources); a real client's ACK will find no connection
            // and be answered with RST then.
            let _ = socket.listen(endpoint);
            slot.stage = Stage::Listening;
            half_open -= 1;
            listening += 1;
            dropped += 1;
        }
        self.counters.half_open_dropped += dropped as u64;
        dropped
    }

    /// The earliest close deadline among the closing sockets (the stack
    /// keeps its own timers for the other stages).
    pub fn deadline(&self) -> Option<Instant> {
        let close = smoltcp_duration(self.bounds.close_timeout);
        self.slots
            .iter()
            .filter_map(|slot| match slot.stage {
                Stage::Closing { since } => Some(since + close),
                _ => None,
            })
            .min()
    }
}

/// A `core` duration as smoltcp's.
pub fn smoltcp_duration(duration: Duration) -> smoltcp::time::Duration {
    smoltcp::time::Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

/// The earlier of two optional deadlines.
pub fn earliest(first: Option<Instant>, second: Option<Instant>) -> Option<Instant> {
    match (first, second) {
        (Some(first), Some(second)) => Some(first.min(second)),
        (first, second) => first.or(second),
    }
}
