//! The back end's half of Xen's shared request/response rings
//! (`io/ring.h`), over a `&SharedRing` in ordinary memory.
//!
//! `xen_pv::ring` has the shared page and the front end's half, which the
//! guest uses; [`BackRing`] is its counterpart for host tests of the front
//! ring. Like the front ring it keeps its private indices outside the
//! shared page, copies every slot out before looking at it, and follows
//! `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY` / `RING_FINAL_CHECK_FOR_REQUESTS`
//! for notification hold-off. (The simulated netback reaches its rings
//! through grant mappings instead, with the same rules:
//! `netback::ring`.)
//!
//! Contract: the front end is untrusted. A request producer that claims
//! more requests than can exist is reported as
//! [`RingError::ProducerOverflow`]; nothing here panics or reads outside the
//! page because of it.

use core::sync::atomic::{Ordering, fence};
use xen_pv::ring::{RING_SLOTS, RingError, SharedRing, event_crossed};

/// The back end's half of a ring (for the simulated backends).
pub struct BackRing<'a, const WORDS: usize> {
    shared: &'a SharedRing<WORDS>,
    rsp_prod_pvt: u32,
    req_cons: u32,
}

impl<'a, const WORDS: usize> BackRing<'a, WORDS> {
    /// Attaches to a ring the front end initialised.
    pub fn new(shared: &'a SharedRing<WORDS>) -> Self {
        Self { shared, rsp_prod_pvt: 0, req_cons: 0 }
    }

    /// Requests published and not yet taken, checked against the ring size.
    pub fn unconsumed(&self) -> Result<u32, RingError> {
        let producer = self.shared.req_prod.load(Ordering::Acquire);
        let available = producer.wrapping_sub(self.req_cons);
        let room = RING_SLOTS - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        if available > room {
            return Err(RingError::ProducerOverflow { producer, consumer: self.req_cons });
        }
        Ok(available)
    }

    /// A copy of the next request, if one is published.
    pub fn take(&mut self) -> Result<Option<[u32; WORDS]>, RingError> {
        if self.unconsumed()? == 0 {
            return Ok(None);
        }
        let words = self.shared.read_slot(self.req_cons);
        self.req_cons = self.req_cons.wrapping_add(1);
        Ok(Some(words))
    }

    /// Writes the next response (into the oldest answered request's slot).
    pub fn push(&mut self, response: [u32; WORDS]) {
        self.shared.write_slot(self.rsp_prod_pvt, response);
        self.rsp_prod_pvt = self.rsp_prod_pvt.wrapping_add(1);
    }

    /// Writes a raw producer index, for hostile-backend tests.
    pub fn force_response_producer(&mut self, producer: u32) {
        self.rsp_prod_pvt = producer;
        self.shared.rsp_prod.store(producer, Ordering::Release);
    }

    /// Publishes pushed responses; returns whether the front end asked to
    /// be notified of them.
    pub fn publish(&mut self) -> bool {
        let old = self.shared.rsp_prod.load(Ordering::Relaxed);
        let new = self.rsp_prod_pvt;
        fence(Ordering::Release);
        self.shared.rsp_prod.store(new, Ordering::Release);
        fence(Ordering::SeqCst);
        event_crossed(old, new, self.shared.rsp_event.load(Ordering::Relaxed))
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`.
    pub fn final_check(&self) -> Result<bool, RingError> {
        if self.unconsumed()? > 0 {
            return Ok(true);
        }
        self.shared.req_event.store(self.req_cons.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::SeqCst);
        Ok(self.unconsumed()? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;
    use xen_pv::ring::FrontRing;

    #[test]
    fn a_frontend_claiming_too_many_requests_is_caught() {
        let shared = Box::new(SharedRing::<2>::new_zeroed());
        let _front = FrontRing::new(&*shared);
        let back = BackRing::new(&shared);
        shared.req_prod.store(RING_SLOTS + 1, Ordering::Release);
        assert!(back.unconsumed().is_err());
    }

    #[test]
    fn indices_wrap_around_u32() {
        // The test plays the front end on the shared page (a front ring
        // cannot be made to start near the end of the index space).
        let shared = Box::new(SharedRing::<2>::new_zeroed());
        let start = u32::MAX - 1;
        shared.initialise();
        shared.req_prod.store(start, Ordering::Relaxed);
        shared.rsp_prod.store(start, Ordering::Relaxed);
        let mut back = BackRing { shared: &shared, rsp_prod_pvt: start, req_cons: start };
        for id in 0..4 {
            shared.write_slot(start.wrapping_add(id), [id, 0]);
        }
        shared.req_prod.store(start.wrapping_add(4), Ordering::Release);
        for id in 0..4 {
            assert_eq!(back.take(), Ok(Some([id, 0])));
            back.push([id, 1]);
        }
        assert_eq!(back.take(), Ok(None));
        assert!(back.publish(), "rsp_event is 1, which the producer crossed going from 2^32 - 2 to 2");
        assert_eq!(shared.rsp_prod.load(Ordering::Relaxed), 2);
        for id in 0..4 {
            assert_eq!(shared.read_slot(start.wrapping_add(id)), [id, 1]);
        }
    }
}
