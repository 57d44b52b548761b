//! The two byte rings of the xenstore page.
//!
//! Each ring is 1024 bytes with free-running `u32` producer and consumer
//! indices, masked to find the byte (`MASK_XENSTORE_IDX`). The guest
//! produces requests and consumes responses; the daemon does the opposite,
//! so the same [`ByteRing`] serves both sides (the simulated daemon uses it
//! too).
//!
//! Contract: the producer writes the bytes, then a release fence, then the
//! new producer index; the consumer reads the producer index with acquire,
//! copies the bytes, and releases the new consumer index only after. Indices
//! written by the other side are untrusted: one that claims more than 1024
//! bytes in flight (a consumer running ahead of its producer, or a producer
//! too far ahead) is a protocol error, reported before any byte is touched.
//!
//! Never: block, overwrite bytes not yet consumed, or read bytes not yet
//! published.

use super::error::XenstoreError;
use crate::abi::xenstore::{XENSTORE_RING_SIZE, XenstoreInterface};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU32, Ordering, fence};

/// One direction of the xenstore page: its bytes and its two indices.
pub struct ByteRing<'a> {
    bytes: &'a [AtomicU8; XENSTORE_RING_SIZE],
    consumer: &'a AtomicU32,
    producer: &'a AtomicU32,
}

impl<'a> ByteRing<'a> {
    /// The request ring (guest to daemon).
    pub fn requests(page: &'a XenstoreInterface) -> Self {
        Self { bytes: &page.request, consumer: &page.req_cons, producer: &page.req_prod }
    }

    /// The response ring (daemon to guest).
    pub fn responses(page: &'a XenstoreInterface) -> Self {
        Self { bytes: &page.response, consumer: &page.rsp_cons, producer: &page.rsp_prod }
    }

    /// Copies as much of `bytes` into the ring as fits and publishes it;
    /// returns how many were written.
    pub fn produce(&self, bytes: &[u8]) -> Result<usize, XenstoreError> {
        let consumer = self.consumer.load(Ordering::Acquire);
        let producer = self.producer.load(Ordering::Relaxed);
        let space = XENSTORE_RING_SIZE - in_flight(producer, consumer)?;
        let count = space.min(bytes.len());
        for (offset, &byte) in bytes[..count].iter().enumerate() {
            self.bytes[masked(producer, offset)].store(byte, Ordering::Relaxed);
        }
        // The bytes must be visible before the index that announces them.
        fence(Ordering::Release);
        self.producer.store(producer.wrapping_add(count as u32), Ordering::Release);
        Ok(count)
    }

    /// Appends every published byte to `into` and releases the space;
    /// returns how many were read.
    pub fn consume(&self, into: &mut Vec<u8>) -> Result<usize, XenstoreError> {
        let producer = self.producer.load(Ordering::Acquire);
        let consumer = self.consumer.load(Ordering::Relaxed);
        let count = in_flight(producer, consumer)?;
        into.extend((0..count).map(|offset| self.bytes[masked(consumer, offset)].load(Ordering::Relaxed)));
        // The bytes must be read before the producer may overwrite them.
        fence(Ordering::Release);
        self.consumer.store(consumer.wrapping_add(count as u32), Ordering::Release);
        Ok(count)
    }

    /// Drops every published byte unread (the consumer catches up with
    /// the producer).
    pub fn discard(&self) {
        let producer = self.producer.load(Ordering::Acquire);
        self.consumer.store(producer, Ordering::Release);
    }

    /// Bytes published and not yet consumed.
    pub fn in_flight(&self) -> Result<usize, XenstoreError> {
        in_flight(self.producer.load(Ordering::Acquire), self.consumer.load(Ordering::Acquire))
    }
}

/// Bytes between the two indices; more than the ring holds means one side
/// lied about its index.
fn in_flight(producer: u32, consumer: u32) -> Result<usize, XenstoreError> {
    let count = producer.wrapping_sub(consumer) as usize;
    if count > XENSTORE_RING_SIZE {
        return Err(XenstoreError::Protocol("ring indices more than a ring apart"));
    }
    Ok(count)
}

/// The slot of the byte `offset` bytes after free-running index `index`.
fn masked(index: u32, offset: usize) -> usize {
    index.wrapping_add(offset as u32) as usize & (XENSTORE_RING_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn what_is_produced_is_consumed_in_order_until_full() {
        let page = XenstoreInterface::new_zeroed();
        let (requests, daemon_view) = (ByteRing::requests(&page), ByteRing::requests(&page));
        assert_eq!(requests.produce(b"hello").unwrap(), 5);
        let big = vec![7u8; 2000];
        assert_eq!(requests.produce(&big).unwrap(), XENSTORE_RING_SIZE - 5);
        assert_eq!(requests.produce(b"more").unwrap(), 0);
        assert_eq!(requests.in_flight().unwrap(), XENSTORE_RING_SIZE);
        let mut received = Vec::new();
        assert_eq!(daemon_view.consume(&mut received).unwrap(), XENSTORE_RING_SIZE);
        assert_eq!(&received[..5], b"hello");
        assert_eq!(daemon_view.consume(&mut received).unwrap(), 0);
        assert_eq!(requests.produce(b"more").unwrap(), 4);
    }

    #[test]
    fn wraps_around_the_ring_and_the_index() {
        let page = XenstoreInterface::new_zeroed();
        let start = u32::MAX - 2;
        page.rsp_prod.store(start, Ordering::Relaxed);
        page.rsp_cons.store(start, Ordering::Relaxed);
        let responses = ByteRing::responses(&page);
        assert_eq!(responses.produce(b"abcdef").unwrap(), 6);
        assert_eq!(page.rsp_prod.load(Ordering::Relaxed), start.wrapping_add(6));
        assert_eq!(page.response[0].load(Ordering::Relaxed), b'd');
        let mut received = Vec::new();
        responses.consume(&mut received).unwrap();
        assert_eq!(received, b"abcdef");
        assert_eq!(page.rsp_cons.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_consumer_running_ahead_is_an_error_that_touches_nothing() {
        let page = XenstoreInterface::new_zeroed();
        page.req_prod.store(10, Ordering::Relaxed);
        page.req_cons.store(20, Ordering::Relaxed);
        assert!(matches!(ByteRing::requests(&page).produce(b"data"), Err(XenstoreError::Protocol(_))));
        assert_eq!(page.req_prod.load(Ordering::Relaxed), 10);
        page.rsp_prod.store(2000, Ordering::Relaxed);
        let mut received = Vec::new();
        assert!(matches!(ByteRing::responses(&page).consume(&mut received), Err(XenstoreError::Protocol(_))));
        assert!(received.is_empty());
        assert_eq!(page.rsp_cons.load(Ordering::Relaxed), 0);
    }
}
