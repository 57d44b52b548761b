//! A hostile xenstore daemon scripted from arbitrary bytes, played against
//! the real client ([`Xenstore`]) through the simulated ring, with the
//! client's invariants checked after every operation: the shared core of
//! the `xenstore_client` cargo-fuzz target
//! (`fuzz/fuzz_targets/xenstore_client.rs`) and of its stable smoke test.
//!
//! [`decode`] turns any bytes into a list of [`Action`]s (at most
//! [`MAX_ACTIONS`]); [`play`] runs them and then the recovery check. Each
//! action is an opcode byte (modulo 24) and the argument bytes it reads (a
//! byte read past the end of the input is 0). The daemon's side: stall or
//! resume, inject a whole message (any type, a request id chosen relative
//! to the client's last one, a well-formed or arbitrary payload), inject
//! arbitrary bytes, a header announcing more than `XENSTORE_PAYLOAD_MAX`, a
//! message cut short, replace the next reply, a flood of watch events
//! (known or invented tokens), change the store as dom0, lose the requests
//! on the ring, fail the next commits, let time pass. The client's side:
//! read, write (small values, and ones larger than the ring or the
//! protocol allows), directory, mkdir, rm, watch, unwatch, a transaction
//! run by [`Xenstore::transaction`], one driven by hand (possibly ended with
//! an id the daemon never gave), taking watch events, a shorter request
//! timeout. Paths include absolute, missing, read-only, hidden and invalid
//! ones.
//!
//! Invariants, after every operation:
//! - no panic, in the client or the simulated daemon (which panics if the
//!   client breaks the ring protocol);
//! - a reply goes to its own request: a success carries exactly what a
//!   message with the id of the request the operation sent carried, and so
//!   does an errno error (the driver keeps a copy of the response stream,
//!   [`XenstoreServer::record_responses`], frames it as the client does,
//!   and reads the request ids off the request ring); every watch event
//!   handed out was sent by the daemon;
//! - at most twice [`WATCH_EVENT_QUEUE_LIMIT`] watch events are queued;
//!   the counts of dropped events and discarded messages never go down;
//! - once the client says its stream is broken
//!   ([`Xenstore::stream_broken`]) it says so for good, with the same
//!   reason, and every operation fails with that `Protocol` error (queued
//!   watch events are still handed out);
//! - no event-channel hypercall fails.
//!
//! After the script the daemon behaves again (resumed, no forced `EAGAIN`,
//! time moved past the circuit breaker's probe interval). If the stream can
//! still be framed (every injected message was whole and none announced
//! more than `XENSTORE_PAYLOAD_MAX`) and the client has not declared it
//! broken, the client must succeed again, with the daemon's own reply to a
//! request (not an injected message that took its id), within a bounded
//! number of attempts (each failure consumes one hostile or stale message,
//! a pending replaced reply, or one timeout); everything hostile was then
//! read, and every operation must work:
//! write and read back, directory, mkdir, rm, a watch and its event, a
//! committed transaction. A broken stream is acknowledged: operations fail
//! with its `Protocol` error.
//!
//! Contract: [`play`] panics exactly when the client breaks one of these
//! invariants.
//!
//! Never: use the client other than through its public operations, break
//! the ring protocol on the guest's side (the simulated daemon would take
//! that for a client bug), or let an input run past [`MAX_ACTIONS`] actions
//! and [`MAX_FLOOD_EVENTS`] injected watch events.
//!
//! [`XenstoreServer::record_responses`]: crate::xenstore::XenstoreServer::record_responses

use crate::xenstore::Access;
use crate::{SimXen, XENSTORE_PORT};
use core::sync::atomic::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::format;
use std::string::String;
use std::vec::Vec;
use xen_pv::abi::xenstore::{MessageHeader, MessageType, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE};
use xen_pv::event_channel::EventChannels;
use xen_pv::xenstore::client::{WATCH_EVENT_QUEUE_LIMIT, Xenstore};
use xen_pv::xenstore::deadline::STALLED_PROBE_INTERVAL_NS;
use xen_pv::xenstore::error::XenstoreError;
use xen_pv::xenstore::ring::ByteRing;
use xen_pv::xenstore::wire::{self, Reply, ReplyBody, TransactionId};

/// Most actions read from one input.
pub const MAX_ACTIONS: usize = 128;
/// Most watch events the floods of one script send, together.
pub const MAX_FLOOD_EVENTS: usize = 2000;
/// Longest payload or byte string an injection takes from the script.
const INJECTED_BYTES_MAX: usize = 64;

/// Paths the client's operations use: relative and absolute, missing,
/// read-only, hidden, special, and invalid ones (the last three are
/// refused by the daemon or before sending).
const PATHS: [&str; 16] = [
    "a",
    "a/b",
    "a/c",
    "d",
    "d/e",
    "/local/domain/1/a",
    "ro",
    "ro/x",
    "hidden/y",
    "missing/deep",
    "@releaseDomain",
    "a/flood",
    "a//b",
    "",
    "/",
    "a\0b",
];

/// Paths dom0 changes (all valid).
const DOM0_PATHS: [&str; 6] = ["a", "a/b", "d/e", "a/flood/x", "ro/x", "/vm/name"];

/// Watch tokens.
const TOKENS: [&str; 4] = ["t0", "t1", "t2", "a-longer-token"];

/// Message types an injected message or a replaced reply carries (raw
/// wire values: 99 is no type at all).
const KINDS: [u32; 16] = [
    MessageType::Read as u32,
    MessageType::Write as u32,
    MessageType::Directory as u32,
    MessageType::Error as u32,
    MessageType::WatchEvent as u32,
    MessageType::TransactionStart as u32,
    MessageType::TransactionEnd as u32,
    MessageType::Mkdir as u32,
    MessageType::Rm as u32,
    MessageType::Watch as u32,
    MessageType::Unwatch as u32,
    99,
    MessageType::DirectoryPart as u32,
    MessageType::GetPerms as u32,
    MessageType::Error as u32,
    MessageType::WatchEvent as u32,
];

/// Request timeouts the client can be given (ns).
const TIMEOUTS: [u64; 4] = [10_000_000, 100_000_000, 500_000_000, 2_000_000_000];

/// Time steps the script can take (ns).
const ADVANCES: [u64; 6] = [1_000_000, 100_000_000, 1_000_000_000, 2_000_000_000, 30_000_000_000, 60_000_000_000];

/// The request id an injected message carries, relative to the id of the
/// last request the client wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdChoice {
    /// That id plus 1 plus this: a reply to a request not yet made.
    Ahead(u32),
    /// That id minus this: a reply to the last request or an earlier one.
    Behind(u32),
    /// This exact id.
    Exactly(u32),
}

/// One operation inside a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransactionOp {
    /// Reads a path.
    Read(&'static str),
    /// Writes a value.
    Write(&'static str, String),
    /// Lists a path's children.
    Directory(&'static str),
    /// Creates a node.
    Mkdir(&'static str),
    /// Removes a node.
    Rm(&'static str),
}

/// One step of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The daemon stops (`true`) or resumes answering.
    Stall(bool),
    /// A whole message on the response stream.
    InjectMessage {
        /// Its type (a raw wire value).
        kind: u32,
        /// Its request id.
        id: IdChoice,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// Arbitrary bytes on the response stream.
    InjectBytes(Vec<u8>),
    /// A header announcing `length` (more than `XENSTORE_PAYLOAD_MAX`) bytes.
    OversizedHeader {
        /// The announced length.
        length: u32,
    },
    /// A header announcing `length` bytes, followed by fewer.
    Truncated {
        /// The announced length.
        length: u32,
        /// The bytes that follow it.
        payload: Vec<u8>,
    },
    /// The next request's reply has this type and payload.
    ReplaceNextReply {
        /// Its type (a raw wire value).
        kind: u32,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// `count` watch events, with the known tokens or invented ones.
    WatchFlood {
        /// How many.
        count: usize,
        /// Whether each has a token of its own, never registered.
        invented_tokens: bool,
    },
    /// Dom0 writes a node (firing watches).
    Dom0Write(&'static str, String),
    /// Dom0 removes a node (firing watches).
    Dom0Rm(&'static str),
    /// The daemon consumes the request ring's bytes and forgets them.
    LoseRequests,
    /// The next commits fail with `EAGAIN`.
    FailCommits(u32),
    /// Time passes (ns).
    Advance(u64),
    /// [`Xenstore::read`].
    Read(&'static str),
    /// [`Xenstore::write`].
    Write(&'static str, String),
    /// [`Xenstore::directory`].
    Directory(&'static str),
    /// [`Xenstore::mkdir`].
    Mkdir(&'static str),
    /// [`Xenstore::rm`].
    Rm(&'static str),
    /// [`Xenstore::watch`].
    Watch(&'static str, &'static str),
    /// [`Xenstore::unwatch`].
    Unwatch(&'static str, &'static str),
    /// [`Xenstore::transaction`] with these operations as its body.
    Transaction {
        /// The most attempts.
        attempts: u32,
        /// The body.
        ops: Vec<TransactionOp>,
    },
    /// A transaction driven by hand: start, the operations, end.
    ManualTransaction {
        /// The operations.
        ops: Vec<TransactionOp>,
        /// Commit (or abort).
        commit: bool,
        /// End a transaction id the daemon never gave instead.
        bogus_end: bool,
    },
    /// Takes up to this many watch events.
    NextWatchEvents(usize),
    /// Sets the request timeout (ns).
    SetTimeout(u64),
}

/// The body of an acknowledged request, for [`Checker::checked`].
fn acknowledged(_: &()) -> ReplyBody {
    ReplyBody::Acknowledged
}

/// Reads bytes front to back; past the end every byte is 0.
struct Reader<'a> {
    data: &'a [u8],
    position: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let byte = self.data.get(self.position).copied().unwrap_or(0);
        self.position += 1;
        byte
    }

    fn bytes(&mut self) -> Vec<u8> {
        let length = usize::from(self.byte()) % (INJECTED_BYTES_MAX + 1);
        (0..length).map(|_| self.byte()).collect()
    }

    fn word(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn path(&mut self) -> &'static str {
        PATHS[usize::from(self.byte()) % PATHS.len()]
    }

    fn token(&mut self) -> &'static str {
        TOKENS[usize::from(self.byte()) % TOKENS.len()]
    }

    fn kind(&mut self) -> u32 {
        KINDS[usize::from(self.byte()) % KINDS.len()]
    }

    /// A value: short and printable mostly; sometimes larger than the ring
    /// (1000 to 1900 bytes), at the daemon's quota, or past the protocol's
    /// limit (refused before sending).
    fn value(&mut self) -> String {
        let selector = self.byte();
        let length = match selector {
            0..=0xef => usize::from(selector) % 48,
            0xf0..=0xfc => 1000 + usize::from(selector - 0xf0) * 75,
            0xfd => 2000,
            _ => XENSTORE_PAYLOAD_MAX + 1,
        };
        let seed = self.byte();
        (0..length).map(|index| char::from(b'!' + (seed.wrapping_add(index as u8) % 94))).collect()
    }

    /// A payload for a message of `kind`: well-formed for it, or
    /// arbitrary bytes from the script.
    fn payload(&mut self, kind: u32) -> Vec<u8> {
        let selector = self.byte();
        if selector & 0x80 != 0 {
            return self.bytes();
        }
        let text = match MessageType::from_wire(kind) {
            Some(MessageType::Read) => format!("forged-{selector}"),
            Some(MessageType::Directory) => String::from("x\0y\0"),
            Some(MessageType::TransactionStart) => format!("{}\0", 1 + selector % 4),
            Some(MessageType::Error) => {
                String::from(["ENOENT\0", "EAGAIN\0", "EINVAL\0", "EQUOTA\0", "EACCES\0"][usize::from(selector % 5)])
            }
            Some(MessageType::WatchEvent) => {
                format!("{}\0{}\0", DOM0_PATHS[usize::from(selector) % DOM0_PATHS.len()], self.token())
            }
            _ => String::from("OK\0"),
        };
        text.into_bytes()
    }

    fn transaction_ops(&mut self) -> Vec<TransactionOp> {
        let count = 1 + usize::from(self.byte()) % 3;
        (0..count)
            .map(|_| match self.byte() % 5 {
                0 => TransactionOp::Read(self.path()),
                1 => TransactionOp::Write(self.path(), self.value()),
                2 => TransactionOp::Directory(self.path()),
                3 => TransactionOp::Mkdir(self.path()),
                _ => TransactionOp::Rm(self.path()),
            })
            .collect()
    }
}

/// Reads `data` as a script (see the module documentation). Every input is
/// a script.
pub fn decode(data: &[u8]) -> Vec<Action> {
    let mut reader = Reader { data, position: 0 };
    let mut actions = Vec::new();
    while reader.position < data.len() && actions.len() < MAX_ACTIONS {
        let action = match reader.byte() % 24 {
            0 => Action::Stall(true),
            1 => Action::Stall(false),
            2 => {
                let kind = reader.kind();
                let choice = reader.byte();
                let id = match choice & 3 {
                    0 => IdChoice::Ahead(u32::from(choice >> 2) % 4),
                    1 => IdChoice::Behind(u32::from(choice >> 2) % 8),
                    2 => IdChoice::Exactly(0),
                    _ => IdChoice::Exactly(reader.word()),
                };
                Action::InjectMessage { kind, id, payload: reader.payload(kind) }
            }
            3 => Action::InjectBytes(reader.bytes()),
            4 => Action::OversizedHeader { length: (XENSTORE_PAYLOAD_MAX as u32 + 1).max(reader.word()) },
            5 => {
                let payload = reader.bytes();
                Action::Truncated { length: payload.len() as u32 + 1 + u32::from(reader.byte()), payload }
            }
            6 => {
                let kind = reader.kind();
                Action::ReplaceNextReply { kind, payload: reader.payload(kind) }
            }
            7 => {
                let selector = reader.byte();
                Action::WatchFlood {
                    count: 1 + usize::from(selector & 0x7f) * 8,
                    invented_tokens: selector & 0x80 != 0,
                }
            }
            8 => {
                let path = DOM0_PATHS[usize::from(reader.byte()) % DOM0_PATHS.len()];
                Action::Dom0Write(path, reader.value())
            }
            9 => Action::Dom0Rm(DOM0_PATHS[usize::from(reader.byte()) % DOM0_PATHS.len()]),
            10 => Action::LoseRequests,
            11 => Action::FailCommits(u32::from(reader.byte() % 4)),
            12 => Action::Advance(ADVANCES[usize::from(reader.byte()) % ADVANCES.len()]),
            13 => Action::Read(reader.path()),
            14 => Action::Write(reader.path(), reader.value()),
            15 => Action::Directory(reader.path()),
            16 => Action::Mkdir(reader.path()),
            17 => Action::Rm(reader.path()),
            18 => Action::Watch(reader.path(), reader.token()),
            19 => Action::Unwatch(reader.path(), reader.token()),
            20 => Action::Transaction { attempts: u32::from(reader.byte() % 4), ops: reader.transaction_ops() },
            21 => {
                let flags = reader.byte();
                Action::ManualTransaction {
                    ops: reader.transaction_ops(),
                    commit: flags & 1 != 0,
                    bogus_end: flags & 6 == 6,
                }
            }
            22 => Action::NextWatchEvents(1 + usize::from(reader.byte() % 16)),
            _ => Action::SetTimeout(TIMEOUTS[usize::from(reader.byte()) % TIMEOUTS.len()]),
        };
        actions.push(action);
    }
    actions
}

/// What a played script did, for the smoke test's coverage checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Operations that succeeded, each checked against the message with its
    /// request's id.
    pub verified: u64,
    /// Operations that succeeded but wrote more than a ring of requests, so
    /// that their request id could not be read back (not checked).
    pub unverified: u64,
    /// Errno errors checked against the error message with their id.
    pub errno_errors: u64,
    /// Operations that failed with `TimedOut`.
    pub timeouts: u64,
    /// Operations that failed with `Protocol`.
    pub protocol_errors: u64,
    /// Watch events handed out.
    pub watch_events: u64,
    /// The most watch events queued at once.
    pub peak_queued_events: usize,
    /// Why the client declared its stream broken, if it did.
    pub broken: Option<&'static str>,
    /// Whether the stream could still be framed at the end.
    pub framable: bool,
    /// Attempts the client took to succeed again once the daemon behaved
    /// (`None`: not required, the stream being broken or unframable).
    pub recovered_after: Option<usize>,
}

/// A message of the response stream.
#[derive(Debug)]
struct Message {
    reply: Reply,
    /// Injected by the script, rather than the daemon's own (a replaced
    /// reply counts as the daemon's).
    hostile: bool,
}

/// A copy of the response stream, framed as the client frames it.
struct Transcript {
    /// Bytes not yet framed into a whole message.
    unframed: Vec<u8>,
    /// A header announced more than `XENSTORE_PAYLOAD_MAX`: nothing after
    /// it can be framed.
    unframable: bool,
    /// Every message boundary is where the daemon put one (no injected
    /// message was cut short, none was unframable).
    aligned: bool,
    /// Messages other than watch events that parsed, by request id, in
    /// stream order.
    replies: BTreeMap<u32, Vec<Message>>,
    /// Watch events sent, as (path, token).
    watch_events: BTreeSet<(String, String)>,
}

impl Transcript {
    /// Frames `bytes`, the next part of the stream; the messages they
    /// complete were injected (`hostile`) or are the daemon's own.
    fn take_in(&mut self, bytes: &[u8], hostile: bool) {
        if self.unframable {
            return;
        }
        self.unframed.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(header) = self.unframed[start..].first_chunk::<{ MessageHeader::SIZE }>() {
            let Ok(fields) = wire::parse_header(header) else {
                self.unframable = true;
                self.aligned = false;
                break;
            };
            let end = start + MessageHeader::SIZE + fields.len as usize;
            let Some(payload) = self.unframed.get(start + MessageHeader::SIZE..end) else { break };
            match wire::parse_reply(header, payload) {
                Ok(Reply { body: ReplyBody::WatchEvent(event), .. }) => {
                    self.watch_events.insert((event.path, event.token));
                }
                Ok(reply) if fields.kind != MessageType::WatchEvent as u32 => {
                    self.replies.entry(reply.request_id).or_default().push(Message { reply, hostile });
                }
                _ => {}
            }
            start = end;
        }
        self.unframed.drain(..start);
    }
}

/// What the client wrote on the request ring during one operation.
struct Written {
    /// Whole messages' headers, in order (`None`: more than a ring was
    /// written, so the first bytes are gone).
    headers: Option<Vec<MessageHeader>>,
    /// The last message was only partly written.
    partial: bool,
}

/// The checks, apart from the client (so that a transaction's body can use
/// them while the transaction borrows the client).
struct Checker<'x> {
    xen: &'x SimXen,
    transcript: Transcript,
    last_request_id: u32,
    /// Whether the last success took a message of the daemon's own (not
    /// an injected one with the same id).
    last_success_honest: bool,
    report: Report,
}

impl Checker<'_> {
    /// Frames what the daemon queued since the last look.
    fn absorb(&mut self) {
        let bytes = self.xen.with_xenstore(|server| server.take_recorded_responses());
        self.transcript.take_in(&bytes, false);
    }

    /// Queues `bytes` on the response stream; notes whether the framing is
    /// still where the daemon's messages start.
    fn inject(&mut self, bytes: &[u8]) {
        let (before, injected) = self.xen.with_xenstore(|server| {
            let before = server.take_recorded_responses();
            server.inject_raw_reply(bytes);
            (before, server.take_recorded_responses())
        });
        self.transcript.take_in(&before, false);
        self.transcript.take_in(&injected, true);
        if !self.transcript.unframed.is_empty() {
            self.transcript.aligned = false;
        }
    }

    fn request_producer(&self) -> u32 {
        self.xen.xenstore_ring().req_prod.load(Ordering::Acquire)
    }

    /// The messages written on the request ring from index `from` to now.
    fn written_since(&mut self, from: u32) -> Written {
        let ring = self.xen.xenstore_ring();
        let to = self.request_producer();
        if to.wrapping_sub(from) as usize > XENSTORE_RING_SIZE {
            return Written { headers: None, partial: false };
        }
        let byte = |index: u32| ring.request[index as usize % XENSTORE_RING_SIZE].load(Ordering::Relaxed);
        let mut headers = Vec::new();
        let mut position = from;
        while to.wrapping_sub(position) as usize >= MessageHeader::SIZE {
            let bytes: [u8; MessageHeader::SIZE] =
                core::array::from_fn(|index| byte(position.wrapping_add(index as u32)));
            let header = MessageHeader::from_bytes(&bytes);
            let length = (MessageHeader::SIZE as u32).saturating_add(header.len);
            if to.wrapping_sub(position) < length {
                break;
            }
            headers.push(header);
            position = position.wrapping_add(length);
        }
        if let Some(last) = headers.last() {
            self.last_request_id = last.request_id;
        }
        Written { headers: Some(headers), partial: position != to }
    }

    /// Checks the outcome of one operation of type `kind` that started
    /// with the request producer at `from`.
    fn verify(&mut self, kind: MessageType, from: u32, outcome: Result<ReplyBody, &XenstoreError>) {
        self.absorb();
        let written = self.written_since(from);
        let Some(headers) = written.headers else {
            self.report.unverified += u64::from(outcome.is_ok());
            return;
        };
        let own = headers.last().filter(|header| !written.partial && header.kind == kind as u32);
        match outcome {
            Ok(body) => {
                let header =
                    own.unwrap_or_else(|| panic!("{kind:?} succeeded ({body:?}) without a whole request sent"));
                let replies = self.transcript.replies.get(&header.request_id);
                let carried = |message: &Message| message.reply.kind == kind && message.reply.body == body;
                assert!(
                    replies.is_some_and(|replies| replies.iter().any(carried)),
                    "{kind:?} request {} returned {body:?}, which no message with its id carried: {replies:?}",
                    header.request_id
                );
                // The client takes the first message with its id.
                self.last_success_honest =
                    replies.and_then(|replies| replies.first()).is_some_and(|first| !first.hostile);
                self.report.verified += 1;
            }
            Err(XenstoreError::Xen(error)) => panic!("{kind:?}: an event-channel hypercall failed: {error:?}"),
            Err(XenstoreError::TimedOut) => self.report.timeouts += 1,
            Err(XenstoreError::Protocol(_)) => self.report.protocol_errors += 1,
            Err(error) => {
                // An errno error: from the daemon, unless the request was
                // refused before it was sent (no whole request of this type
                // went out). A transaction end is not checked: an abort of
                // an orphaned transaction has the same type.
                let Some(header) = own.filter(|_| kind != MessageType::TransactionEnd) else { return };
                let replies = self.transcript.replies.get(&header.request_id);
                let expected = ReplyBody::Error(error.clone());
                let carried =
                    replies.is_some_and(|replies| replies.iter().any(|message| message.reply.body == expected));
                assert!(
                    carried,
                    "{kind:?} request {} failed with {error:?}, which no message with its id carried: {replies:?}",
                    header.request_id
                );
                self.report.errno_errors += 1;
            }
        }
    }

    /// Runs `operation` (one request of type `kind`), checks it, and
    /// returns its result.
    fn checked<T>(
        &mut self,
        kind: MessageType,
        operation: impl FnOnce() -> Result<T, XenstoreError>,
        body: impl FnOnce(&T) -> ReplyBody,
    ) -> Result<T, XenstoreError> {
        let from = self.request_producer();
        let result = operation();
        self.verify(kind, from, result.as_ref().map(body));
        result
    }

    fn transaction_op(
        &mut self,
        transaction: &mut xen_pv::xenstore::client::Transaction<'_, '_, SimXen>,
        op: &TransactionOp,
    ) -> Result<(), XenstoreError> {
        match op {
            TransactionOp::Read(path) => {
                self.checked(MessageType::Read, || transaction.read(path), |value| ReplyBody::Value(value.clone()))?;
            }
            TransactionOp::Write(path, value) => {
                self.checked(MessageType::Write, || transaction.write(path, value), acknowledged)?;
            }
            TransactionOp::Directory(path) => {
                let listing = |names: &Vec<String>| ReplyBody::Directory(names.clone());
                self.checked(MessageType::Directory, || transaction.directory(path), listing)?;
            }
            TransactionOp::Mkdir(path) => {
                self.checked(MessageType::Mkdir, || transaction.mkdir(path), acknowledged)?;
            }
            TransactionOp::Rm(path) => {
                self.checked(MessageType::Rm, || transaction.rm(path), acknowledged)?;
            }
        }
        Ok(())
    }
}

/// The script being played.
struct Player<'x, 'a> {
    xen: &'x SimXen,
    store: Xenstore<'a, SimXen>,
    checker: Checker<'x>,
    flood_left: usize,
    flood_sent: usize,
    /// Hostile messages and replaced replies, for the recovery bound.
    hostile: usize,
    /// Operations the client ran, for the recovery bound.
    operations: usize,
    dropped_events: u64,
    discarded_messages: u64,
}

/// Decodes `data` and plays it: the fuzz target's entry point.
pub fn run(data: &[u8]) -> Report {
    play(&decode(data))
}

/// Plays `actions` against a fresh client and simulated daemon, then checks
/// that the client recovers (see the module documentation); panics if an
/// invariant breaks.
pub fn play(actions: &[Action]) -> Report {
    let xen = SimXen::with_memory_pages(1, 1);
    xen.with_xenstore(|server| {
        server.write_as_dom0("ro/x", "read-only");
        server.set_access("ro", Access::ReadOnly);
        server.write_as_dom0("hidden/y", "hidden");
        server.set_access("hidden", Access::Hidden);
        server.record_responses(true);
    });
    let events = EventChannels::new(&xen, xen.shared_info());
    let store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
    let transcript = Transcript {
        unframed: Vec::new(),
        unframable: false,
        aligned: true,
        replies: BTreeMap::new(),
        watch_events: BTreeSet::new(),
    };
    let checker =
        Checker { xen: &xen, transcript, last_request_id: 0, last_success_honest: false, report: Report::default() };
    let mut player = Player {
        xen: &xen,
        store,
        checker,
        flood_left: MAX_FLOOD_EVENTS,
        flood_sent: 0,
        hostile: 0,
        operations: 0,
        dropped_events: 0,
        discarded_messages: 0,
    };
    for action in actions {
        player.act(action);
    }
    player.recover();
    let mut report = player.checker.report;
    report.broken = player.store.stream_broken();
    report.framable = !player.checker.transcript.unframable;
    report
}

impl Player<'_, '_> {
    fn act(&mut self, action: &Action) {
        let broken = self.store.stream_broken();
        let client = self.client_act(action);
        if let Some(result) = client {
            self.operations += 1;
            self.check_after_operation(broken, action, result);
        }
    }

    /// Runs a daemon action (`None`) or a client operation (its outcome,
    /// errors only).
    fn client_act(&mut self, action: &Action) -> Option<Result<(), XenstoreError>> {
        let checker = &mut self.checker;
        let store = &mut self.store;
        let outcome = match action {
            Action::Stall(stalled) => {
                self.xen.with_xenstore(|server| server.set_stalled(*stalled));
                return None;
            }
            Action::InjectMessage { kind, id, payload } => {
                let last = checker.last_request_id;
                let request_id = match *id {
                    IdChoice::Ahead(by) => last.wrapping_add(1).wrapping_add(by),
                    IdChoice::Behind(by) => last.wrapping_sub(by),
                    IdChoice::Exactly(id) => id,
                };
                let header = MessageHeader { kind: *kind, request_id, transaction_id: 0, len: payload.len() as u32 };
                checker.inject(&[&header.to_bytes()[..], payload].concat());
                self.hostile += 1;
                return None;
            }
            Action::InjectBytes(bytes) => {
                checker.inject(bytes);
                self.hostile += 1 + bytes.len() / MessageHeader::SIZE;
                return None;
            }
            Action::OversizedHeader { length } => {
                let header =
                    MessageHeader { kind: MessageType::Read as u32, request_id: 0, transaction_id: 0, len: *length };
                checker.inject(&header.to_bytes());
                return None;
            }
            Action::Truncated { length, payload } => {
                let header =
                    MessageHeader { kind: MessageType::Read as u32, request_id: 0, transaction_id: 0, len: *length };
                checker.inject(&[&header.to_bytes()[..], payload].concat());
                return None;
            }
            Action::ReplaceNextReply { kind, payload } => {
                self.xen.with_xenstore(|server| server.replace_next_reply(*kind, payload));
                self.hostile += 1;
                return None;
            }
            Action::WatchFlood { count, invented_tokens } => {
                let count = (*count).min(self.flood_left);
                self.flood_left -= count;
                let first = self.flood_sent;
                self.flood_sent += count;
                let mut bytes = Vec::new();
                for index in first..first + count {
                    let token =
                        if *invented_tokens { format!("invented-{index}") } else { String::from(TOKENS[index % 4]) };
                    let payload = format!("a/flood/{index}\0{token}\0");
                    let header = MessageHeader {
                        kind: MessageType::WatchEvent as u32,
                        request_id: 0,
                        transaction_id: 0,
                        len: payload.len() as u32,
                    };
                    bytes.extend_from_slice(&header.to_bytes());
                    bytes.extend_from_slice(payload.as_bytes());
                }
                checker.inject(&bytes);
                return None;
            }
            Action::Dom0Write(path, value) => {
                self.xen.with_xenstore(|server| server.write_as_dom0(path, value));
                return None;
            }
            Action::Dom0Rm(path) => {
                self.xen.with_xenstore(|server| server.rm_as_dom0(path));
                return None;
            }
            Action::LoseRequests => {
                let _ = ByteRing::requests(self.xen.xenstore_ring()).consume(&mut Vec::new());
                return None;
            }
            Action::FailCommits(count) => {
                self.xen.with_xenstore(|server| server.fail_next_commits(*count));
                return None;
            }
            Action::Advance(nanoseconds) => {
                self.xen.advance(*nanoseconds);
                return None;
            }
            Action::SetTimeout(nanoseconds) => {
                store.set_request_timeout(*nanoseconds);
                return None;
            }
            Action::Read(path) => checker
                .checked(MessageType::Read, || store.read(path), |value| ReplyBody::Value(value.clone()))
                .map(drop),
            Action::Write(path, value) => {
                checker.checked(MessageType::Write, || store.write(path, value), acknowledged)
            }
            Action::Directory(path) => checker
                .checked(MessageType::Directory, || store.directory(path), |names| ReplyBody::Directory(names.clone()))
                .map(drop),
            Action::Mkdir(path) => checker.checked(MessageType::Mkdir, || store.mkdir(path), acknowledged),
            Action::Rm(path) => checker.checked(MessageType::Rm, || store.rm(path), acknowledged),
            Action::Watch(path, token) => {
                checker.checked(MessageType::Watch, || store.watch(path, token), acknowledged)
            }
            Action::Unwatch(path, token) => {
                checker.checked(MessageType::Unwatch, || store.unwatch(path, token), acknowledged)
            }
            Action::Transaction { attempts, ops } => {
                let from = checker.request_producer();
                let outcome = store.transaction(*attempts, |transaction| {
                    ops.iter().try_for_each(|op| checker.transaction_op(transaction, op))
                });
                // Its last request is the commit (or an abort, after an
                // error); a success must be the commit's acknowledgement.
                if outcome.is_ok() {
                    checker.verify(MessageType::TransactionEnd, from, Ok(ReplyBody::Acknowledged));
                }
                outcome
            }
            Action::ManualTransaction { ops, commit, bogus_end } => {
                let started = |id: &TransactionId| ReplyBody::TransactionStarted(*id);
                match checker.checked(MessageType::TransactionStart, || store.transaction_start(), started) {
                    Ok(id) => {
                        let mut transaction = store.in_transaction(id);
                        let body = ops.iter().try_for_each(|op| checker.transaction_op(&mut transaction, op));
                        let end_id =
                            if *bogus_end { TransactionId::new(id.get() ^ 0x8000_0000).unwrap_or(id) } else { id };
                        let commit = *commit && body.is_ok();
                        let end = checker.checked(
                            MessageType::TransactionEnd,
                            || store.transaction_end(end_id, commit),
                            acknowledged,
                        );
                        body.and(end)
                    }
                    Err(error) => Err(error),
                }
            }
            Action::NextWatchEvents(count) => {
                let mut outcome = Ok(());
                for _ in 0..*count {
                    match self.next_watch_event() {
                        Ok(Some(())) => {}
                        Ok(None) => break,
                        Err(error) => {
                            outcome = Err(error);
                            break;
                        }
                    }
                }
                outcome
            }
        };
        Some(outcome)
    }

    /// Takes one watch event and checks the daemon sent it.
    fn next_watch_event(&mut self) -> Result<Option<()>, XenstoreError> {
        let broken = self.store.stream_broken();
        let result = self.store.next_watch_event();
        self.checker.absorb();
        match &result {
            Ok(Some(event)) => {
                let sent = self.checker.transcript.watch_events.contains(&(event.path.clone(), event.token.clone()));
                assert!(sent, "a watch event the daemon never sent: {event:?}");
                self.checker.report.watch_events += 1;
            }
            Ok(None) => assert!(broken.is_none(), "no watch event and no error from a broken stream"),
            Err(XenstoreError::Protocol(reason)) => {
                assert!(broken.is_none_or(|broken| broken == *reason), "broken with {broken:?}, then {reason}");
            }
            Err(error) => panic!("taking watch events failed with {error:?}"),
        }
        result.map(|event| event.map(drop))
    }

    /// The invariants after every client operation.
    fn check_after_operation(
        &mut self,
        broken: Option<&'static str>,
        action: &Action,
        result: Result<(), XenstoreError>,
    ) {
        let now_broken = self.store.stream_broken();
        if let Some(reason) = broken {
            assert_eq!(now_broken, Some(reason), "a broken stream stays broken, for the same reason");
            let exempt = matches!(action, Action::NextWatchEvents(_) | Action::Transaction { attempts: 0, .. });
            if !exempt {
                assert_eq!(result, Err(XenstoreError::Protocol(reason)), "{action:?} on a broken stream");
            }
        }
        let queued = self.store.queued_watch_events();
        assert!(queued <= 2 * WATCH_EVENT_QUEUE_LIMIT, "{queued} watch events queued");
        let report = &mut self.checker.report;
        report.peak_queued_events = report.peak_queued_events.max(queued);
        let (dropped, discarded) = (self.store.dropped_watch_events(), self.store.discarded_messages());
        assert!(dropped >= self.dropped_events && discarded >= self.discarded_messages, "a count went down");
        (self.dropped_events, self.discarded_messages) = (dropped, discarded);
    }

    /// The daemon behaves again; the client must recover (or, with a broken
    /// stream, keep reporting it).
    fn recover(&mut self) {
        self.xen.with_xenstore(|server| {
            server.set_stalled(false);
            server.fail_next_commits(0);
        });
        self.xen.advance(STALLED_PROBE_INTERVAL_NS);
        let framable = self.checker.transcript.aligned && !self.checker.transcript.unframable;
        let attempts = 32 + 4 * self.hostile + 2 * self.operations;
        let mut recovered_after = None;
        for attempt in 0..attempts {
            if self.store.stream_broken().is_some() {
                break;
            }
            let pending = self.xen.with_xenstore(|server| server.pending_replacements());
            let probe = Action::Write("final/probe", format!("attempt-{attempt}"));
            let broken = self.store.stream_broken();
            let result = self.client_act(&probe).expect("a client operation");
            self.check_after_operation(broken, &probe, result.clone());
            // Recovered once the client takes the daemon's own reply to a
            // request no replaced reply was waiting for: everything hostile
            // queued before it has then been read.
            if result.is_ok() && pending == 0 && self.checker.last_success_honest {
                recovered_after = Some(attempt + 1);
                break;
            }
            if result == Err(XenstoreError::TimedOut) {
                self.xen.advance(STALLED_PROBE_INTERVAL_NS);
            }
        }
        if let Some(reason) = self.store.stream_broken() {
            // Acknowledged: it fails cleanly, and always the same way.
            for action in [Action::Read("a"), Action::Write("a", String::from("v")), Action::Directory("a")] {
                let result = self.client_act(&action).expect("a client operation");
                assert_eq!(result, Err(XenstoreError::Protocol(reason)), "{action:?} on a broken stream");
            }
            return;
        }
        if !framable {
            return;
        }
        let attempts = recovered_after
            .unwrap_or_else(|| panic!("the client did not recover within {attempts} attempts once the daemon behaved"));
        self.checker.report.recovered_after = Some(attempts);
        self.assert_everything_works();
    }

    /// Every operation works with a daemon that behaves.
    fn assert_everything_works(&mut self) {
        let (checker, store) = (&mut self.checker, &mut self.store);
        let write = checker.checked(MessageType::Write, || store.write("final/key", "value"), acknowledged);
        assert_eq!(write, Ok(()), "write once recovered");
        let read =
            checker.checked(MessageType::Read, || store.read("final/key"), |value| ReplyBody::Value(value.clone()));
        assert_eq!(read.as_deref(), Ok("value"), "read once recovered");
        let names = |names: &Vec<String>| ReplyBody::Directory(names.clone());
        let listing = checker.checked(MessageType::Directory, || store.directory("final"), names);
        assert!(listing.as_ref().is_ok_and(|names| names.iter().any(|name| name == "key")), "directory: {listing:?}");
        assert_eq!(checker.checked(MessageType::Mkdir, || store.mkdir("final/dir"), acknowledged), Ok(()));
        assert_eq!(checker.checked(MessageType::Rm, || store.rm("final/key"), acknowledged), Ok(()));
        let gone =
            checker.checked(MessageType::Read, || store.read("final/key"), |value| ReplyBody::Value(value.clone()));
        assert_eq!(gone, Err(XenstoreError::NotFound), "read after rm");
        while self.next_watch_event().expect("watch events once recovered").is_some() {}
        let (checker, store) = (&mut self.checker, &mut self.store);
        let watch = checker.checked(MessageType::Watch, || store.watch("final", "final-watch"), acknowledged);
        assert_eq!(watch, Ok(()), "watch once recovered");
        let event = core::iter::from_fn(|| self.store.next_watch_event().expect("watch events once recovered"))
            .find(|event| event.token == "final-watch");
        assert!(event.is_some(), "the new watch's first event");
        let (checker, store) = (&mut self.checker, &mut self.store);
        let from = checker.request_producer();
        let committed = store.transaction(3, |transaction| transaction.write("final/committed", "yes"));
        assert_eq!(committed, Ok(()), "a transaction once recovered");
        checker.verify(MessageType::TransactionEnd, from, Ok(ReplyBody::Acknowledged));
        let read = checker.checked(
            MessageType::Read,
            || store.read("final/committed"),
            |value| ReplyBody::Value(value.clone()),
        );
        assert_eq!(read.as_deref(), Ok("yes"), "the committed write");
    }
}

#[cfg(test)]
mod tests;
