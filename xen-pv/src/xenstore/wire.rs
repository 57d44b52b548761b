//! Encoding xenstore requests and decoding the daemon's messages.
//!
//! Pure functions over byte slices, no ring and no waiting, so they can be
//! tested and fuzzed on their own. A message is a 16-byte header
//! ([`MessageHeader`]) and `len` payload bytes; the payloads are
//! (`docs/misc/xenstore.txt`; `|` stands for NUL):
//!
//! | request | payload sent | reply payload |
//! |---|---|---|
//! | `READ` | `path\|` | the value, not terminated |
//! | `WRITE` | `path\|value` | `OK\|` |
//! | `MKDIR`, `RM` | `path\|` | `OK\|` |
//! | `DIRECTORY` | `path\|` | `child\|` for each child |
//! | `WATCH`, `UNWATCH` | `path\|token\|` | `OK\|` |
//! | `TRANSACTION_START` | `\|` | `id\|`, decimal |
//! | `TRANSACTION_END` | `T\|` (commit) or `F\|` (abort) | `OK\|` |
//!
//! and at any time the daemon may send `WATCH_EVENT` (`path|token|`) or, in
//! place of a reply, `ERROR` (`ENAME|`, see [`XenstoreError`]).
//!
//! Contract: [`parse_reply`] treats its input as hostile. It checks the
//! header (length within `XENSTORE_PAYLOAD_MAX` and equal to the payload's,
//! a known type), the shape of the payload for that type and that every
//! string is UTF-8; what it returns can be trusted to have that shape. It
//! does not know which request was made: matching the request id and the
//! type against the request is the caller's job.
//!
//! Never: panic, index out of bounds, or allocate more than the input's size
//! on any input.

use super::error::XenstoreError;
use crate::abi::xenstore::{MessageHeader, MessageType, XENSTORE_PAYLOAD_MAX};
use alloc::string::String;
use alloc::vec::Vec;

/// A transaction, as the daemon numbers it (never 0, which means "none").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransactionId(u32);

impl TransactionId {
    /// The transaction with this wire number; `None` for 0.
    pub fn new(number: u32) -> Option<Self> {
        (number != 0).then_some(Self(number))
    }

    /// The wire number.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A watch fired: `path` (at or below the watched path) changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The node that changed (relative if the watch was set relative).
    pub path: String,
    /// The token given when the watch was set.
    pub token: String,
}

/// A request to the daemon, borrowing its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `XS_READ`: a node's value.
    Read {
        /// The node.
        path: &'a str,
    },
    /// `XS_WRITE`: sets a node's value, creating it and missing parents.
    Write {
        /// The node.
        path: &'a str,
        /// Its new value (may hold any bytes).
        value: &'a [u8],
    },
    /// `XS_MKDIR`: creates a node with an empty value if it is missing.
    Mkdir {
        /// The node.
        path: &'a str,
    },
    /// `XS_RM`: removes a node and everything below it.
    Rm {
        /// The node.
        path: &'a str,
    },
    /// `XS_DIRECTORY`: the names of a node's children.
    Directory {
        /// The node.
        path: &'a str,
    },
    /// `XS_WATCH`: report changes at or below `path`, labelled `token`.
    Watch {
        /// The watched node.
        path: &'a str,
        /// The label of its events.
        token: &'a str,
    },
    /// `XS_UNWATCH`: removes a watch set with the same path and token.
    Unwatch {
        /// The watched node.
        path: &'a str,
        /// The label of its events.
        token: &'a str,
    },
    /// `XS_TRANSACTION_START`.
    TransactionStart,
    /// `XS_TRANSACTION_END` of the transaction in the header.
    TransactionEnd {
        /// Commit (`T`) or abort (`F`).
        commit: bool,
    },
}

impl Request<'_> {
    /// The message type that carries this request.
    pub fn kind(&self) -> MessageType {
        match self {
            Request::Read { .. } => MessageType::Read,
            Request::Write { .. } => MessageType::Write,
            Request::Mkdir { .. } => MessageType::Mkdir,
            Request::Rm { .. } => MessageType::Rm,
            Request::Directory { .. } => MessageType::Directory,
            Request::Watch { .. } => MessageType::Watch,
            Request::Unwatch { .. } => MessageType::Unwatch,
            Request::TransactionStart => MessageType::TransactionStart,
            Request::TransactionEnd { .. } => MessageType::TransactionEnd,
        }
    }

    /// The payload: the NUL-terminated strings, and a write's raw value.
    fn payload(&self) -> Result<Vec<u8>, XenstoreError> {
        let mut payload = Vec::new();
        match *self {
            Request::Read { path } | Request::Mkdir { path } | Request::Rm { path } | Request::Directory { path } => {
                push_string(&mut payload, path)?
            }
            Request::Write { path, value } => {
                push_string(&mut payload, path)?;
                payload.extend_from_slice(value);
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                push_string(&mut payload, path)?;
                push_string(&mut payload, token)?;
            }
            Request::TransactionStart => push_string(&mut payload, "")?,
            Request::TransactionEnd { commit } => push_string(&mut payload, if commit { "T" } else { "F" })?,
        }
        Ok(payload)
    }
}

/// Appends `text` and its NUL; a NUL inside it would end it early.
fn push_string(payload: &mut Vec<u8>, text: &str) -> Result<(), XenstoreError> {
    if text.as_bytes().contains(&0) {
        return Err(XenstoreError::InvalidInput);
    }
    payload.extend_from_slice(text.as_bytes());
    payload.push(0);
    Ok(())
}

/// The wire bytes (header and payload) of `request`.
///
/// Fails with `InvalidInput` if a path or token holds a NUL, and `TooBig` if
/// the payload exceeds `XENSTORE_PAYLOAD_MAX`; nothing is sent then.
pub fn encode_request(
    request: &Request<'_>,
    request_id: u32,
    transaction: Option<TransactionId>,
) -> Result<Vec<u8>, XenstoreError> {
    let payload = request.payload()?;
    if payload.len() > XENSTORE_PAYLOAD_MAX {
        return Err(XenstoreError::TooBig);
    }
    let header = MessageHeader {
        kind: request.kind() as u32,
        request_id,
        transaction_id: transaction.map_or(0, TransactionId::get),
        len: payload.len() as u32,
    };
    let mut message = Vec::with_capacity(MessageHeader::SIZE + payload.len());
    message.extend_from_slice(&header.to_bytes());
    message.extend_from_slice(&payload);
    Ok(message)
}

/// A message from the daemon, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Its type: the request's, `Error` or `WatchEvent`.
    pub kind: MessageType,
    /// The request it answers (meaningless for watch events).
    pub request_id: u32,
    /// The transaction in its header.
    pub transaction_id: u32,
    /// The payload, decoded for its type.
    pub body: ReplyBody,
}

/// A message's payload, decoded for its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// `OK`: a write, mkdir, rm, watch, unwatch or transaction end succeeded.
    Acknowledged,
    /// A read's value.
    Value(String),
    /// A directory's children, in the daemon's order.
    Directory(Vec<String>),
    /// A transaction started.
    TransactionStarted(TransactionId),
    /// The request failed.
    Error(XenstoreError),
    /// A watch fired.
    WatchEvent(WatchEvent),
}

/// Decodes a message header; the only check is that the payload length is
/// within `XENSTORE_PAYLOAD_MAX` (beyond it, the stream cannot be framed).
pub fn parse_header(bytes: &[u8]) -> Result<MessageHeader, XenstoreError> {
    let bytes: &[u8; MessageHeader::SIZE] =
        bytes.try_into().map_err(|_| XenstoreError::Protocol("message header is not 16 bytes"))?;
    let header = MessageHeader::from_bytes(bytes);
    if header.len as usize > XENSTORE_PAYLOAD_MAX {
        return Err(XenstoreError::Protocol("payload longer than XENSTORE_PAYLOAD_MAX"));
    }
    Ok(header)
}

/// Checks and decodes one message from the daemon: `header` is its 16
/// header bytes, `payload` the bytes that followed.
pub fn parse_reply(header: &[u8], payload: &[u8]) -> Result<Reply, XenstoreError> {
    let header = parse_header(header)?;
    if header.len as usize != payload.len() {
        return Err(XenstoreError::Protocol("payload length differs from the header's"));
    }
    let kind = MessageType::from_wire(header.kind).ok_or(XenstoreError::Protocol("unknown message type"))?;
    let body = parse_body(kind, payload)?;
    Ok(Reply { kind, request_id: header.request_id, transaction_id: header.transaction_id, body })
}

fn parse_body(kind: MessageType, payload: &[u8]) -> Result<ReplyBody, XenstoreError> {
    use MessageType::*;
    match kind {
        Read => Ok(ReplyBody::Value(text(payload)?)),
        Directory => parse_strings(payload).map(ReplyBody::Directory),
        TransactionStart => parse_transaction_id(payload).map(ReplyBody::TransactionStarted),
        Write | Mkdir | Rm | Watch | Unwatch | TransactionEnd => parse_acknowledgement(payload),
        Error => Ok(ReplyBody::Error(XenstoreError::from_wire_name(terminated(payload)?))),
        WatchEvent => parse_watch_event(payload).map(ReplyBody::WatchEvent),
        _ => Err(XenstoreError::Protocol("a message type xenecho never requests")),
    }
}

/// `bytes` as an owned string, if it is UTF-8.
fn text(bytes: &[u8]) -> Result<String, XenstoreError> {
    core::str::from_utf8(bytes).map(String::from).map_err(|_| XenstoreError::Protocol("string is not UTF-8"))
}

/// `payload` without its final NUL, which must be there.
fn terminated(payload: &[u8]) -> Result<&[u8], XenstoreError> {
    match payload.split_last() {
        Some((0, string)) => Ok(string),
        _ => Err(XenstoreError::Protocol("string is not NUL-terminated")),
    }
}

/// A sequence of non-empty NUL-terminated strings (empty for none).
fn parse_strings(payload: &[u8]) -> Result<Vec<String>, XenstoreError> {
    if payload.is_empty() {
        return Ok(Vec::new());
    }
    terminated(payload)?.split(|&byte| byte == 0).map(non_empty_text).collect()
}

fn non_empty_text(bytes: &[u8]) -> Result<String, XenstoreError> {
    if bytes.is_empty() {
        return Err(XenstoreError::Protocol("empty string in a list"));
    }
    text(bytes)
}

fn parse_acknowledgement(payload: &[u8]) -> Result<ReplyBody, XenstoreError> {
    match payload {
        b"OK\0" | b"OK" => Ok(ReplyBody::Acknowledged),
        _ => Err(XenstoreError::Protocol("acknowledgement is not OK")),
    }
}

fn parse_transaction_id(payload: &[u8]) -> Result<TransactionId, XenstoreError> {
    let digits = terminated(payload)?;
    let invalid = XenstoreError::Protocol("transaction id is not a non-zero decimal u32");
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(invalid);
    }
    let number =
        digits.iter().try_fold(0u32, |number, digit| number.checked_mul(10)?.checked_add(u32::from(digit - b'0')));
    number.and_then(TransactionId::new).ok_or(invalid)
}

fn parse_watch_event(payload: &[u8]) -> Result<WatchEvent, XenstoreError> {
    let strings = parse_strings(payload)?;
    match <[String; 2]>::try_from(strings) {
        Ok([path, token]) => Ok(WatchEvent { path, token }),
        Err(_) => Err(XenstoreError::Protocol("watch event is not a path and a token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn header(kind: u32, request_id: u32, len: usize) -> [u8; 16] {
        MessageHeader { kind, request_id, transaction_id: 0, len: len as u32 }.to_bytes()
    }

    fn parse(kind: MessageType, payload: &[u8]) -> Result<ReplyBody, XenstoreError> {
        parse_reply(&header(kind as u32, 7, payload.len()), payload).map(|reply| reply.body)
    }

    fn protocol_error(result: Result<ReplyBody, XenstoreError>) -> bool {
        matches!(result, Err(XenstoreError::Protocol(_)))
    }

    #[test]
    fn encodes_each_request_as_the_protocol_says() {
        let encode = |request: Request<'_>| encode_request(&request, 9, None).unwrap()[16..].to_vec();
        assert_eq!(encode(Request::Read { path: "a/b" }), b"a/b\0");
        assert_eq!(encode(Request::Write { path: "a", value: b"v\0w" }), b"a\0v\0w");
        assert_eq!(encode(Request::Watch { path: "a", token: "t" }), b"a\0t\0");
        assert_eq!(encode(Request::TransactionStart), b"\0");
        assert_eq!(encode(Request::TransactionEnd { commit: true }), b"T\0");
        assert_eq!(encode(Request::TransactionEnd { commit: false }), b"F\0");
    }

    #[test]
    fn encodes_the_header_with_the_transaction() {
        let transaction = TransactionId::new(42);
        let message = encode_request(&Request::Mkdir { path: "d" }, 3, transaction).unwrap();
        let header = MessageHeader::from_bytes(message[..16].try_into().unwrap());
        let expected = MessageHeader { kind: MessageType::Mkdir as u32, request_id: 3, transaction_id: 42, len: 2 };
        assert_eq!(header, expected);
    }

    #[test]
    fn refuses_requests_that_cannot_be_framed() {
        let huge = vec![b'x'; XENSTORE_PAYLOAD_MAX];
        assert_eq!(encode_request(&Request::Read { path: "a\0b" }, 1, None), Err(XenstoreError::InvalidInput));
        assert_eq!(
            encode_request(&Request::Watch { path: "a", token: "\0" }, 1, None),
            Err(XenstoreError::InvalidInput)
        );
        assert_eq!(encode_request(&Request::Write { path: "a", value: &huge }, 1, None), Err(XenstoreError::TooBig));
        assert!(encode_request(&Request::Write { path: "a", value: &huge[2..] }, 1, None).is_ok());
    }

    #[test]
    fn decodes_each_reply_type() {
        assert_eq!(parse(MessageType::Read, b"value"), Ok(ReplyBody::Value("value".into())));
        assert_eq!(parse(MessageType::Read, b""), Ok(ReplyBody::Value("".into())));
        assert_eq!(parse(MessageType::Directory, b"a\0bc\0"), Ok(ReplyBody::Directory(vec!["a".into(), "bc".into()])));
        assert_eq!(parse(MessageType::Directory, b""), Ok(ReplyBody::Directory(vec![])));
        assert_eq!(parse(MessageType::Write, b"OK\0"), Ok(ReplyBody::Acknowledged));
        assert_eq!(parse(MessageType::TransactionStart, b"17\0"), Ok(ReplyBody::TransactionStarted(TransactionId(17))));
        assert_eq!(parse(MessageType::Error, b"EACCES\0"), Ok(ReplyBody::Error(XenstoreError::PermissionDenied)));
        let event = WatchEvent { path: "p/q".into(), token: "tok".into() };
        assert_eq!(parse(MessageType::WatchEvent, b"p/q\0tok\0"), Ok(ReplyBody::WatchEvent(event)));
    }

    #[test]
    fn keeps_the_header_fields() {
        let mut bytes = header(MessageType::Rm as u32, 5, 3);
        bytes[8] = 9;
        let reply = parse_reply(&bytes, b"OK\0").unwrap();
        assert_eq!((reply.kind, reply.request_id, reply.transaction_id), (MessageType::Rm, 5, 9));
    }

    #[test]
    fn rejects_broken_headers() {
        let too_long = header(MessageType::Read as u32, 1, XENSTORE_PAYLOAD_MAX + 1);
        assert!(matches!(parse_reply(&too_long, &[0; XENSTORE_PAYLOAD_MAX + 1]), Err(XenstoreError::Protocol(_))));
        assert!(matches!(parse_reply(&header(2, 1, 4), b"abc"), Err(XenstoreError::Protocol(_))));
        assert!(matches!(parse_reply(&header(99, 1, 3), b"OK\0"), Err(XenstoreError::Protocol(_))));
        assert!(matches!(parse_reply(&header(2, 1, 0)[..15], b""), Err(XenstoreError::Protocol(_))));
        assert!(protocol_error(parse(MessageType::GetPerms, b"OK\0")));
    }

    #[test]
    fn rejects_malformed_payloads() {
        assert!(protocol_error(parse(MessageType::Read, b"\xff\xfe")));
        assert!(protocol_error(parse(MessageType::Directory, b"a\0b")));
        assert!(protocol_error(parse(MessageType::Directory, b"a\0\0b\0")));
        assert!(protocol_error(parse(MessageType::Directory, b"\xc3\0")));
        assert!(protocol_error(parse(MessageType::Mkdir, b"NO\0")));
        assert!(protocol_error(parse(MessageType::Error, b"ENOE")));
        assert!(protocol_error(parse(MessageType::Error, b"")));
        assert!(protocol_error(parse(MessageType::WatchEvent, b"path\0")));
        assert!(protocol_error(parse(MessageType::WatchEvent, b"a\0b\0c\0")));
    }

    #[test]
    fn rejects_bad_transaction_ids() {
        for payload in [&b"0\0"[..], b"\0", b"12", b"-1\0", b"1x\0", b"4294967296\0", b" 1\0"] {
            assert!(protocol_error(parse(MessageType::TransactionStart, payload)), "{payload:?}");
        }
        assert!(parse(MessageType::TransactionStart, b"4294967295\0").is_ok());
    }

    #[test]
    fn unknown_error_names_are_values() {
        assert_eq!(
            parse(MessageType::Error, b"EQUOTA\0"),
            Ok(ReplyBody::Error(XenstoreError::Unknown("EQUOTA".into())))
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let length = (next() % 24) as usize;
            let payload: Vec<u8> =
                (0..length).map(|_| [0, b'1', b'O', b'K', 0xff, b'a'][next() as usize % 6]).collect();
            let kind = (next() % 26) as u32;
            let _ = parse_reply(&header(kind, 1, length), &payload);
        }
    }
}
