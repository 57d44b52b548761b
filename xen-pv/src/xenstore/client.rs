//! [`Xenstore`]: blocking xenstore operations over the shared ring.
//!
//! One request is in flight at a time. An operation encodes its request,
//! writes it to the request ring (in pieces if it is larger than the ring,
//! waiting for the daemon to make room), notifies the daemon, then reads
//! messages until the reply with its request id arrives. Watch events read
//! meanwhile are queued (an event equal to one already queued is dropped:
//! both only say "look again"); [`Xenstore::next_watch_event`] hands them
//! out.
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
//! Recovery: a reply to a request that failed is recognised by its id and
//! discarded when it shows up later. If the stream can no longer be framed
//! (a header announcing more than `XENSTORE_PAYLOAD_MAX` bytes, ring
//! indices more than a ring apart, a request only partly written) every
//! later operation fails with the same `Protocol` error.
//!
//! Never: panic on what the daemon sends, or return a reply that was meant
//! for another request.

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

/// How many failed requests' ids are remembered, so that their late
/// replies can be told from a daemon answering requests never made.
const ABANDONED_REQUESTS_KEPT: usize = 16;

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
    next_request_id: u32,
    watch_events: VecDeque<WatchEvent>,
    /// Bytes read from the response ring and not yet framed into messages.
    incoming: Vec<u8>,
    abandoned_requests: VecDeque<u32>,
    discarded_messages: u64,
    broken: Option<&'static str>,
}

impl<'a, H: Hypervisor> Xenstore<'a, H> {
    /// A client over the xenstore page `ring` and its event channel `port`
    /// (`HVM_PARAM_STORE_PFN` and `HVM_PARAM_STORE_EVTCHN`).
    pub fn new(events: &'a EventChannels<'a, H>, ring: &'a XenstoreInterface, port: Port) -> Self {
        Self {
            events,
            ring,
            port,
            next_request_id: 1,
            watch_events: VecDeque::new(),
            incoming: Vec::new(),
            abandoned_requests: VecDeque::new(),
            discarded_messages: 0,
            broken: None,
        }
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
    /// with another change fails with `TryAgain`: nothing was written.
    pub fn transaction_end(&mut self, id: TransactionId, commit: bool) -> Result<(), XenstoreError> {
        acknowledged(self.request(Some(id), Request::TransactionEnd { commit })?)
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
    /// transaction.
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

    /// The oldest watch event, waiting for one if none is queued.
    pub fn wait_watch_event(&mut self) -> Result<WatchEvent, XenstoreError> {
        self.block_until(Self::watch_event_step)
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

    fn watch_event_step(&mut self) -> Result<Option<WatchEvent>, XenstoreError> {
        if self.watch_events.is_empty() {
            self.check_connection()?;
            self.drain()?;
        }
        Ok(self.watch_events.pop_front())
    }

    /// Sends `request` and waits for its reply; an `XS_ERROR` reply becomes
    /// the error it names.
    fn request(
        &mut self,
        transaction: Option<TransactionId>,
        request: Request<'_>,
    ) -> Result<ReplyBody, XenstoreError> {
        self.check_connection()?;
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let message = wire::encode_request(&request, request_id, transaction)?;
        let reply = match self.send(&message).and_then(|()| self.await_reply(request_id)) {
            Ok(reply) => reply?,
            Err(error) => {
                self.abandon(request_id);
                return Err(error);
            }
        };
        match reply.body {
            ReplyBody::Error(error) => Err(error),
            body if reply.kind == request.kind() => Ok(body),
            _ => Err(XenstoreError::Protocol("reply type differs from the request's")),
        }
    }

    fn check_connection(&self) -> Result<(), XenstoreError> {
        self.broken.map_or(Ok(()), |reason| Err(XenstoreError::Protocol(reason)))
    }

    /// Marks the stream unusable from now on.
    fn poison(&mut self, reason: &'static str) -> XenstoreError {
        self.broken = Some(reason);
        XenstoreError::Protocol(reason)
    }

    /// Writes `message` to the request ring, in pieces if needed.
    fn send(&mut self, message: &[u8]) -> Result<(), XenstoreError> {
        let mut sent = 0;
        let outcome = self.block_until(|store| {
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

    /// Waits for the reply to `request_id`. The outer error means it did not
    /// arrive (the request is abandoned); the inner, that it was malformed.
    fn await_reply(&mut self, request_id: u32) -> Result<Result<Reply, XenstoreError>, XenstoreError> {
        self.block_until(|store| store.reply_step(request_id))
    }

    fn reply_step(&mut self, request_id: u32) -> Result<Option<Result<Reply, XenstoreError>>, XenstoreError> {
        while let Some(message) = self.next_message()? {
            if message.request_id == request_id {
                return Ok(Some(message.reply));
            }
            if !self.forget_abandoned(message.request_id) {
                return Err(XenstoreError::Protocol("reply to a request that was not made"));
            }
        }
        Ok(None)
    }

    /// Reads every message available now, expecting only watch events and
    /// late replies to abandoned requests.
    fn drain(&mut self) -> Result<(), XenstoreError> {
        while let Some(message) = self.next_message()? {
            if !self.forget_abandoned(message.request_id) {
                return Err(XenstoreError::Protocol("reply to a request that was not made"));
            }
        }
        Ok(())
    }

    fn abandon(&mut self, request_id: u32) {
        if self.abandoned_requests.len() == ABANDONED_REQUESTS_KEPT {
            self.abandoned_requests.pop_front();
        }
        self.abandoned_requests.push_back(request_id);
    }

    /// Whether `request_id` was abandoned (and forgets it: a reply comes once).
    fn forget_abandoned(&mut self, request_id: u32) -> bool {
        let position = self.abandoned_requests.iter().position(|&abandoned| abandoned == request_id);
        let found = position.and_then(|index| self.abandoned_requests.remove(index)).is_some();
        self.discarded_messages += u64::from(found);
        found
    }

    /// The next message that is not a watch event, reading the response
    /// ring only when no complete message is buffered (so the buffer stays
    /// within one message and one ring). Watch events are queued.
    fn next_message(&mut self) -> Result<Option<Incoming>, XenstoreError> {
        loop {
            if let Some((header, payload)) = self.split_message()? {
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

    fn queue_watch_event(&mut self, event: WatchEvent) {
        if !self.watch_events.contains(&event) {
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

    /// Runs `step` until it has a result: the port's pending bit is taken
    /// before each look, and the guest sleeps only after a fruitless one.
    fn block_until<T>(
        &mut self,
        mut step: impl FnMut(&mut Self) -> Result<Option<T>, XenstoreError>,
    ) -> Result<T, XenstoreError> {
        loop {
            self.events.take_pending(self.port);
            if let Some(result) = step(self)? {
                return Ok(result);
            }
            self.events.wait(&[self.port], None)?;
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
