//! The simulated xenstore daemon (xenstored in dom0), on the far side of a
//! real [`XenstoreInterface`] page.
//!
//! [`XenstoreServer::process`] is what dom0 does when scheduled: it takes
//! every byte the guest has published on the request ring, executes each
//! complete request against a tree of nodes, and queues the replies and watch
//! events, writing as many as fit on the response ring (the rest waits for
//! the guest to consume and notify). It implements `READ`, `WRITE`
//! (creating parents), `MKDIR`, `RM` (recursive), `DIRECTORY`, `WATCH`
//! (with the initial event xenstored sends), `UNWATCH`, and transactions;
//! errors are `XS_ERROR` replies carrying the errno name, as xenstored's.
//!
//! Semantics kept from xenstored: a watch fires for every change at or
//! below its path, and for the removal of its own node with an ancestor;
//! a write's events are sent before its acknowledgement, a watch's initial
//! event after; guest permissions (one [`Access`] per node, inherited by new
//! nodes); the node-size quota (`ENOSPC`). Transactions work on a snapshot
//! and conflict (`EAGAIN` at commit) if anything changed the store since
//! they started, which is stricter than xenstored (it compares only the
//! nodes the transaction touched) but never lets a conflict through.
//!
//! For tests, dom0's side: [`XenstoreServer::write_as_dom0`] and friends
//! (they fire watches; run them through `SimXen::with_xenstore` so the
//! events reach the ring), permissions, forced `EAGAIN` commits, hostile
//! replies ([`XenstoreServer::inject_raw_reply`],
//! [`XenstoreServer::replace_next_reply`]), a copy of the whole response
//! stream ([`XenstoreServer::record_responses`], what a checker needs to
//! tell which message a reply came from), and a daemon that stops
//! answering ([`XenstoreServer::set_stalled`]: it neither reads requests nor
//! writes replies or events until resumed, then catches up on both).
//!
//! Never: accept a guest that breaks the ring protocol (indices more than a
//! ring apart, a request longer than `XENSTORE_PAYLOAD_MAX`); the
//! simulation panics, failing the test.

pub mod exercise;
mod tree;

pub use tree::{Access, GUEST_HOME};

use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::vec::Vec;
use tree::{Tree, is_at_or_below, parent, resolve};
use xen_pv::abi::xenstore::{MessageHeader, MessageType, XENSTORE_PAYLOAD_MAX, XenstoreInterface};
use xen_pv::xenstore::XenstoreError;
use xen_pv::xenstore::ring::ByteRing;

/// Values this long or longer are refused with `ENOSPC`, as xenstored's
/// node-size quota (2048 bytes with the node's metadata) does for guests.
pub const VALUE_SIZE_QUOTA: usize = 2000;

/// One change to the store, for watches: `exact` changes (the nodes below a
/// removed one) fire only the watches on that very node.
#[derive(Debug, Clone)]
struct Change {
    path: String,
    exact: bool,
}

struct Watch {
    /// Absolute, or a special `@name`.
    path: String,
    /// As the guest gave it: events are relative when it was.
    relative: bool,
    token: String,
}

impl Watch {
    /// The path of the event `change` fires on this watch, if it does.
    fn event_path(&self, change: &Change) -> Option<String> {
        let fires = if change.exact { change.path == self.path } else { is_at_or_below(&change.path, &self.path) };
        if !fires || self.path.starts_with('@') {
            return None;
        }
        let home = std::format!("{GUEST_HOME}/");
        match change.path.strip_prefix(&home) {
            Some(relative) if self.relative => Some(relative.to_string()),
            _ => Some(change.path.clone()),
        }
    }
}

struct OpenTransaction {
    tree: Tree,
    start_generation: u64,
    changes: Vec<Change>,
}

/// What a request answers: its payload, and for a watch the initial event
/// that follows the acknowledgement.
struct Answer {
    payload: Vec<u8>,
    initial_event: Option<(String, String)>,
}

impl Answer {
    fn payload(payload: Vec<u8>) -> Self {
        Self { payload, initial_event: None }
    }

    fn acknowledged() -> Self {
        Self::payload(b"OK\0".to_vec())
    }
}

/// The simulated xenstore daemon.
pub struct XenstoreServer {
    tree: Tree,
    generation: u64,
    /// Per path: the generation of its last write or removal.
    changed_at: BTreeMap<String, u64>,
    transactions: BTreeMap<u32, OpenTransaction>,
    next_transaction_id: u32,
    watches: Vec<Watch>,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
    replacements: Vec<(u32, Vec<u8>)>,
    failing_commits: u32,
    requests_handled: u64,
    stalled: bool,
    recorded: Option<Vec<u8>>,
}

impl Default for XenstoreServer {
    fn default() -> Self {
        Self::new()
    }
}

impl XenstoreServer {
    /// A store with `/local/domain/1`, the guest's home (writable by it);
    /// everything above is read-only for the guest.
    pub fn new() -> Self {
        let mut tree = Tree::new();
        tree.mkdir(GUEST_HOME);
        tree.set_access(GUEST_HOME, Access::ReadWrite);
        Self {
            tree,
            generation: 0,
            changed_at: BTreeMap::new(),
            transactions: BTreeMap::new(),
            next_transaction_id: 1,
            watches: Vec::new(),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            replacements: Vec::new(),
            failing_commits: 0,
            requests_handled: 0,
            stalled: false,
            recorded: None,
        }
    }

    /// Serves every complete request on the ring; returns whether it moved
    /// any byte (consumed a request or wrote a response), so the caller
    /// raises the event channel. A stalled daemon does nothing.
    pub fn process(&mut self, ring: &XenstoreInterface) -> bool {
        if self.stalled {
            return false;
        }
        let consumed = ByteRing::requests(ring)
            .consume(&mut self.incoming)
            .unwrap_or_else(|error| panic!("simulated xenstored: the guest broke the request ring: {error}"));
        while let Some((header, payload)) = self.next_request() {
            self.handle(header, &payload);
        }
        let written = self.flush(ring);
        consumed > 0 || written > 0
    }

    fn next_request(&mut self) -> Option<(MessageHeader, Vec<u8>)> {
        let header = MessageHeader::from_bytes(self.incoming.get(..MessageHeader::SIZE)?.try_into().ok()?);
        let length = header.len as usize;
        assert!(length <= XENSTORE_PAYLOAD_MAX, "simulated xenstored: a request of {length} bytes");
        let payload = self.incoming.get(MessageHeader::SIZE..MessageHeader::SIZE + length)?.to_vec();
        self.incoming.drain(..MessageHeader::SIZE + length);
        Some((header, payload))
    }

    fn flush(&mut self, ring: &XenstoreInterface) -> usize {
        let written = ByteRing::responses(ring)
            .produce(&self.outgoing)
            .unwrap_or_else(|error| panic!("simulated xenstored: the guest broke the response ring: {error}"));
        self.outgoing.drain(..written);
        written
    }

    fn handle(&mut self, header: MessageHeader, payload: &[u8]) {
        self.requests_handled += 1;
        if !self.replacements.is_empty() {
            let (kind, replacement) = self.replacements.remove(0);
            self.send(kind, &header, &replacement);
            return;
        }
        match self.execute(&header, payload) {
            Ok(answer) => {
                self.send(header.kind, &header, &answer.payload);
                if let Some((path, token)) = answer.initial_event {
                    self.send_watch_event(&path, &token);
                }
            }
            Err(error) => {
                let name = error.wire_name().unwrap_or("EINVAL");
                self.send(MessageType::Error as u32, &header, std::format!("{name}\0").as_bytes());
            }
        }
    }

    fn send(&mut self, kind: u32, request: &MessageHeader, payload: &[u8]) {
        let header = MessageHeader { kind, len: payload.len() as u32, ..*request };
        self.queue(&header.to_bytes());
        self.queue(payload);
    }

    /// Appends `bytes` to the response stream (and to the recording).
    fn queue(&mut self, bytes: &[u8]) {
        self.outgoing.extend_from_slice(bytes);
        if let Some(recorded) = self.recorded.as_mut() {
            recorded.extend_from_slice(bytes);
        }
    }

    fn send_watch_event(&mut self, path: &str, token: &str) {
        let payload = std::format!("{path}\0{token}\0");
        self.send(MessageType::WatchEvent as u32, &MessageHeader::default(), payload.as_bytes());
    }

    fn execute(&mut self, header: &MessageHeader, payload: &[u8]) -> Result<Answer, XenstoreError> {
        use MessageType::*;
        let transaction = header.transaction_id;
        match MessageType::from_wire(header.kind) {
            Some(Read) => self.read(transaction, &resolve(one_string(payload)?)?),
            Some(Directory) => self.directory(transaction, &resolve(one_string(payload)?)?),
            Some(Write) => {
                let (path, value) = split_write(payload)?;
                self.write(transaction, &resolve(path)?, value)
            }
            Some(Mkdir) => self.mkdir(transaction, &resolve(one_string(payload)?)?),
            Some(Rm) => self.rm(transaction, &resolve(one_string(payload)?)?),
            Some(Watch) => self.watch(two_strings(payload)?),
            Some(Unwatch) => self.unwatch(two_strings(payload)?),
            Some(TransactionStart) => self.transaction_start(transaction),
            Some(TransactionEnd) => self.transaction_end(transaction, payload),
            Some(_) => Err(XenstoreError::Unsupported),
            None => Err(XenstoreError::InvalidInput),
        }
    }

    fn tree(&mut self, transaction: u32) -> Result<&mut Tree, XenstoreError> {
        if transaction == 0 {
            return Ok(&mut self.tree);
        }
        self.transactions.get_mut(&transaction).map(|open| &mut open.tree).ok_or(XenstoreError::NotFound)
    }

    /// Makes `changes` count: at once outside a transaction (new generation,
    /// watches fire), at commit inside one.
    fn record(&mut self, transaction: u32, changes: Vec<Change>) {
        match self.transactions.get_mut(&transaction) {
            Some(open) => open.changes.extend(changes),
            None => self.apply(&changes),
        }
    }

    fn apply(&mut self, changes: &[Change]) {
        if changes.is_empty() {
            return;
        }
        self.generation += 1;
        for change in changes {
            self.changed_at.insert(change.path.clone(), self.generation);
        }
        let events: Vec<(String, String)> = changes
            .iter()
            .flat_map(|change| {
                self.watches.iter().filter_map(move |watch| Some((watch.event_path(change)?, watch.token.clone())))
            })
            .collect();
        for (path, token) in events {
            self.send_watch_event(&path, &token);
        }
    }

    fn read(&mut self, transaction: u32, path: &str) -> Result<Answer, XenstoreError> {
        let node = readable(self.tree(transaction)?, path)?;
        Ok(Answer::payload(node.value.clone()))
    }

    fn directory(&mut self, transaction: u32, path: &str) -> Result<Answer, XenstoreError> {
        let tree = self.tree(transaction)?;
        readable(tree, path)?;
        let names = tree.children(path);
        Ok(Answer::payload(names.iter().flat_map(|name| name.bytes().chain([0])).collect()))
    }

    fn write(&mut self, transaction: u32, path: &str, value: &[u8]) -> Result<Answer, XenstoreError> {
        if value.len() >= VALUE_SIZE_QUOTA {
            return Err(XenstoreError::NoSpace);
        }
        let tree = self.tree(transaction)?;
        writable(tree, path)?;
        tree.write(path, value);
        self.record(transaction, std::vec![Change { path: path.to_string(), exact: false }]);
        Ok(Answer::acknowledged())
    }

    fn mkdir(&mut self, transaction: u32, path: &str) -> Result<Answer, XenstoreError> {
        let tree = self.tree(transaction)?;
        writable(tree, path)?;
        if tree.mkdir(path) {
            self.record(transaction, std::vec![Change { path: path.to_string(), exact: false }]);
        }
        Ok(Answer::acknowledged())
    }

    fn rm(&mut self, transaction: u32, path: &str) -> Result<Answer, XenstoreError> {
        let tree = self.tree(transaction)?;
        if path == "/" {
            return Err(XenstoreError::InvalidInput);
        }
        if tree.get(path).is_none() {
            // Removing a missing node is fine if its parent exists.
            let parent_exists = parent(path).is_some_and(|above| tree.get(above).is_some());
            return if parent_exists { Ok(Answer::acknowledged()) } else { Err(XenstoreError::NotFound) };
        }
        writable(tree, path)?;
        let removed = tree.remove(path);
        let changes = removed.into_iter().enumerate().map(|(index, path)| Change { path, exact: index > 0 }).collect();
        self.record(transaction, changes);
        Ok(Answer::acknowledged())
    }

    fn watch(&mut self, (given, token): (&[u8], String)) -> Result<Answer, XenstoreError> {
        let watch = new_watch(given, token)?;
        if self.watches.iter().any(|existing| existing.path == watch.path && existing.token == watch.token) {
            return Err(XenstoreError::AlreadyExists);
        }
        let initial_event = Some((String::from_utf8_lossy(given).into_owned(), watch.token.clone()));
        self.watches.push(watch);
        Ok(Answer { payload: b"OK\0".to_vec(), initial_event })
    }

    fn unwatch(&mut self, (given, token): (&[u8], String)) -> Result<Answer, XenstoreError> {
        let watch = new_watch(given, token)?;
        let position =
            self.watches.iter().position(|existing| existing.path == watch.path && existing.token == watch.token);
        self.watches.remove(position.ok_or(XenstoreError::NotFound)?);
        Ok(Answer::acknowledged())
    }

    fn transaction_start(&mut self, transaction: u32) -> Result<Answer, XenstoreError> {
        if transaction != 0 {
            return Err(XenstoreError::Busy);
        }
        let id = self.next_transaction_id;
        self.next_transaction_id = self.next_transaction_id.checked_add(1).unwrap_or(1);
        let open = OpenTransaction { tree: self.tree.clone(), start_generation: self.generation, changes: Vec::new() };
        self.transactions.insert(id, open);
        Ok(Answer::payload(std::format!("{id}\0").into_bytes()))
    }

    fn transaction_end(&mut self, transaction: u32, payload: &[u8]) -> Result<Answer, XenstoreError> {
        let commit = match payload {
            b"T\0" => true,
            b"F\0" => false,
            _ => return Err(XenstoreError::InvalidInput),
        };
        let open = self.transactions.remove(&transaction).ok_or(XenstoreError::NotFound)?;
        if !commit {
            return Ok(Answer::acknowledged());
        }
        if self.failing_commits > 0 {
            self.failing_commits -= 1;
            return Err(XenstoreError::TryAgain);
        }
        if open.start_generation != self.generation {
            return Err(XenstoreError::TryAgain);
        }
        self.tree = open.tree;
        self.apply(&open.changes);
        Ok(Answer::acknowledged())
    }
}

/// Dom0's side, for tests. Paths are resolved as the guest's are (relative
/// ones under [`GUEST_HOME`]); an invalid one panics (a broken test).
impl XenstoreServer {
    /// Writes `value` at `path` as dom0 (no permission checks), firing watches.
    pub fn write_as_dom0(&mut self, path: &str, value: &str) {
        let path = dom0_path(path);
        self.tree.write(&path, value.as_bytes());
        self.apply(&[Change { path, exact: false }]);
    }

    /// A number that changes whenever the store does (a write or removal
    /// outside a transaction, or a commit), for backends that re-read their
    /// keys only then, as real ones do on a watch event.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The generation of the last write or removal of `path` or of one of
    /// its ancestors (0: never): what a watch on `path` alone would have
    /// fired for, even when the value written was the one already there.
    pub fn changed_at(&self, path: &str) -> u64 {
        let mut path = dom0_path(path);
        let mut latest = 0;
        loop {
            latest = latest.max(self.changed_at.get(&path).copied().unwrap_or(0));
            match tree::parent(&path) {
                Some(parent) => path = parent.to_string(),
                None => return latest,
            }
        }
    }

    /// The value at `path`, lossily decoded, if it exists.
    pub fn read_as_dom0(&self, path: &str) -> Option<String> {
        self.tree.get(&dom0_path(path)).map(|node| String::from_utf8_lossy(&node.value).into_owned())
    }

    /// The children of `path` (empty if it does not exist).
    pub fn directory_as_dom0(&self, path: &str) -> Vec<String> {
        self.tree.children(&dom0_path(path))
    }

    /// Removes `path` and everything below it as dom0, firing watches.
    pub fn rm_as_dom0(&mut self, path: &str) {
        let removed = self.tree.remove(&dom0_path(path));
        let changes: Vec<Change> =
            removed.into_iter().enumerate().map(|(index, path)| Change { path, exact: index > 0 }).collect();
        self.apply(&changes);
    }

    /// Sets what the guest may do with `path` (which must exist).
    pub fn set_access(&mut self, path: &str, access: Access) {
        assert!(self.tree.set_access(&dom0_path(path), access), "simulated xenstored: no node {path}");
    }

    /// Makes `path` (which must exist) read-only for the guest.
    pub fn set_read_only(&mut self, path: &str) {
        self.set_access(path, Access::ReadOnly);
    }

    /// The next `count` commits fail with `EAGAIN`, whatever happened.
    pub fn fail_next_commits(&mut self, count: u32) {
        self.failing_commits = count;
    }

    /// Queues raw bytes on the response stream, ahead of any later reply:
    /// a hostile daemon's message.
    pub fn inject_raw_reply(&mut self, bytes: &[u8]) {
        self.queue(bytes);
    }

    /// Starts (`true`) or stops keeping a copy of every byte queued for the
    /// response stream from now on: replies, watch events and injected
    /// bytes alike, in the order the guest will read them.
    pub fn record_responses(&mut self, on: bool) {
        self.recorded = on.then(|| self.recorded.take().unwrap_or_default());
    }

    /// The bytes recorded since the last call (empty when not recording).
    pub fn take_recorded_responses(&mut self) -> Vec<u8> {
        self.recorded.as_mut().map(core::mem::take).unwrap_or_default()
    }

    /// The next request is not executed; its reply has type `kind` and this
    /// payload, with the request's id and transaction.
    pub fn replace_next_reply(&mut self, kind: u32, payload: &[u8]) {
        self.replacements.push((kind, payload.to_vec()));
    }

    /// Replies still to be replaced ([`Self::replace_next_reply`]): the
    /// next that many requests get them.
    pub fn pending_replacements(&self) -> usize {
        self.replacements.len()
    }

    /// Stops (`true`) or resumes the daemon, as a stopped or overloaded
    /// xenstored: while stalled it reads no request and writes nothing on
    /// the response ring (what it is told to send meanwhile waits); once
    /// resumed it serves what the guest wrote meanwhile. Resume it through
    /// `SimXen::with_xenstore`, which runs it at once.
    pub fn set_stalled(&mut self, stalled: bool) {
        self.stalled = stalled;
    }

    /// Whether the daemon is stalled.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// The guest was restored in a new domain (the simulation keeps its
    /// id and home path): xenstored's connection to it is new, with no
    /// watch, no transaction and nothing half read or queued for it; the
    /// toolstack made its home afresh (empty, writable by it) and removed
    /// the backend directories of its old devices, which the new devices'
    /// backends write again.
    pub fn restart_for_new_domain(&mut self) {
        self.watches.clear();
        self.transactions.clear();
        self.incoming.clear();
        self.outgoing.clear();
        self.replacements.clear();
        self.stalled = false;
        self.tree.remove(GUEST_HOME);
        self.tree.mkdir(GUEST_HOME);
        self.tree.set_access(GUEST_HOME, Access::ReadWrite);
        let guest = GUEST_HOME.rsplit('/').next().unwrap_or_default().to_string();
        for domain in self.tree.children("/local/domain") {
            for kind in self.tree.children(&std::format!("/local/domain/{domain}/backend")) {
                self.tree.remove(&std::format!("/local/domain/{domain}/backend/{kind}/{guest}"));
            }
        }
        self.generation += 1;
    }

    /// Watches registered now.
    pub fn watch_count(&self) -> usize {
        self.watches.len()
    }

    /// Transactions started and not yet ended.
    pub fn open_transactions(&self) -> usize {
        self.transactions.len()
    }

    /// Requests received so far.
    pub fn requests_handled(&self) -> u64 {
        self.requests_handled
    }
}

fn dom0_path(path: &str) -> String {
    resolve(path.as_bytes()).unwrap_or_else(|_| panic!("simulated xenstored: invalid path {path:?}"))
}

fn readable<'t>(tree: &'t Tree, path: &str) -> Result<&'t tree::Node, XenstoreError> {
    let node = tree.get(path).ok_or(XenstoreError::NotFound)?;
    if node.access == Access::Hidden {
        return Err(XenstoreError::PermissionDenied);
    }
    Ok(node)
}

/// Whether the guest may change `path`: the node, or the closest existing
/// ancestor it would be created under, must be writable.
fn writable(tree: &Tree, path: &str) -> Result<(), XenstoreError> {
    match tree.nearest_existing(path).access {
        Access::ReadWrite => Ok(()),
        Access::ReadOnly | Access::Hidden => Err(XenstoreError::PermissionDenied),
    }
}

fn new_watch(given: &[u8], token: String) -> Result<Watch, XenstoreError> {
    let special = given.first() == Some(&b'@');
    let path = if special {
        String::from_utf8(given.to_vec()).map_err(|_| XenstoreError::InvalidInput)?
    } else {
        resolve(given)?
    };
    Ok(Watch { path, relative: given.first() != Some(&b'/'), token })
}

/// The one NUL-terminated string of a request.
fn one_string(payload: &[u8]) -> Result<&[u8], XenstoreError> {
    match payload.split_last() {
        Some((0, string)) if !string.contains(&0) => Ok(string),
        _ => Err(XenstoreError::InvalidInput),
    }
}

/// A write's path and value.
fn split_write(payload: &[u8]) -> Result<(&[u8], &[u8]), XenstoreError> {
    let nul = payload.iter().position(|&byte| byte == 0).ok_or(XenstoreError::InvalidInput)?;
    Ok((&payload[..nul], &payload[nul + 1..]))
}

/// A watch's path and token.
fn two_strings(payload: &[u8]) -> Result<(&[u8], String), XenstoreError> {
    let (path, rest) = split_write(payload)?;
    let token = one_string(rest)?;
    Ok((path, String::from_utf8(token.to_vec()).map_err(|_| XenstoreError::InvalidInput)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_pv::xenstore::wire::{ReplyBody, parse_reply};

    fn request(ring: &XenstoreInterface, kind: MessageType, transaction_id: u32, payload: &[u8]) {
        let header = MessageHeader { kind: kind as u32, request_id: 7, transaction_id, len: payload.len() as u32 };
        let message = [&header.to_bytes()[..], payload].concat();
        assert_eq!(ByteRing::requests(ring).produce(&message).unwrap(), message.len());
    }

    fn replies(ring: &XenstoreInterface) -> Vec<ReplyBody> {
        let mut bytes = Vec::new();
        ByteRing::responses(ring).consume(&mut bytes).unwrap();
        let mut bodies = Vec::new();
        while !bytes.is_empty() {
            let length = MessageHeader::from_bytes(bytes[..16].try_into().unwrap()).len as usize;
            bodies.push(parse_reply(&bytes[..16], &bytes[16..16 + length]).unwrap().body);
            bytes.drain(..16 + length);
        }
        bodies
    }

    fn error(error: XenstoreError) -> ReplyBody {
        ReplyBody::Error(error)
    }

    #[test]
    fn serves_a_request_only_once_it_is_complete() {
        let ring = XenstoreInterface::new_zeroed();
        let mut server = XenstoreServer::new();
        assert!(!server.process(&ring), "nothing to do");
        let header = MessageHeader { kind: MessageType::Write as u32, request_id: 1, transaction_id: 0, len: 4 };
        ByteRing::requests(&ring).produce(&header.to_bytes()).unwrap();
        ByteRing::requests(&ring).produce(b"a\0").unwrap();
        assert!(server.process(&ring), "consumed a part");
        assert!(replies(&ring).is_empty());
        ByteRing::requests(&ring).produce(b"vv").unwrap();
        server.process(&ring);
        assert_eq!(replies(&ring), [ReplyBody::Acknowledged]);
        assert_eq!(server.read_as_dom0("a").as_deref(), Some("vv"));
    }

    #[test]
    fn refuses_malformed_requests_with_errno_names() {
        let ring = XenstoreInterface::new_zeroed();
        let mut server = XenstoreServer::new();
        request(&ring, MessageType::Read, 0, b"no-terminator");
        request(&ring, MessageType::GetPerms, 0, b"a\0");
        request(&ring, MessageType::TransactionStart, 0, b"\0");
        request(&ring, MessageType::TransactionStart, 1, b"\0");
        request(&ring, MessageType::TransactionEnd, 1, b"X\0");
        request(&ring, MessageType::Read, 99, b"a\0");
        server.process(&ring);
        let started = ReplyBody::TransactionStarted(xen_pv::xenstore::TransactionId::new(1).unwrap());
        let expected = [
            error(XenstoreError::InvalidInput),
            error(XenstoreError::Unsupported),
            started,
            error(XenstoreError::Busy),
            error(XenstoreError::InvalidInput),
            error(XenstoreError::NotFound),
        ];
        assert_eq!(replies(&ring), expected);
    }

    #[test]
    fn a_reply_larger_than_the_ring_waits_for_room() {
        let ring = XenstoreInterface::new_zeroed();
        let mut server = XenstoreServer::new();
        server.write_as_dom0("big", &"v".repeat(1500));
        request(&ring, MessageType::Read, 0, b"big\0");
        server.process(&ring);
        let mut bytes = Vec::new();
        ByteRing::responses(&ring).consume(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 1024);
        assert!(server.process(&ring), "the rest is written once there is room");
        ByteRing::responses(&ring).consume(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 16 + 1500);
    }

    #[test]
    fn a_stalled_daemon_reads_and_writes_nothing_until_resumed() {
        let ring = XenstoreInterface::new_zeroed();
        let mut server = XenstoreServer::new();
        server.set_stalled(true);
        request(&ring, MessageType::Write, 0, b"a\0v");
        server.write_as_dom0("b", "w");
        assert!(!server.process(&ring));
        assert_eq!(ByteRing::requests(&ring).in_flight().unwrap(), 16 + 3, "the request is still on the ring");
        assert!(replies(&ring).is_empty());
        assert!(server.is_stalled());
        server.set_stalled(false);
        assert!(server.process(&ring));
        assert_eq!(replies(&ring), [ReplyBody::Acknowledged]);
        assert_eq!(server.read_as_dom0("a").as_deref(), Some("v"));
    }

    #[test]
    #[should_panic(expected = "a request of 5000 bytes")]
    fn a_request_longer_than_the_protocol_allows_fails_the_test() {
        let ring = XenstoreInterface::new_zeroed();
        let header = MessageHeader { kind: MessageType::Read as u32, request_id: 1, transaction_id: 0, len: 5000 };
        ByteRing::requests(&ring).produce(&header.to_bytes()).unwrap();
        XenstoreServer::new().process(&ring);
    }

    #[test]
    #[should_panic(expected = "broke the request ring")]
    fn a_guest_that_breaks_the_ring_fails_the_test() {
        let ring = XenstoreInterface::new_zeroed();
        ring.req_prod.store(4000, core::sync::atomic::Ordering::Relaxed);
        XenstoreServer::new().process(&ring);
    }
}
