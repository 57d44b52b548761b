//! Xen's shared request/response rings (`io/ring.h`): the shared page and
//! the front end's half.
//!
//! One 4 KiB page holds a 64-byte header (the two producer indices and the
//! two event indices) and a power-of-two array of slots; a slot holds a
//! request until the other side overwrites it with the response. Indices
//! run freely (wrapping `u32`) and are masked when used.
//!
//! [`FrontRing`] is the guest's half (netfront pushes requests and takes
//! responses). It keeps its private indices outside the shared page, copies
//! every slot out before looking at it (the other side may rewrite it at
//! any moment), and follows `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` /
//! `RING_FINAL_CHECK_FOR_RESPONSES` for notification hold-off. The back
//! end's half, which only the host simulation plays, is
//! `xen_sim::ring::BackRing` (crate `xen-sim`), built on the same
//! [`SharedRing::read_slot`], [`SharedRing::write_slot`] and
//! [`event_crossed`].
//!
//! Contract: the other side is untrusted. A producer index that claims more
//! messages than can exist is reported as [`RingError::ProducerOverflow`],
//! and the ring must then be torn down; nothing here panics or reads
//! outside the page because of it.

use core::ops::Deref;
use core::sync::atomic::{AtomicU32, Ordering, fence};

/// Slots in a one-page ring with 8- or 12-byte slots (netif's tx and rx).
pub const RING_SLOTS: u32 = 256;

/// The shared page: header and `RING_SLOTS` slots of `WORDS` 32-bit words.
#[repr(C)]
pub struct SharedRing<const WORDS: usize> {
    /// Requests published by the front end.
    pub req_prod: AtomicU32,
    /// The back end wants a notification when `req_prod` passes this.
    pub req_event: AtomicU32,
    /// Responses published by the back end.
    pub rsp_prod: AtomicU32,
    /// The front end wants a notification when `rsp_prod` passes this.
    pub rsp_event: AtomicU32,
    /// `pvt` and `__pad`: 48 bytes.
    pub pad: [AtomicU32; 12],
    /// The slots.
    pub slots: [[AtomicU32; WORDS]; RING_SLOTS as usize],
}

crate::assert_abi_offset!(SharedRing<3>, slots, 64);
crate::assert_abi_offset!(SharedRing<2>, slots, 64);
const _: () = assert!(size_of::<SharedRing<3>>() <= 4096 && size_of::<SharedRing<2>>() <= 4096);
const _: () = assert!(slots_in_page(3) == RING_SLOTS && slots_in_page(2) == RING_SLOTS);

/// ring.h's `__RING_SIZE` for a 4 KiB page: the slots that fit after the
/// 64-byte header, rounded down to a power of two (`__RD32`).
pub const fn slots_in_page(words: usize) -> u32 {
    let fit = (4096 - 64) / (words * 4);
    1 << (usize::BITS - 1 - fit.leading_zeros())
}

impl<const WORDS: usize> SharedRing<WORDS> {
    /// A zeroed ring in ordinary memory, for host tests and simulations.
    pub fn new_zeroed() -> Self {
        Self {
            req_prod: AtomicU32::new(0),
            req_event: AtomicU32::new(0),
            rsp_prod: AtomicU32::new(0),
            rsp_event: AtomicU32::new(0),
            pad: [const { AtomicU32::new(0) }; 12],
            slots: [const { [const { AtomicU32::new(0) }; WORDS] }; RING_SLOTS as usize],
        }
    }

    /// `SHARED_RING_INIT`: empty, events wanted from the first message on.
    pub fn initialise(&self) {
        self.req_prod.store(0, Ordering::Relaxed);
        self.rsp_prod.store(0, Ordering::Relaxed);
        self.req_event.store(1, Ordering::Relaxed);
        self.rsp_event.store(1, Ordering::Relaxed);
        self.pad.iter().for_each(|word| word.store(0, Ordering::Relaxed));
        fence(Ordering::Release);
    }

    /// A copy of the slot of free-running index `index` (masked to the
    /// ring). Either side copies a slot out before looking at it: the other
    /// may rewrite it at any moment.
    pub fn read_slot(&self, index: u32) -> [u32; WORDS] {
        let slot = &self.slots[(index % RING_SLOTS) as usize];
        core::array::from_fn(|word| slot[word].load(Ordering::Relaxed))
    }

    /// Writes the slot of free-running index `index` (masked to the ring);
    /// not visible to the other side until its producer index is published.
    pub fn write_slot(&self, index: u32, words: [u32; WORDS]) {
        let slot = &self.slots[(index % RING_SLOTS) as usize];
        slot.iter().zip(words).for_each(|(cell, word)| cell.store(word, Ordering::Relaxed));
    }
}

/// What the other side did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The other side's producer index claims more messages than the ring
    /// can hold (or, on the front, more responses than requests posted).
    ProducerOverflow {
        /// The producer index read.
        producer: u32,
        /// Our consumer index.
        consumer: u32,
    },
}

/// No slot is free for another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFull;

/// `(new - event) < (new - old)`: was `event` crossed by publishing
/// `old..new`? (The `RING_PUSH_*_AND_CHECK_NOTIFY` rule, for either side.)
pub fn event_crossed(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// The front end's half of a ring. It owns (or borrows) the shared page
/// through `P`: a `&SharedRing` in tests, the driver's granted page in use.
pub struct FrontRing<P: Deref<Target = SharedRing<WORDS>>, const WORDS: usize> {
    shared: P,
    req_prod_pvt: u32,
    rsp_cons: u32,
}

impl<P: Deref<Target = SharedRing<WORDS>>, const WORDS: usize> FrontRing<P, WORDS> {
    /// Initialises the shared page (the front end owns that) and attaches.
    pub fn new(shared: P) -> Self {
        shared.initialise();
        Self { shared, req_prod_pvt: 0, rsp_cons: 0 }
    }

    /// Gives the page back (after the back end has let go of it).
    pub fn into_inner(self) -> P {
        self.shared
    }

    /// The page's owner (to read its grant, say).
    pub fn page(&self) -> &P {
        &self.shared
    }

    /// Requests posted and not yet answered.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Slots free for new requests.
    pub fn free_slots(&self) -> u32 {
        RING_SLOTS - self.outstanding()
    }

    /// The ring index the next pushed request gets.
    pub fn next_request_index(&self) -> u32 {
        self.req_prod_pvt
    }

    /// The ring index of the next response to take.
    pub fn next_response_index(&self) -> u32 {
        self.rsp_cons
    }

    /// Writes a request into the next slot (not yet visible to the back end).
    pub fn push(&mut self, request: [u32; WORDS]) -> Result<(), RingFull> {
        if self.free_slots() == 0 {
            return Err(RingFull);
        }
        self.shared.write_slot(self.req_prod_pvt, request);
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes pushed requests; returns whether the back end asked to be
    /// notified of them.
    pub fn publish(&mut self) -> bool {
        let old = self.shared.req_prod.load(Ordering::Relaxed);
        let new = self.req_prod_pvt;
        fence(Ordering::Release);
        self.shared.req_prod.store(new, Ordering::Release);
        fence(Ordering::SeqCst);
        event_crossed(old, new, self.shared.req_event.load(Ordering::Relaxed))
    }

    /// Responses published and not yet taken, checked against what was
    /// posted.
    pub fn unconsumed(&self) -> Result<u32, RingError> {
        let producer = self.shared.rsp_prod.load(Ordering::Acquire);
        let available = producer.wrapping_sub(self.rsp_cons);
        if available > self.outstanding() {
            return Err(RingError::ProducerOverflow { producer, consumer: self.rsp_cons });
        }
        Ok(available)
    }

    /// A copy of the next response, if one is published.
    pub fn take(&mut self) -> Result<Option<[u32; WORDS]>, RingError> {
        if self.unconsumed()? == 0 {
            return Ok(None);
        }
        let words = self.shared.read_slot(self.rsp_cons);
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        Ok(Some(words))
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: asks for a notification on the next
    /// response, then looks again (a response may have raced the request).
    pub fn final_check(&self) -> Result<bool, RingError> {
        if self.unconsumed()? > 0 {
            return Ok(true);
        }
        self.shared.rsp_event.store(self.rsp_cons.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        Ok(self.unconsumed()? > 0)
    }
}

#[cfg(test)]
mod tests {
    //! The front half alone; with the back half of `xen-sim` as the other
    //! side: tests/ring.rs.

    use super::*;
    use std::boxed::Box;

    #[test]
    fn the_ring_fills_at_256() {
        let shared = Box::new(SharedRing::<3>::new_zeroed());
        let mut front = FrontRing::new(&*shared);
        for id in 0..RING_SLOTS {
            front.push([id, 0, 0]).unwrap();
        }
        assert_eq!(front.push([0, 0, 0]), Err(RingFull));
        assert_eq!(front.free_slots(), 0);
    }

    #[test]
    fn indices_wrap_around_u32() {
        // The test plays the back end on the shared page.
        let shared = Box::new(SharedRing::<2>::new_zeroed());
        let start = u32::MAX - 1;
        let mut front = FrontRing { shared: &*shared, req_prod_pvt: start, rsp_cons: start };
        shared.initialise();
        shared.req_prod.store(start, Ordering::Relaxed);
        shared.rsp_prod.store(start, Ordering::Relaxed);
        for id in 0..4 {
            front.push([id, 0]).unwrap();
        }
        assert!(front.publish(), "req_event is 1, which the producer crossed going from 2^32 - 2 to 2");
        assert_eq!(shared.req_prod.load(Ordering::Relaxed), 2);
        for id in 0..4 {
            let index = start.wrapping_add(id);
            assert_eq!(shared.read_slot(index), [id, 0]);
            shared.write_slot(index, [id, 1]);
        }
        shared.rsp_prod.store(2, Ordering::Release);
        for id in 0..4 {
            assert_eq!(front.take(), Ok(Some([id, 1])));
        }
        assert_eq!(front.take(), Ok(None));
    }
}
