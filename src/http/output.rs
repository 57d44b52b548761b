//! The output queue: response bytes waiting for the caller to take them.
//!
//! One contiguous buffer, allocated once at its full size and never grown.
//! Writers append whole units (a response head, a chunk with its frame) or
//! nothing, so a response is never left half-written when the queue is full;
//! the caller takes bytes from the front at its own pace.
//!
//! Contract: the queue never holds more than its capacity, never reallocates,
//! and consuming more than is pending only consumes what is pending.

use alloc::vec::Vec;

/// Something bytes can be written to: the output queue, or a counter.
pub(crate) trait ByteSink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

/// A sink that only counts, to learn an encoding's length.
#[derive(Default)]
pub(crate) struct ByteCounter {
    /// Bytes put so far.
    pub(crate) count: usize,
}

impl ByteSink for ByteCounter {
    fn put(&mut self, bytes: &[u8]) {
        self.count = self.count.saturating_add(bytes.len());
    }
}

/// Writes `bytes` in lower-case hexadecimal.
pub(crate) fn put_hex(sink: &mut impl ByteSink, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        sink.put(&[DIGITS[usize::from(byte >> 4)], DIGITS[usize::from(byte & 15)]]);
    }
}

/// How [`put_escaped`] writes one byte of text.
pub(crate) enum Escape {
    /// As it is.
    Plain,
    /// As these bytes instead.
    As(&'static [u8]),
    /// As this prefix and the byte's two hexadecimal digits.
    Hex(&'static [u8]),
}

/// Writes `text` with each byte written as `escape` says; runs of plain
/// bytes go out whole. (The JSON and the HTML escape their text this way,
/// each with its own table.)
pub(crate) fn put_escaped(sink: &mut impl ByteSink, text: &[u8], escape: impl Fn(u8) -> Escape) {
    let mut plain_start = 0;
    for (index, &byte) in text.iter().enumerate() {
        let replacement = escape(byte);
        if let Escape::Plain = replacement {
            continue;
        }
        sink.put(&text[plain_start..index]);
        plain_start = index + 1;
        match replacement {
            Escape::As(bytes) => sink.put(bytes),
            Escape::Hex(prefix) => {
                sink.put(prefix);
                put_hex(sink, &[byte]);
            }
            Escape::Plain => {}
        }
    }
    sink.put(&text[plain_start..]);
}

#[cfg(any(test, feature = "fuzzing"))]
impl ByteSink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A bounded first-in first-out byte queue with a contiguous front.
pub(crate) struct OutputQueue {
    bytes: Vec<u8>,
    start: usize,
    capacity: usize,
}

impl OutputQueue {
    /// An empty queue that will hold at most `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> OutputQueue {
        OutputQueue { bytes: Vec::with_capacity(capacity), start: 0, capacity }
    }

    /// The bytes waiting to be taken, oldest first.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// How many bytes are waiting.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Whether nothing is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many more bytes fit.
    pub(crate) fn free(&self) -> usize {
        self.capacity - self.len()
    }

    /// Drops up to `count` bytes from the front; returns how many it dropped.
    pub(crate) fn consume(&mut self, count: usize) -> usize {
        let consumed = count.min(self.len());
        self.start += consumed;
        if self.start == self.bytes.len() {
            self.clear();
        }
        consumed
    }

    /// Drops everything waiting.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }

    /// Runs `write` and keeps what it wrote only if all of it fitted.
    /// Returns whether it did.
    pub(crate) fn write_whole(&mut self, write: impl FnOnce(&mut Appender<'_>)) -> bool {
        self.compact();
        let mark = self.bytes.len();
        let mut appender = Appender { queue: self, overflowed: false };
        write(&mut appender);
        let fitted = !appender.overflowed;
        if !fitted {
            self.bytes.truncate(mark);
        }
        fitted
    }

    /// Moves the pending bytes to the front so all free space is at the end.
    fn compact(&mut self) {
        if self.start > 0 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }
}

/// Appends to an [`OutputQueue`] inside [`OutputQueue::write_whole`].
pub(crate) struct Appender<'queue> {
    queue: &'queue mut OutputQueue,
    overflowed: bool,
}

impl ByteSink for Appender<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let queue = &mut *self.queue;
        if self.overflowed || queue.bytes.len() + bytes.len() > queue.capacity {
            self.overflowed = true;
        } else {
            queue.bytes.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_whole_or_nothing_and_never_grow_the_buffer() {
        let mut queue = OutputQueue::new(8);
        assert!(queue.write_whole(|sink| sink.put(b"abcde")));
        assert!(!queue.write_whole(|sink| {
            sink.put(b"fg");
            sink.put(b"hi");
        }));
        assert_eq!(queue.pending(), b"abcde");
        assert_eq!(queue.consume(3), 3);
        assert!(queue.write_whole(|sink| sink.put(b"fghij")));
        assert_eq!(queue.pending(), b"defghij");
        assert_eq!(queue.free(), 1);
        assert_eq!(queue.consume(100), 7);
        assert!(queue.is_empty());
        assert_eq!(queue.bytes.capacity(), 8);
    }
}
