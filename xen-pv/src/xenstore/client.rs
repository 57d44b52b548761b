//! [`Xenstore`]: blocking xenstore operations over the shared ring.
//!
//! One request is in flight at a time. An operation encodes its request,
//! writes it to the request ring (in pieces if it is larger than the ring,
//! waiting for the daemon to make room), notifies the daemon, then reads
//! messages until the reply with its request id arrives. Watch events read
//! meanwhile are queued; [`Xenstore::next_watch_event`] hands them out.
//!
//! Operations outside a transaction are methods of [`Xenstore`]; inside
//! one, of the [`Transaction`] handle that [`Xenstore::transaction`] gives
//! its body (started, committed and retried on `EAGAIN` for you) or that
//! [`Xenstore::in_transaction`] makes for a transaction you manage with
//! [`Xenstore::transaction_start`] and [`Xenstore::transaction_end`].
//!
//! Waiting follows the event-channel contract: take the port's pending bit,
//! look at the ring, and only then sleep in `SCHEDOP_poll` if there is
//! nothing to do. The daemon is told about every request written, and
//! about consumed replies when the response ring was full (it may be
//! waiting for room), as Linux's xenbus does.
//!
//! Deadlines: every request has one, [`Xenstore::request_timeout`] after it
//! starts ([`DEFAULT_REQUEST_TIMEOUT_NS`] unless set), read and slept on
//! with the [`Clock`] the client was built with; writing the request and
//! awaiting the reply share it. When it passes, the operation fails with
//! `TimedOut` and the request is abandoned like any failed one.
//!
//! Circuit breaker, so that a stalled daemon costs one timeout and not one
//! per operation: after a timeout, later requests fail with `TimedOut` at
//! once, neither sent nor waited for, until the daemon shows life by
//! sending any message (a late reply, a watch event). Each request first
//! looks for one without waiting, and so does every read of watch events.
//! So that a daemon that lost the request (and will never send its late
//! reply) cannot shut the client out for good, one request is let through
//! as a probe [`STALLED_PROBE_INTERVAL_NS`](super::deadline::STALLED_PROBE_INTERVAL_NS)
//! after the last timeout.
//!
//! Watch events are bounded and coalesced: an event equal to one already
//! queued is dropped (both only say "look again"); once
//! [`WATCH_EVENT_QUEUE_LIMIT`] events are queued, so is an event whose
//! token already has one queued, while one with a new token is still queued
//! (a guest sets few tokens), up to twice the limit, past which every event
//! is dropped. [`Xenstore::dropped_watch_events`] counts them.
//!
//! Recovery: a reply to a request that failed (or timed out) is recognised
//! by its id and discarded when it shows up later. Request ids count up, so
//! a reply to any id already issued, other than the request in flight, is
//! late or repeated, however many requests failed before it (a list of the
//! last few failed ones would not do: a daemon sending more stray replies
//! than the list held made every later request fail for another's late
//! reply, for good). Only a reply to an id not issued yet is a reply to a
//! request that was not made. A transaction a timeout
//! left open (its abort timed out or was refused, or its start's reply came
//! late) is aborted before the next request the daemon answers, so that it
//! does not hold one of the daemon's per-domain transaction slots for good.
//! If the stream can no longer be framed (a header announcing more than
//! `XENSTORE_PAYLOAD_MAX` bytes, ring indices more than a ring apart, a
//! request only partly written, even when its deadline cut it short) every
//! later operation fails with the same `Protocol` error.
//!
//! Never: panic on what the daemon sends, return a reply that was meant for
//! another request, wait past a request's deadline, or queue watch events
//! without bound.

use super::deadline::{Breaker, Clock, DEFAULT_REQUEST_TIMEOUT_NS};
use super::error::XenstoreError;
use super::ring::ByteRing;
use super::wire::{self, Reply, ReplyBody, Request, TransactionId, WatchEvent};
use crate::abi::event_channel::Port;
use crate::abi::xenstore::{MessageHeader, MessageType, XENSTORE_RING_SIZE, XenstoreInterface};
use crate::event_channel::EventChannels;
use crate::hypervisor::Hypervisor;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// How many transactions left open by a timeout are remembered, to abort
/// once the daemon answers again (xenstored lets a domain hold 10 open).
const ORPHANED_TRANSACTIONS_KEPT: usize = 8;

/// Watch events queued past which an event whose token already has one
/// queued is dropped.
pub const WATCH_EVENT_QUEUE_LIMIT: usize = 64;

/// Watch events queued past which every event is dropped, whatever its
/// token: the bound a daemon inventing tokens cannot push further.
const WATCH_EVENT_QUEUE_HARD_LIMIT: usize = 2 * WATCH_EVENT_QUEUE_LIMIT;

/// A framed message: its header bytes and its payload.
type RawMessage = ([u8; MessageHeader::SIZE], Vec<u8>);

/// A message from the daemon that is not a watch event.
struct Incoming {
    request_id: u32,
    reply: Result<Reply, XenstoreError>,
}

/// A connection to xenstored.
pub struct Xenstore<'a, H: Hypervisor> {
    events: &'a EventChannels<'a, H>,
    ring: &'a XenstoreInterface,
    port: Port,
    clock: Clock<H>,
    request_timeout: u64,
    breaker: Breaker,
    next_request_id: u32,
    watch_events: VecDeque<WatchEvent>,
    dropped_watch_events: u64,
    /// Bytes read from the response ring and not yet framed into messages.
    incoming: Vec<u8>,
    orphaned_transactions: VecDeque<TransactionId>,
    discarded_messages: u64,
    broken: Option<&'static str>,
}

impl<'a, H: Hypervisor> Xenstore<'a, H> {
    /// A client over the xenstore page `ring` and its event channel `port`
    /// (`HVM_PARAM_STORE_PFN` and `HVM_PARAM_STORE_EVTCHN`), whose requests
    /// have deadlines in `clock`'s time.
    pub fn new(events: &'a EventChannels<'a, H>, ring: &'a XenstoreInterface, port: Port, clock: Clock<H>) -> Self {
        Self {
            events,
            ring,
            port,
            clock,
            request_timeout: DEFAULT_REQUEST_TIMEOUT_NS,
            breaker: Breaker::default(),
            next_request_id: 1,
            watch_events: VecDeque::new(),
            dropped_watch_events: 0,
            incoming: Vec::new(),
            orphaned_transactions: VecDeque::new(),
            discarded_messages: 0,
            broken: None,
        }
    }

    /// After a resume in a new domain: the daemon there knows nothing of
    /// this connection. Talks to it on `port` (the new
    /// `HVM_PARAM_STORE_EVTCHN`) from now on, with nothing in flight: the
    /// unread bytes of the response ring, any partial message, queued
    /// watch events (the watches are gone: set them again), transactions
    /// left open and a tripped breaker are dropped. Request ids go on
    /// counting, so a late reply to an old request is still recognised.
    /// A request the old daemon never read (a stream broken by one sent in
    /// part) stays broken: the new daemon would read it.
    pub fn resume(&mut self, port: Port) {
        self.port = port;
        self.incoming.clear();
        self.watch_events.clear();
        self.orphaned_transactions.clear();
        self.breaker = Breaker::default();
        let responses = ByteRing::responses(self.ring);
        responses.discard();
        if ByteRing::requests(self.ring).in_flight() == Ok(0) {
            self.broken = None;
        }
    }

    /// How long a request may take, writing it and awaiting its reply (ns).
    pub fn request_timeout(&self) -> u64 {
        self.request_timeout
    }

    /// Sets how long later requests may take (ns).
    pub fn set_request_timeout(&mut self, nanoseconds: u64) {
        self.request_timeout = nanoseconds;
    }

    /// Whether a request timed out and the daemon has sent nothing since
    /// (requests then fail at once, but for the occasional probe).
    pub fn daemon_stalled(&self) -> bool {
        self.breaker.is_open()
    }

    /// Why the stream can no longer be framed, once it cannot (see the
    /// module's recovery rules): every operation then fails with
    /// `Protocol` of this reason, for good.
    pub fn stream_broken(&self) -> Option<&'static str> {
        self.broken
    }

    /// Where the xenstore page is (its address), to check that a resumed
    /// domain's page is the one this client uses.
    pub fn ring_address(&self) -> u64 {
        self.ring as *const XenstoreInterface as u64
    }

    /// The event channel the daemon signals, for an event loop's wait set.
    pub fn port(&self) -> Port {
        self.port
    }

    /// The value of `path` (relative paths are under the domain's home,
    /// `/local/domain/<id>`).
    pub fn read(&mut self, path: &str) -> Result<String, XenstoreError> {
        value(self.request(None, Request::Read { path })?)
    }

    /// Sets `path` to `value`, creating it and missing parents.
    pub fn write(&mut self, path: &str, value: &str) -> Result<(), XenstoreError> {
        acknowledged(self.request(None, Request::Write { path, value: value.as_bytes() })?)
    }

    /// The names of `path`'s children.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XenstoreError> {
        children(self.request(None, Request::Directory { path })?)
    }

    /// Creates `path` with an empty value if it does not exist.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XenstoreError> {
        acknowledged(self.request(None, Request::Mkdir { path })?)
    }

    /// Removes `path` and everything below it (fine if it is already gone
    /// but its parent exists).
    pub fn rm(&mut self, path: &str) -> Result<(), XenstoreError> {
        acknowledged(self.request(None, Request::Rm { path })?)
    }

    /// Asks for an event labelled `token` whenever something at or below
    /// `path` changes. xenstored sends one event at once.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XenstoreError> {
        acknowledged(self.request(None, Request::Watch { path, token })?)
    }

    /// Removes the watch set with this path and token. Its events already
    /// queued stay queued.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XenstoreError> {
        acknowledged(self.request(None, Request::Unwatch { path, token })?)
    }

    /// Starts a transaction; use it through [`Self::in_transaction`] and end
    /// it with [`Self::transaction_end`].
    pub fn transaction_start(&mut self) -> Result<TransactionId, XenstoreError> {
        match self.request(None, Request::TransactionStart)? {
            ReplyBody::TransactionStarted(id) => Ok(id),
            _ => Err(unexpected_shape()),
        }
    }

    /// Commits (`commit`) or aborts a transaction. A commit that conflicted
    /// with another change fails with `TryAgain`: nothing was written. One
    /// that fails with `TimedOut` may or may not have been applied; the
    /// client aborts the transaction once the daemon answers again, in case
    /// the daemon never saw the end.
    pub fn transaction_end(&mut self, id: TransactionId, commit: bool) -> Result<(), XenstoreError> {
        let outcome = self.request(Some(id), Request::TransactionEnd { commit }).and_then(acknowledged);
        if outcome == Err(XenstoreError::TimedOut) {
            // An abort of a transaction the daemon has ended meanwhile only
            // earns ENOENT.
            self.orphan(id);
        }
        outcome
    }

    /// The operations inside transaction `id`.
    pub fn in_transaction(&mut self, id: TransactionId) -> Transaction<'_, 'a, H> {
        Transaction { store: self, id }
    }

    /// Runs `body` in a transaction and commits it, starting again when the
    /// commit (or an operation in the body) answers `EAGAIN`, up to
    /// `max_attempts` times, after which it fails with `TryAgain` (at once
    /// for 0). When `body` fails, the transaction is aborted and its error
    /// returned. `body` may run several times: it must only act through the
    /// transaction. A timeout is not retried.
    pub fn transaction<R>(
        &mut self,
        max_attempts: u32,
        mut body: impl FnMut(&mut Transaction<'_, 'a, H>) -> Result<R, XenstoreError>,
    ) -> Result<R, XenstoreError> {
        for _ in 0..max_attempts {
            match self.attempt(&mut body) {
                Err(XenstoreError::TryAgain) => continue,
                outcome => return outcome,
            }
        }
        Err(XenstoreError::TryAgain)
    }

    fn attempt<R>(
        &mut self,
        body: &mut impl FnMut(&mut Transaction<'_, 'a, H>) -> Result<R, XenstoreError>,
    ) -> Result<R, XenstoreError> {
        let id = self.transaction_start()?;
        match body(&mut self.in_transaction(id)) {
            Ok(result) => self.transaction_end(id, true).map(|()| result),
            Err(error) => {
                // The body's error is what matters; an abort that fails
                // leaves nothing behind that a commit could apply.
                let _ = self.transaction_end(id, false);
                Err(error)
            }
        }
    }

    /// The oldest queued watch event, after reading what the daemon has
    /// sent (without waiting). Takes the port's pending bit: call it until
    /// it returns `None` when the port fires.
    pub fn next_watch_event(&mut self) -> Result<Option<WatchEvent>, XenstoreError> {
        self.events.take_pending(self.port);
        self.watch_event_step()
    }

    /// The oldest watch event, waiting for one if none is queued, with no
    /// deadline: for a caller with nothing else to do.
    pub fn wait_watch_event(&mut self) -> Result<WatchEvent, XenstoreError> {
        self.block_until(None, Self::watch_event_step)
    }

    /// Watch events queued and not yet handed out (events still on the
    /// ring, or behind a reply in the read buffer, are not counted yet).
    pub fn queued_watch_events(&self) -> usize {
        self.watch_events.len()
    }

    /// Messages thrown away: malformed watch events and late replies to
    /// requests that had already failed.
    pub fn discarded_messages(&self) -> u64 {
        self.discarded_messages
    }

    /// Watch events not queued: equal to one already queued, or past
    /// [`WATCH_EVENT_QUEUE_LIMIT`] with a token that had one queued, or
    /// past twice that limit.
    pub fn dropped_watch_events(&self) -> u64 {
        self.dropped_watch_events
    }

    fn watch_event_step(&mut self) -> Result<Option<WatchEvent>, XenstoreError> {
        if self.watch_events.is_empty() {
            self.check_connection()?;
            self.drain()?;
        }
        Ok(self.watch_events.pop_front())
    }

    /// Sends `request` and waits for its reply, if the stream is sound and
    /// the breaker lets it through; an `XS_ERROR` reply becomes the error it
    /// names.
    fn request(
        &mut self,
        transaction: Option<TransactionId>,
        request: Request<'_>,
    ) -> Result<ReplyBody, XenstoreError> {
        self.check_connection()?;
        self.admit()?;
        self.abort_orphaned_transactions()?;
        self.exchange(transaction, request)
    }

    /// Fails at once while the daemon is taken to be stalled, after looking
    /// (without waiting) for a message that shows it is not.
    fn admit(&mut self) -> Result<(), XenstoreError> {
        if self.breaker.is_open() {
            self.events.take_pending(self.port);
            self.drain()?;
        }
        if self.breaker.admits(self.now()) { Ok(()) } else { Err(XenstoreError::TimedOut) }
    }

    /// Aborts the transactions timeouts left open, oldest first; stops at
    /// the first that cannot be sent or answered.
    fn abort_orphaned_transactions(&mut self) -> Result<(), XenstoreError> {
        while let Some(&id) = self.orphaned_transactions.front() {
            self.check_connection()?;
            match self.exchange(Some(id), Request::TransactionEnd { commit: false }) {
                Err(error @ (XenstoreError::TimedOut | XenstoreError::Xen(_))) => return Err(error),
                // Aborted, or unknown to the daemon: open no longer, either way.
                _ => drop(self.orphaned_transactions.pop_front()),
            }
        }
        Ok(())
    }

    /// Remembers a transaction to abort once the daemon answers again.
    fn orphan(&mut self, id: TransactionId) {
        if self.orphaned_transactions.contains(&id) {
            return;
        }
        if self.orphaned_transactions.len() == ORPHANED_TRANSACTIONS_KEPT {
            self.orphaned_transactions.pop_front();
        }
        self.orphaned_transactions.push_back(id);
    }

    /// Sends `request` and waits for its reply, until the deadline.
    fn exchange(
        &mut self,
        transaction: Option<TransactionId>,
        request: Request<'_>,
    ) -> Result<ReplyBody, XenstoreError> {
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let message = wire::encode_request(&request, request_id, transaction)?;
        let deadline = self.now().saturating_add(self.request_timeout);
        let reply = match self.send(&message, deadline).and_then(|()| self.await_reply(request_id, deadline)) {
            Ok(reply) => reply?,
            Err(error) => {
                if error == XenstoreError::TimedOut {
                    let now = self.now();
                    self.breaker.trip(now);
                }
                return Err(error);
            }
        };
        match reply.body {
            ReplyBody::Error(error) => Err(error),
            body if reply.kind == request.kind() => Ok(body),
            _ => Err(XenstoreError::Protocol("reply type differs from the request's")),
        }
    }

    /// The time now, in the clock's nanoseconds.
    fn now(&self) -> u64 {
        self.clock.now(self.events.hypervisor())
    }

    fn check_connection(&self) -> Result<(), XenstoreError> {
        self.broken.map_or(Ok(()), |reason| Err(XenstoreError::Protocol(reason)))
    }

    /// Marks the stream unusable from now on.
    fn poison(&mut self, reason: &'static str) -> XenstoreError {
        self.broken = Some(reason);
        XenstoreError::Protocol(reason)
    }

    /// Writes `message` to the request ring, in pieces if needed, by
    /// `deadline`.
    fn send(&mut self, message: &[u8], deadline: u64) -> Result<(), XenstoreError> {
        let mut sent = 0;
        let outcome = self.block_until(Some(deadline), |store| {
            sent += store.send_some(&message[sent..])?;
            Ok((sent == message.len()).then_some(()))
        });
        if outcome.is_err() && sent > 0 && sent < message.len() {
            self.poison("a request was only partly sent");
        }
        outcome
    }

    fn send_some(&mut self, bytes: &[u8]) -> Result<usize, XenstoreError> {
        let written = match ByteRing::requests(self.ring).produce(bytes) {
            Ok(written) => written,
            Err(_) => return Err(self.poison("request ring indices more than a ring apart")),
        };
        if written > 0 {
            self.events.notify(self.port)?;
        } else {
            // While the request ring is full, keep the response ring moving:
            // the daemon may be waiting to write a watch event.
            self.drain()?;
        }
        Ok(written)
    }

    /// Waits for the reply to `request_id` until `deadline`. The outer error
    /// means it did not arrive (the request is abandoned); the inner, that
    /// it was malformed.
    fn await_reply(&mut self, request_id: u32, deadline: u64) -> Result<Result<Reply, XenstoreError>, XenstoreError> {
        self.block_until(Some(deadline), |store| store.reply_step(request_id))
    }

    fn reply_step(&mut self, request_id: u32) -> Result<Option<Result<Reply, XenstoreError>>, XenstoreError> {
        while let Some(message) = self.next_message()? {
            if message.request_id == request_id {
                return Ok(Some(message.reply));
            }
            if !self.discard_late_reply(&message) {
                return Err(XenstoreError::Protocol("reply to a request that was not made"));
            }
        }
        Ok(None)
    }

    /// Reads every message available now, expecting only watch events and
    /// late replies to earlier requests.
    fn drain(&mut self) -> Result<(), XenstoreError> {
        while let Some(message) = self.next_message()? {
            if !self.discard_late_reply(&message) {
                return Err(XenstoreError::Protocol("reply to a request that was not made"));
            }
        }
        Ok(())
    }

    /// Whether `message` answers a request issued earlier (one that failed
    /// or timed out, or one answered twice), and then discards it. A
    /// transaction it started is remembered to abort (an abort of one that
    /// is not open only earns `ENOENT`).
    fn discard_late_reply(&mut self, message: &Incoming) -> bool {
        if !self.issued(message.request_id) {
            return false;
        }
        self.discarded_messages += 1;
        if let Ok(Reply { body: ReplyBody::TransactionStarted(id), .. }) = &message.reply {
            self.orphan(*id);
        }
        true
    }

    /// Whether `request_id` was given to a request already: ids count up
    /// from 1, so one at most `next - 1` (and half the id space) behind the
    /// next one was. The request in flight, if any, is matched before this
    /// is asked.
    fn issued(&self, request_id: u32) -> bool {
        let issued = self.next_request_id.wrapping_sub(1).min(u32::MAX / 2);
        (1..=issued).contains(&self.next_request_id.wrapping_sub(request_id))
    }

    /// The next message that is not a watch event, reading the response
    /// ring only when no complete message is buffered (so the buffer stays
    /// within one message and one ring). Watch events are queued. Any
    /// message closes the breaker: the daemon is alive.
    fn next_message(&mut self) -> Result<Option<Incoming>, XenstoreError> {
        loop {
            if let Some((header, payload)) = self.split_message()? {
                self.breaker.close();
                if let Some(message) = self.dispatch(&header, &payload) {
                    return Ok(Some(message));
                }
            } else if self.receive_bytes()? == 0 {
                return Ok(None);
            }
        }
    }

    /// Takes one complete message off the front of `incoming`.
    fn split_message(&mut self) -> Result<Option<RawMessage>, XenstoreError> {
        let Some(header) = self.incoming.first_chunk::<{ MessageHeader::SIZE }>().copied() else { return Ok(None) };
        let length = match wire::parse_header(&header) {
            Ok(fields) => fields.len as usize,
            Err(_) => return Err(self.poison("reply longer than XENSTORE_PAYLOAD_MAX")),
        };
        let Some(payload) = self.incoming.get(MessageHeader::SIZE..MessageHeader::SIZE + length) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.incoming.drain(..MessageHeader::SIZE + length);
        Ok(Some((header, payload)))
    }

    /// Queues a watch event; anything else is returned.
    fn dispatch(&mut self, header: &[u8; MessageHeader::SIZE], payload: &[u8]) -> Option<Incoming> {
        let fields = MessageHeader::from_bytes(header);
        let reply = wire::parse_reply(header, payload);
        if fields.kind != MessageType::WatchEvent as u32 {
            return Some(Incoming { request_id: fields.request_id, reply });
        }
        match reply {
            Ok(Reply { body: ReplyBody::WatchEvent(event), .. }) => self.queue_watch_event(event),
            _ => self.discarded_messages += 1,
        }
        None
    }

    /// Queues `event` unless one already queued makes it redundant (see
    /// the module's rule), counting it if it is dropped.
    fn queue_watch_event(&mut self, event: WatchEvent) {
        let queued = self.watch_events.len();
        let dropped = if queued < WATCH_EVENT_QUEUE_LIMIT {
            self.watch_events.contains(&event)
        } else {
            queued >= WATCH_EVENT_QUEUE_HARD_LIMIT
                || self.watch_events.iter().any(|pending| pending.token == event.token)
        };
        if dropped {
            self.dropped_watch_events += 1;
        } else {
            self.watch_events.push_back(event);
        }
    }

    /// Moves what the response ring holds into `incoming`; tells the daemon
    /// when the ring was full (it may have more to write).
    fn receive_bytes(&mut self) -> Result<usize, XenstoreError> {
        let received = match ByteRing::responses(self.ring).consume(&mut self.incoming) {
            Ok(received) => received,
            Err(_) => return Err(self.poison("response ring indices more than a ring apart")),
        };
        if received == XENSTORE_RING_SIZE {
            self.events.notify(self.port)?;
        }
        Ok(received)
    }

    /// Runs `step` until it has a result or `deadline` has passed
    /// (`TimedOut`): the port's pending bit is taken before each look, and
    /// the guest sleeps, until the deadline, only after a fruitless one.
    /// Without a deadline it sleeps for as long as it takes.
    fn block_until<T>(
        &mut self,
        deadline: Option<u64>,
        mut step: impl FnMut(&mut Self) -> Result<Option<T>, XenstoreError>,
    ) -> Result<T, XenstoreError> {
        loop {
            self.events.take_pending(self.port);
            if let Some(result) = step(self)? {
                return Ok(result);
            }
            match deadline {
                None => self.events.wait(&[self.port], None)?,
                Some(deadline) if self.now() >= deadline => return Err(XenstoreError::TimedOut),
                Some(deadline) => self.clock.sleep_until(self.events, &[self.port], deadline)?,
            }
        }
    }
}

/// Operations inside one transaction: nothing they write is visible to
/// others until [`Xenstore::transaction_end`] commits it.
pub struct Transaction<'s, 'a, H: Hypervisor> {
    store: &'s mut Xenstore<'a, H>,
    id: TransactionId,
}

impl<H: Hypervisor> Transaction<'_, '_, H> {
    /// The transaction's id.
    pub fn id(&self) -> TransactionId {
        self.id
    }

    /// [`Xenstore::read`], in the transaction.
    pub fn read(&mut self, path: &str) -> Result<String, XenstoreError> {
        value(self.store.request(Some(self.id), Request::Read { path })?)
    }

    /// [`Xenstore::write`], in the transaction.
    pub fn write(&mut self, path: &str, value: &str) -> Result<(), XenstoreError> {
        acknowledged(self.store.request(Some(self.id), Request::Write { path, value: value.as_bytes() })?)
    }

    /// [`Xenstore::directory`], in the transaction.
    pub fn directory(&mut self, path: &str) -> Result<Vec<String>, XenstoreError> {
        children(self.store.request(Some(self.id), Request::Directory { path })?)
    }

    /// [`Xenstore::mkdir`], in the transaction.
    pub fn mkdir(&mut self, path: &str) -> Result<(), XenstoreError> {
        acknowledged(self.store.request(Some(self.id), Request::Mkdir { path })?)
    }

    /// [`Xenstore::rm`], in the transaction.
    pub fn rm(&mut self, path: &str) -> Result<(), XenstoreError> {
        acknowledged(self.store.request(Some(self.id), Request::Rm { path })?)
    }
}

// A reply's type matches its request's, so its body has the right shape;
// these only turn a wrong one (which `parse_reply` cannot produce) into an
// error instead of a panic.

fn value(body: ReplyBody) -> Result<String, XenstoreError> {
    match body {
        ReplyBody::Value(value) => Ok(value),
        _ => Err(unexpected_shape()),
    }
}

fn children(body: ReplyBody) -> Result<Vec<String>, XenstoreError> {
    match body {
        ReplyBody::Directory(names) => Ok(names),
        _ => Err(unexpected_shape()),
    }
}

fn acknowledged(body: ReplyBody) -> Result<(), XenstoreError> {
    match body {
        ReplyBody::Acknowledged => Ok(()),
        _ => Err(unexpected_shape()),
    }
}

fn unexpected_shape() -> XenstoreError {
    XenstoreError::Protocol("reply of the wrong shape")
}
