//! `smoltcp::phy::Device` over the frontend.
//!
//! An rx token owns the received page (a `DmaHandle<FromDevice>` taken off
//! the ring) and lends its bytes to smoltcp through the handle's
//! sync-for-CPU accessor: no copy between the ring and the stack. The page
//! returns to the rx pool when the token is consumed (or dropped) and is
//! posted again on the next refill. A tx token borrows the link only inside
//! `consume`, where smoltcp writes straight into a pooled tx page (synced for
//! the device by handle) that then goes on the ring.
//!
//! smoltcp calls the tx token from inside the rx token's closure (to answer
//! a packet); neither token holds a borrow of the link while the other runs.

use crate::control::Netfront;
use crate::link::{LinkError, ReceivedFrame};
use alloc::vec::Vec;
use dma::{DmaHandle, FromDevice, PageSource, Translation};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use xen_pv::hypervisor::Hypervisor;

/// Ethernet header bytes added to the MTU for smoltcp's frame size.
const ETHERNET_HEADER: usize = 14;

/// A received frame lent to smoltcp.
pub struct NetfrontRxToken<'n, 'a, H: Hypervisor, T: Translation, S: PageSource> {
    netfront: &'n Netfront<'a, H, T, S>,
    frame: Option<ReceivedFrame>,
}

/// Room for one frame on the tx ring.
pub struct NetfrontTxToken<'n, 'a, H: Hypervisor, T: Translation, S: PageSource> {
    netfront: &'n Netfront<'a, H, T, S>,
}

impl<'a, H: Hypervisor, T: Translation, S: PageSource> Netfront<'a, H, T, S> {
    /// The next received frame, if the link is up and one is complete.
    /// A link the backend broke is not read again: `poll_control` tears
    /// it down.
    fn next_frame(&self) -> Option<ReceivedFrame> {
        if !self.carries_frames() {
            return None;
        }
        let mut link = self.link.borrow_mut();
        let result = link.as_mut()?.receive(&self.dma, &mut self.counters.borrow_mut());
        self.keep(result).flatten()
    }

    /// Records a data-path failure for `poll_control` to act on.
    fn keep<V>(&self, result: Result<V, LinkError>) -> Option<V> {
        result.map_err(|error| self.broken.set(Some(error))).ok()
    }

    fn return_page(&self, handle: DmaHandle<FromDevice>) {
        match self.link.borrow_mut().as_mut() {
            Some(link) => link.return_rx_page(handle),
            // The link closed while smoltcp held the page: hand it to the
            // DMA layer, which frees it once its grant is revoked.
            None => {
                if let dma::Released::Now(buffer) = self.dma.unmap_or_defer(handle) {
                    buffer.free(self.dma.source());
                }
            }
        }
    }

    fn can_transmit(&self) -> bool {
        let max_frame = self.max_frame();
        // A frame over a page is mapped for itself: in bounce mode that
        // needs idle bounce pages, promised here before smoltcp fills it.
        let room =
            max_frame <= dma::PAGE_SIZE || self.dma.has_room_for::<dma::ToDevice>(max_frame.div_ceil(dma::PAGE_SIZE));
        room && self.carries_frames() && self.link.borrow().as_ref().is_some_and(|link| link.can_transmit(max_frame))
    }

    /// Whether frames may cross the link: both ends Connected and no
    /// violation waiting for `poll_control` to tear the link down.
    fn carries_frames(&self) -> bool {
        self.is_up() && !self.broken_link() && !self.quiesced.get()
    }

    fn max_frame(&self) -> usize {
        usize::from(self.device().map_or(1500, |device| device.mtu)) + ETHERNET_HEADER
    }

    /// The data path's housekeeping, to run after the stack has polled:
    /// takes tx completions, posts rx pages, re-arms notifications. Returns
    /// whether more responses are already waiting (poll again at once).
    /// Does nothing on a link the backend broke, nor on one being closed
    /// (the backend was told to let go: its rings are no longer read, or
    /// the same violation would be found, and reported, on every turn).
    ///
    /// First it puts a segment held for a large segment on the ring
    /// ([`Self::flush_transmit`]): the event loop runs this at the end of
    /// every turn, so nothing the stack sent waits past the turn.
    pub fn poll_rings(&self) -> bool {
        if self.broken_link() || self.port().is_none() {
            return false;
        }
        let mut link_slot = self.link.borrow_mut();
        let Some(link) = link_slot.as_mut() else { return false };
        let mut counters = self.counters.borrow_mut();
        let mut unmap = Vec::new();
        let quiesced = self.quiesced.get();
        let tended = link
            .flush_tx(self.events, &self.dma, &mut counters)
            .and_then(|()| link.complete_tx(&mut unmap, &mut counters))
            .and_then(|()| if quiesced { Ok(()) } else { link.refill_rx(self.events, &mut counters) })
            .and_then(|()| if quiesced { Ok(false) } else { link.rx_final_check() });
        let more = self.keep(tended).unwrap_or(false);
        drop(counters);
        drop(link_slot);
        self.release_mapped(unmap);
        more
    }

    /// Puts the segments held for a large segment, if any, on the ring and
    /// publishes them (notifying the backend if it asked). Cheap when none
    /// are held. Does nothing on a link the backend broke or one being
    /// closed: the held pages go back to the pool with the link.
    pub fn flush_transmit(&self) {
        if self.broken_link() || self.port().is_none() {
            return;
        }
        let mut link = self.link.borrow_mut();
        let Some(link) = link.as_mut() else { return };
        let flushed = link.flush_tx(self.events, &self.dma, &mut self.counters.borrow_mut());
        self.keep(flushed);
    }

    /// Takes the backend's notification, if one is pending; true if there was.
    pub fn take_notification(&self) -> bool {
        let Some(port) = self.port() else { return false };
        let taken = self.events.take_pending(port);
        if taken {
            self.counters.borrow_mut().notifications_received += 1;
        }
        taken
    }

    /// Gives back the buffers mapped for single packets whose responses
    /// came, and retries the ones the DMA layer deferred before.
    fn release_mapped(&self, handles: Vec<DmaHandle<dma::ToDevice>>) {
        for handle in handles {
            if let dma::Released::Now(buffer) = self.dma.unmap_or_defer(handle) {
                buffer.free(self.dma.source());
            }
        }
        // A multi-page buffer comes back with its first slot's response,
        // while the backend may still map the pages of the later slots: the
        // DMA layer then defers its release. Retried here, on every turn,
        // and not only on the next control event, which a live link may
        // never see (the buffer and its grants would be held for good).
        if self.dma.deferred_len() > 0 {
            for buffer in self.dma.reclaim() {
                buffer.free(self.dma.source());
            }
        }
    }
}

impl<H: Hypervisor, T: Translation, S: PageSource> Device for Netfront<'_, H, T, S> {
    type RxToken<'n>
        = NetfrontRxToken<'n, 'n, H, T, S>
    where
        Self: 'n;
    type TxToken<'n>
        = NetfrontTxToken<'n, 'n, H, T, S>
    where
        Self: 'n;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let frame = self.next_frame()?;
        let this: &Self = self;
        Some((
            NetfrontRxToken { netfront: shorten(this), frame: Some(frame) },
            NetfrontTxToken { netfront: shorten(this) },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let this: &Self = self;
        this.can_transmit().then(|| NetfrontTxToken { netfront: shorten(this) })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = self.max_frame();
        capabilities.max_burst_size = Some(64);
        capabilities
    }
}

/// The device's lifetimes, unified for the tokens.
fn shorten<'n, 'a: 'n, H: Hypervisor, T: Translation, S: PageSource>(
    netfront: &'n Netfront<'a, H, T, S>,
) -> &'n Netfront<'n, H, T, S> {
    netfront
}

impl<H: Hypervisor, T: Translation, S: PageSource> RxToken for NetfrontRxToken<'_, '_, H, T, S> {
    fn consume<R, F>(mut self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        match self.frame.take() {
            Some(ReceivedFrame::InPlace { mut handle, offset, length }) => {
                let result = handle.read_range(&self.netfront.dma, offset..offset + length, f);
                self.netfront.return_page(handle);
                result
            }
            Some(ReceivedFrame::Copied(frame)) => f(&frame),
            None => f(&[]),
        }
    }
}

impl<H: Hypervisor, T: Translation, S: PageSource> Drop for NetfrontRxToken<'_, '_, H, T, S> {
    fn drop(&mut self) {
        if let Some(ReceivedFrame::InPlace { handle, .. }) = self.frame.take() {
            self.netfront.return_page(handle);
        }
    }
}

impl<H: Hypervisor, T: Translation, S: PageSource> TxToken for NetfrontTxToken<'_, '_, H, T, S> {
    fn consume<R, F>(self, length: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let netfront = self.netfront;
        let mut link = netfront.link.borrow_mut();
        let built = match link.as_mut() {
            Some(link) => {
                let (built, notified) =
                    link.transmit(netfront.events, &netfront.dma, length, &mut netfront.counters.borrow_mut(), f);
                netfront.keep(notified);
                built
            }
            None => Err(f),
        };
        drop(link);
        match built {
            // Built into a ring buffer (and queued, or dropped and counted).
            Ok(result) => result,
            // No buffer to build it in (link gone or out of buffers): let
            // smoltcp build it into scratch memory; it is dropped (counted).
            Err(f) => {
                let mut scratch = alloc::vec![0u8; length];
                f(&mut scratch)
            }
        }
    }
}
