//! Event channels, 2-level ABI, without upcalls.
//!
//! xenecho never takes the event-channel interrupt (see
//! `docs/event-loop.md`): the upcall stays masked and the guest sleeps in
//! `SCHEDOP_poll` on the ports it cares about. Xen still sets the pending
//! bits in the shared info page; [`EventChannels`] reads and clears them.
//!
//! Contract: a port's pending bit is cleared only by the code that handles
//! that port ([`EventChannels::take_pending`]), before it looks at the state
//! the event announces, so an event that arrives during handling is never
//! lost (it sets the bit again and the next poll returns at once).

use crate::abi::DomainId;
use crate::abi::event_channel::Port;
use crate::abi::shared_info::{EVENT_CHANNEL_2L_PORTS, SharedInfoPage};
use crate::hypervisor::{Hypervisor, XenError};
use core::sync::atomic::{AtomicU64, Ordering};

/// Event-channel counters, for metrics.
#[derive(Debug, Default)]
pub struct EventCounters {
    /// Notifications sent.
    pub sent: AtomicU64,
    /// Pending events taken.
    pub received: AtomicU64,
    /// Polls (sleeps) made.
    pub polls: AtomicU64,
}

/// The guest's event channels.
pub struct EventChannels<'a, H: Hypervisor> {
    hypervisor: &'a H,
    shared: &'a dyn SharedInfoPage,
    counters: EventCounters,
}

fn split(port: Port) -> (usize, u64) {
    (port as usize / 64, 1u64 << (port % 64))
}

impl<'a, H: Hypervisor> EventChannels<'a, H> {
    /// Event channels over the mapped shared info page. Masks the upcall of
    /// vCPU 0, so Xen never interrupts the guest for an event.
    pub fn new(hypervisor: &'a H, shared: &'a dyn SharedInfoPage) -> Self {
        shared.upcall_mask().store(1, Ordering::SeqCst);
        Self { hypervisor, shared, counters: EventCounters::default() }
    }

    /// After a resume in a new domain, whose shared info page is new: masks
    /// the upcall of vCPU 0 again. Every port of the old domain is gone;
    /// their owners bind new ones.
    pub fn resumed(&self) {
        self.shared.upcall_mask().store(1, Ordering::SeqCst);
    }

    /// What `port` is bound to, as Xen says.
    pub fn status(&self, port: Port) -> Result<crate::hypervisor::PortStatus, XenError> {
        self.hypervisor.event_channel_status(port)
    }

    /// The hypervisor behind these channels.
    pub fn hypervisor(&self) -> &'a H {
        self.hypervisor
    }

    /// Counters so far.
    pub fn counters(&self) -> &EventCounters {
        &self.counters
    }

    /// A new port that `remote` can bind to (for a frontend's rings).
    pub fn alloc_unbound(&self, remote: DomainId) -> Result<Port, XenError> {
        self.hypervisor.event_channel_alloc_unbound(remote)
    }

    /// A new port for virtual IRQ `virq` on vCPU 0.
    pub fn bind_virq(&self, virq: u32) -> Result<Port, XenError> {
        self.hypervisor.event_channel_bind_virq(virq, 0)
    }

    /// Closes `port` and forgets any event pending on it.
    pub fn close(&self, port: Port) -> Result<(), XenError> {
        self.check(port)?;
        self.hypervisor.event_channel_close(port)?;
        self.take_pending(port);
        Ok(())
    }

    /// Notifies the other end of `port`.
    pub fn notify(&self, port: Port) -> Result<(), XenError> {
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.hypervisor.event_channel_send(port)
    }

    /// Sets `port`'s mask bit. Polling still wakes on a masked port; the
    /// mask only keeps [`Self::pending_ports`] from reporting it.
    pub fn mask(&self, port: Port) -> Result<(), XenError> {
        let (word, bit) = self.check(port)?;
        self.shared.mask_words()[word].fetch_or(bit, Ordering::SeqCst);
        Ok(())
    }

    /// Clears `port`'s mask bit (no hypercall: the upcall is never used).
    pub fn unmask(&self, port: Port) -> Result<(), XenError> {
        let (word, bit) = self.check(port)?;
        self.shared.mask_words()[word].fetch_and(!bit, Ordering::SeqCst);
        Ok(())
    }

    /// Clears `port`'s pending bit; returns whether it was set.
    pub fn take_pending(&self, port: Port) -> bool {
        let Ok((word, bit)) = self.check(port) else { return false };
        let was = self.shared.pending_words()[word].fetch_and(!bit, Ordering::SeqCst) & bit != 0;
        if was {
            self.counters.received.fetch_add(1, Ordering::Relaxed);
        }
        was
    }

    /// Every pending, unmasked port, lowest first, without clearing them
    /// (the scan of the 2-level bitmaps, guided by the selector word).
    pub fn pending_ports(&self) -> impl Iterator<Item = Port> + '_ {
        // The selector and upcall flag only matter to an upcall handler;
        // clear them so they do not grow stale. All 64 words are scanned
        // (64 loads), which also catches bits raised after a selector was
        // consumed by an earlier scan.
        self.shared.pending_selector().store(0, Ordering::SeqCst);
        self.shared.upcall_pending().store(0, Ordering::SeqCst);
        (0..self.shared.pending_words().len()).flat_map(move |word| {
            let pending = self.shared.pending_words()[word].load(Ordering::SeqCst);
            let live = pending & !self.shared.mask_words()[word].load(Ordering::SeqCst);
            BitIter(live).map(move |bit| (word * 64 + bit) as Port)
        })
    }

    /// Sleeps until one of `ports` is pending or system time reaches
    /// `deadline`. Pending bits are not cleared: the handlers take them.
    pub fn wait(&self, ports: &[Port], deadline: Option<u64>) -> Result<(), XenError> {
        if ports.iter().any(|&port| self.is_pending(port)) {
            return Ok(());
        }
        self.counters.polls.fetch_add(1, Ordering::Relaxed);
        self.hypervisor.poll(ports, deadline)
    }

    /// Whether `port`'s pending bit is set.
    pub fn is_pending(&self, port: Port) -> bool {
        let Ok((word, bit)) = self.check(port) else { return false };
        self.shared.pending_words()[word].load(Ordering::SeqCst) & bit != 0
    }

    fn check(&self, port: Port) -> Result<(usize, u64), XenError> {
        if port as usize >= EVENT_CHANNEL_2L_PORTS { Err(XenError::EINVAL) } else { Ok(split(port)) }
    }
}

/// The set bits of a word, lowest first.
struct BitIter(u64);

impl Iterator for BitIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(bit)
    }
}
