//! The data path of a connected vif: the two rings, their buffers, and the
//! rules every backend response is checked against.
//!
//! Buffers come from two persistent [`DmaPool`]s (mapped once when the link
//! is made, so a packet costs no grant operation): rx pages posted on the rx
//! ring, tx pages filled by the stack. A frame longer than a page is sent
//! from a buffer mapped for that packet alone, one slot per page.
//!
//! Large transmitted segments ([`crate::tx_merge`]): when the backend takes
//! them, a TCP segment that may open one is held (at most one is open),
//! the segments that continue it are added as one slot each (into their own
//! pages, past their headers), and it goes on the ring as soon as a frame
//! that does not continue it comes, its limits are reached, or the driver
//! flushes ([`Link::flush_tx`]). One segment goes as it was built; more go
//! as one packet: its first slot flagged `NETTXF_extra_info`,
//! `NETTXF_csum_blank` and `NETTXF_data_validated`, then a GSO extra-info
//! slot, then the other segments' slots. netback answers the extra slot
//! with `NETIF_RSP_NULL` right after the first slot's response, which is
//! checked.
//!
//! Contract: every response is checked before it is believed (ids, sizes,
//! producer indices, see [`crate::slots`]); the first violation breaks the
//! link ([`LinkError::Violation`]) and the driver tears it down. A buffer
//! lent to the backend comes back only through its ring response or the
//! teardown, never twice. Never: panic or index out of bounds because of
//! what the backend writes.

use crate::NetfrontCounters;
use crate::checksum;
use crate::slots::{RxTable, TxTable, Violation};
use crate::tx_merge::{MAX_HEADERS, Merge, Segment, TxRules};
use crate::tx_plan::{self, Piece, PlanError};
use alloc::vec::Vec;
use dma::{
    DmaBuffer, DmaDevice, DmaHandle, DmaPool, FromDevice, PageSource, Posted, SharedPage, ToDevice, Translation,
};
use xen_pv::abi::event_channel::Port;
use xen_pv::abi::netif::{
    EXTRA_TYPE_GSO, EXTRA_TYPE_MAX, EXTRA_TYPE_NONE, ExtraInfo, GSO_TYPE_TCPV4, GSO_TYPE_TCPV6, NETIF_RSP_DROPPED,
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_CSUM_BLANK, NETRXF_EXTRA_INFO, NETRXF_MORE_DATA,
    NETTXF_CSUM_BLANK, NETTXF_DATA_VALIDATED, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA, RX_WORDS, RxRequest, RxResponse,
    TX_WORDS, TxRequest, TxResponse,
};
use xen_pv::event_channel::EventChannels;
use xen_pv::hypervisor::Hypervisor;
use xen_pv::ring::{FrontRing, RING_SLOTS, RingError, SharedRing};

/// Bytes in a page, and so in a pooled buffer.
pub const PAGE_SIZE: usize = 4096;
/// Largest frame reassembled from several rx slots: the largest IPv4
/// packet (a 64 KiB segment, netif's `XEN_NETIF_MAX_TX_SIZE` too) and its
/// Ethernet header. A longer one is dropped as [`Malformed::TooLong`]. An
/// IPv6 packet is held to the same 65 535 bytes, its fixed header
/// included: Linux builds segments within its 64 KiB GSO limit, which
/// netback leaves as it is.
pub const MAX_FRAME: usize = 65_535 + 14;
/// Most extra-info slots behind one rx slot: one of each type
/// (`XEN_NETIF_EXTRA_TYPE_MAX` is 6, type 0 being none). A longer chain is
/// a [`Violation::ExtraInfoChainTooLong`].
const MAX_EXTRA_SLOTS: usize = (EXTRA_TYPE_MAX - 1) as usize;
/// Bytes of IPv4 and TCP headers at least: a TCPv4 GSO segment size
/// above 65 535 less these cannot be cut from any IPv4 packet.
const IPV4_TCP_HEADERS: u16 = 20 + 20;
/// The same for TCPv6: the fixed IPv6 header and the TCP header.
const IPV6_TCP_HEADERS: u16 = 40 + 20;

/// What the frontend negotiated about received frames: the rules the
/// backend's extra information is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxRules {
    /// `feature-gso-tcpv4` and `feature-gso-tcpv6` were written as 1: the
    /// backend may send TCP segments over IPv4 and IPv6 larger than the
    /// MTU, with a GSO extra-info slot.
    pub large_segments: bool,
    /// The vif's MTU (a GSO segment size is not held to it: see
    /// [`Malformed::GsoSize`]).
    pub mtu: u16,
}

/// Why a received frame was dropped although the ring was in order: its
/// extra information or its length broke the rules. Counted
/// (`rx_malformed`), the pages reposted, the link kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// An extra-info slot of type 0 (none) or of a type netif does not
    /// define.
    UnknownExtraType(u8),
    /// Two extra-info slots of the same type behind one slot.
    DuplicateExtraType(u8),
    /// `NETRXF_extra_info` on a slot other than a frame's first.
    ExtraInfoNotFirst,
    /// A GSO extra although the frontend did not ask for large segments.
    GsoNotNegotiated,
    /// A GSO segment size of 0, or above 65 535 less the IP and TCP
    /// headers of its type (40 bytes for TCPv4, 60 for TCPv6).
    GsoSize(u16),
    /// A GSO type other than TCPv4 and TCPv6 (the ones advertised).
    GsoType(u8),
    /// A GSO extra of type TCPv4 on a frame that is not a well-formed IPv4
    /// TCP segment (its IP lengths inside the frame): an IPv6 one included.
    GsoNotTcpIpv4,
    /// A GSO extra of type TCPv6 on a frame that is not a well-formed IPv6
    /// TCP segment (its payload length inside the frame, the TCP header
    /// found behind at most [`checksum::MAX_EXTENSION_HEADERS`] hop-by-hop,
    /// routing or destination options headers): an IPv4 one included.
    GsoNotTcpIpv6,
    /// A frame longer than [`MAX_FRAME`].
    TooLong(usize),
}

/// What a frame's extra-info slots said.
#[derive(Debug, Default)]
struct Extras {
    gso: Option<ExtraInfo>,
    problem: Option<Malformed>,
}

/// A frame's slots, taken off the ring.
#[derive(Debug, Default)]
struct Slots {
    /// The backend reported an error on one of them.
    dropped: bool,
    /// The first rule the frame broke, if any.
    problem: Option<Malformed>,
    /// Its GSO extra, if any.
    gso: Option<ExtraInfo>,
}

/// The tx ring's page and indices.
pub type TxRing = FrontRing<SharedPage<SharedRing<TX_WORDS>>, TX_WORDS>;
/// The rx ring's page and indices.
pub type RxRing = FrontRing<SharedPage<SharedRing<RX_WORDS>>, RX_WORDS>;

/// Why the link must be torn down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// The backend broke the protocol.
    Violation(Violation),
    /// An event-channel notification failed.
    Notify,
}

impl From<RingError> for LinkError {
    fn from(_: RingError) -> Self {
        LinkError::Violation(Violation::ProducerOverflow)
    }
}

/// What building a frame to send came to.
enum Filled<R, F> {
    /// Built: what `fill` returned, and the buffer to queue.
    Buffer(R, TxBuffer),
    /// `fill` ran, but its buffer could not be mapped: the frame is lost
    /// (counted as dropped).
    Unmapped(R),
    /// No buffer: `fill`, not run.
    NotRun(F),
}

/// A frame's buffer, built and not yet on the ring.
pub enum TxBuffer {
    /// A page of the tx pool.
    Pooled(DmaHandle<ToDevice>),
    /// A multi-page buffer mapped for one packet.
    Mapped(DmaHandle<ToDevice>),
    /// Pages of the tx pool holding the segments of one large segment, in
    /// order.
    Merged(Vec<DmaHandle<ToDevice>>),
}

impl TxBuffer {
    /// The buffer, handed to the backend.
    fn post(self) -> PostedTx {
        match self {
            TxBuffer::Pooled(handle) => PostedTx::Pooled(handle.post()),
            TxBuffer::Mapped(handle) => PostedTx::Mapped(handle.post()),
            TxBuffer::Merged(handles) => PostedTx::Merged(handles.into_iter().map(DmaHandle::post).collect()),
        }
    }
}

/// A buffer in flight on the tx ring: the backend owns it until its
/// response comes.
pub enum PostedTx {
    /// A page of the tx pool.
    Pooled(Posted<ToDevice>),
    /// A multi-page buffer mapped for one packet.
    Mapped(Posted<ToDevice>),
    /// The pooled pages of one large segment.
    Merged(Vec<Posted<ToDevice>>),
}

impl PostedTx {
    /// The backend is done with it: the CPU's buffer again.
    fn complete(self) -> TxBuffer {
        match self {
            PostedTx::Pooled(posted) => TxBuffer::Pooled(posted.complete()),
            PostedTx::Mapped(posted) => TxBuffer::Mapped(posted.complete()),
            PostedTx::Merged(posted) => TxBuffer::Merged(posted.into_iter().map(Posted::complete).collect()),
        }
    }
}

/// A large segment being built: the stack's segments so far, each in its
/// pooled page, and the piece of each page its slot sends (the first
/// segment's whole frame, the others' payloads).
struct OpenFrame {
    merge: Merge,
    pages: Vec<DmaHandle<ToDevice>>,
    pieces: Vec<Piece>,
}

impl OpenFrame {
    /// A large segment opened by `segment`, built in `handle`, whose
    /// headers are `headers`.
    fn new(handle: DmaHandle<ToDevice>, headers: &[u8], segment: Segment) -> Self {
        let mut open = Self {
            merge: Merge::start(headers, segment),
            pages: Vec::with_capacity(crate::tx_merge::MAX_DATA_SLOTS),
            pieces: Vec::with_capacity(crate::tx_merge::MAX_DATA_SLOTS),
        };
        open.add_page(handle, 0, segment.frame_length());
        open
    }

    /// Adds a segment that continues it, built in `handle`: its slot
    /// sends the payload only.
    fn push(&mut self, handle: DmaHandle<ToDevice>, segment: &Segment) {
        self.merge.append(segment);
        self.add_page(handle, segment.header_length, segment.payload);
    }

    fn add_page(&mut self, handle: DmaHandle<ToDevice>, skip: usize, length: usize) {
        // A pooled page is one segment of one page.
        let (bus_page, offset) = handle.segments().next().map_or((0, 0), |page| (page.bus_page, page.offset));
        self.pieces.push(Piece { bus_page, offset: usize::from(offset) + skip, length });
        self.pages.push(handle);
    }

    /// Ring slots it takes: one as it is, or a slot per segment and the
    /// GSO extra-info slot.
    fn ring_slots(&self) -> usize {
        match self.merge.segments() {
            1 => 1,
            segments => segments + 1,
        }
    }
}

/// What offering a TCP segment to the open large segment came to.
enum Merging {
    /// Held: added to the open one, or opening a new one.
    Held,
    /// Not taken (the open one, if any, is queued): send it as it is.
    Refused(DmaHandle<ToDevice>),
}

/// A received frame, ready to lend to the stack.
pub enum ReceivedFrame {
    /// In its rx page: `length` bytes at `offset`; the page goes back to the
    /// rx pool after the stack has read it.
    InPlace {
        /// The page.
        handle: DmaHandle<FromDevice>,
        /// Where the frame starts.
        offset: usize,
        /// Its length.
        length: usize,
    },
    /// Copied out (reassembled from several slots, or checksum-completed).
    Copied(Vec<u8>),
}

/// The connected data path.
pub struct Link {
    /// The tx ring.
    pub tx_ring: TxRing,
    /// The rx ring.
    pub rx_ring: RxRing,
    /// The event channel shared with the backend.
    pub port: Port,
    tx_table: TxTable<PostedTx>,
    rx_table: RxTable<Posted<FromDevice>>,
    /// Idle tx pages.
    pub tx_pool: DmaPool<ToDevice>,
    /// Idle rx pages, not posted.
    pub rx_pool: DmaPool<FromDevice>,
    rules: RxRules,
    last_malformed: Option<Malformed>,
    /// Which large segments the backend takes from us.
    tx_rules: TxRules,
    /// The large segment being built, if any.
    open: Option<OpenFrame>,
    /// By tx id: the request is a large segment's first, whose response
    /// is followed by its extra-info slot's `NETIF_RSP_NULL`.
    gso_heads: Vec<bool>,
    /// A large segment's first response was taken: the next response must
    /// be its extra-info slot's `NETIF_RSP_NULL`.
    null_due: bool,
    /// Requests were pushed and not yet published.
    unpublished: bool,
}

impl Link {
    /// A link over rings and pools the driver set up.
    pub fn new(
        tx_ring: TxRing,
        rx_ring: RxRing,
        port: Port,
        tx_pool: DmaPool<ToDevice>,
        rx_pool: DmaPool<FromDevice>,
        rules: RxRules,
        tx_rules: TxRules,
    ) -> Self {
        Self {
            tx_ring,
            rx_ring,
            port,
            tx_table: TxTable::new(),
            rx_table: RxTable::new(),
            tx_pool,
            rx_pool,
            rules,
            last_malformed: None,
            tx_rules,
            open: None,
            gso_heads: alloc::vec![false; RING_SLOTS as usize],
            null_due: false,
            unpublished: false,
        }
    }

    /// What the frontend negotiated about received frames.
    pub fn rules(&self) -> RxRules {
        self.rules
    }

    /// Which large segments the backend takes from us.
    pub fn tx_rules(&self) -> TxRules {
        self.tx_rules
    }

    /// The stack's segments held in the open large segment, not yet on the
    /// ring.
    pub fn tx_held(&self) -> usize {
        self.open.as_ref().map_or(0, |open| open.merge.segments())
    }

    /// Why the last malformed frame was dropped, if one was.
    pub fn last_malformed(&self) -> Option<Malformed> {
        self.last_malformed
    }

    /// Posts every idle rx page the ring has room for; notifies the backend
    /// if it asked to be told.
    pub fn refill_rx<H: Hypervisor>(
        &mut self,
        events: &EventChannels<'_, H>,
        counters: &mut NetfrontCounters,
    ) -> Result<(), LinkError> {
        let mut posted = false;
        while self.rx_ring.free_slots() > 0 {
            let Ok(handle) = self.rx_pool.take() else { break };
            let bus_page = handle.dma_addr().bus_page;
            let index = self.rx_ring.next_request_index();
            let id = match self.rx_table.post(index, handle.post()) {
                Ok(id) => id,
                Err(posted) => {
                    // The slot's previous buffer never came back: the ring is
                    // out of step with the table. Keep the page, stop here.
                    let _ = self.rx_pool.put(posted.complete());
                    return Err(LinkError::Violation(Violation::NotOutstanding { id: (index % 256) as u16 }));
                }
            };
            let pushed = self.rx_ring.push(RxRequest { id, gref: bus_page }.encode());
            debug_assert!(pushed.is_ok(), "free_slots() was checked");
            posted = true;
        }
        if posted && self.rx_ring.publish() {
            self.notify(events, counters)?;
        }
        Ok(())
    }

    /// Takes tx completions: returns pooled pages to the pool and puts
    /// per-packet buffers in `unmap`, for the caller to unmap even when a
    /// violation stops the walk (nothing completed may leak).
    pub fn complete_tx(
        &mut self,
        unmap: &mut Vec<DmaHandle<ToDevice>>,
        counters: &mut NetfrontCounters,
    ) -> Result<(), LinkError> {
        loop {
            while let Some(words) = self.tx_ring.take()? {
                let response = TxResponse::decode(words);
                // The extra-info slot's response: its status only (netback
                // leaves the id as the slot held it), right after the large
                // segment's first.
                if core::mem::take(&mut self.null_due) {
                    if response.status != NETIF_RSP_NULL {
                        return Err(LinkError::Violation(Violation::ExtraResponseMissing));
                    }
                    continue;
                }
                match response.status {
                    NETIF_RSP_OKAY => {}
                    NETIF_RSP_ERROR | NETIF_RSP_DROPPED => counters.tx_errors += 1,
                    NETIF_RSP_NULL => return Err(LinkError::Violation(Violation::UnexpectedNullResponse)),
                    status => return Err(LinkError::Violation(Violation::BadStatus { status })),
                }
                let completed = self.tx_table.complete(response.id).map_err(LinkError::Violation)?;
                // The table knew the id, so it is in range.
                if let Some(head) = self.gso_heads.get_mut(usize::from(response.id))
                    && core::mem::take(head)
                {
                    self.null_due = true;
                }
                match completed.map(PostedTx::complete) {
                    Some(TxBuffer::Pooled(handle)) => self.return_tx_page(handle),
                    Some(TxBuffer::Mapped(handle)) => unmap.push(handle),
                    Some(TxBuffer::Merged(handles)) => {
                        handles.into_iter().for_each(|handle| self.return_tx_page(handle))
                    }
                    None => {}
                }
            }
            if !self.tx_ring.final_check()? {
                return Ok(());
            }
        }
    }

    fn return_tx_page(&mut self, handle: DmaHandle<ToDevice>) {
        // A handle from this pool always fits back; if it ever did not, the
        // page is leaked (safely: it stays granted) rather than lost twice.
        let _ = self.tx_pool.put(handle);
    }

    /// Whether a frame of `length` bytes can be queued now (beside the
    /// open large segment, if any, which it may join).
    pub fn can_transmit(&self, length: usize) -> bool {
        let slots = length.div_ceil(PAGE_SIZE).max(1);
        // The open large segment still goes on the ring, and a slot more
        // than it takes now: a segment added to it makes it a large
        // segment, with its extra-info slot.
        let (open_slots, open_ids) =
            self.open.as_ref().map_or((0, 0), |open| (open.ring_slots() + 1, open.pages.len()));
        let ids_and_slots = self.room_for(slots + open_slots, slots + open_ids);
        // Frames up to a page (every frame when `length` is at most one)
        // come from the pool.
        ids_and_slots && self.tx_pool.available() > 0
    }

    /// Whether `slots` ring slots and `ids` request ids are free.
    fn room_for(&self, slots: usize, ids: usize) -> bool {
        self.tx_ring.free_slots() as usize >= slots && self.tx_table.free() >= ids
    }

    /// Queues a frame the stack writes with `fill`, from a pooled page (or
    /// a buffer mapped for frames over a page). Returns what `fill` returned
    /// if it ran, whether the frame was then queued or dropped (counted: no
    /// ring room or request ids, a plan netback would refuse), or `fill`
    /// itself if it did not run (no buffer: dropped, counted). The second
    /// value reports a failed notification (the frame is queued; the link is
    /// broken): `fill`'s result is never lost with it.
    ///
    /// A TCP segment the backend could take as part of a large segment
    /// may be held instead, in the open large segment (see the module
    /// documentation): it goes on the ring with the frame that closes it,
    /// or with [`Self::flush_tx`].
    pub fn transmit<H: Hypervisor, T: Translation, S: PageSource, R, F: FnOnce(&mut [u8]) -> R>(
        &mut self,
        events: &EventChannels<'_, H>,
        dma: &DmaDevice<T, S>,
        length: usize,
        counters: &mut NetfrontCounters,
        fill: F,
    ) -> (Result<R, F>, Result<(), LinkError>) {
        let mut headers = [0u8; MAX_HEADERS];
        let merging = self.tx_rules.any();
        let capture = merging.then_some(&mut headers);
        let (result, buffer) = match Self::fill_buffer(&mut self.tx_pool, dma, length, capture, fill) {
            Filled::Buffer(result, buffer) => (result, buffer),
            Filled::Unmapped(result) => {
                counters.tx_dropped += 1;
                return (Ok(result), Ok(()));
            }
            Filled::NotRun(fill) => {
                counters.tx_dropped += 1;
                return (Err(fill), Ok(()));
            }
        };
        let segment = match &buffer {
            TxBuffer::Pooled(_) if merging => Segment::parse(&headers[..length.min(MAX_HEADERS)], length)
                .filter(|segment| self.tx_rules.allows(segment.version)),
            _ => None,
        };
        let buffer = match (segment, buffer) {
            (Some(segment), TxBuffer::Pooled(handle)) => {
                match self.merge_segment(handle, &headers, segment, dma, counters) {
                    Merging::Held => return (Ok(result), self.publish(events, counters)),
                    Merging::Refused(handle) => TxBuffer::Pooled(handle),
                }
            }
            (_, buffer) => {
                self.queue_open(dma, counters);
                buffer
            }
        };
        self.queue_plain(buffer, length, dma, counters);
        (Ok(result), self.publish(events, counters))
    }

    /// Offers a TCP segment of a version the backend takes large segments
    /// of: added to the open large segment if it continues it (and the
    /// ring has room for the result), else the open one is queued and the
    /// segment opens a new one if it may, or is given back to go alone.
    fn merge_segment<T: Translation, S: PageSource>(
        &mut self,
        handle: DmaHandle<ToDevice>,
        headers: &[u8],
        segment: Segment,
        dma: &DmaDevice<T, S>,
        counters: &mut NetfrontCounters,
    ) -> Merging {
        let headers = &headers[..segment.header_length.min(headers.len())];
        let continues = self.open.as_ref().is_some_and(|open| {
            let segments = open.merge.segments() + 1;
            // Its data slots and the extra-info slot; an id per data slot.
            self.room_for(segments + 1, segments) && open.merge.continues(headers, &segment)
        });
        if continues && let Some(open) = self.open.as_mut() {
            open.push(handle, &segment);
            if !open.merge.growing() {
                self.queue_open(dma, counters);
            }
            return Merging::Held;
        }
        self.queue_open(dma, counters);
        // Room for it alone: it may yet go as it is.
        if segment.may_open() && self.room_for(1, 1) {
            self.open = Some(OpenFrame::new(handle, headers, segment));
            return Merging::Held;
        }
        Merging::Refused(handle)
    }

    /// Puts the open large segment, if any, on the ring (not yet
    /// published): a single segment as it was built, several as one large
    /// segment.
    fn queue_open<T: Translation, S: PageSource>(&mut self, dma: &DmaDevice<T, S>, counters: &mut NetfrontCounters) {
        let Some(OpenFrame { merge, mut pages, pieces }) = self.open.take() else { return };
        if pages.len() == 1
            && let Some(handle) = pages.pop()
        {
            self.queue_plain(TxBuffer::Pooled(handle), merge.length(), dma, counters);
            return;
        }
        let data_slots = pages.len();
        if !self.room_for(data_slots + 1, data_slots) {
            // Not reached: the room was checked as each segment joined, and
            // nothing else goes on the ring while one is open.
            counters.tx_dropped += data_slots as u64;
            self.discard_tx(TxBuffer::Merged(pages), dma);
            return;
        }
        // The large segment's headers, written over the first segment's
        // in its page (and synced for the backend).
        if let Some(first) = pages.first_mut() {
            first.write_range(dma, 0..merge.header_length(), |header| merge.patch(header));
        }
        let ids = match self.tx_table.insert_frame(TxBuffer::Merged(pages).post(), data_slots) {
            Ok(ids) => ids,
            Err(posted) => {
                counters.tx_dropped += data_slots as u64;
                self.discard_tx(posted.complete(), dma);
                return;
            }
        };
        let [extra_low, extra_high] = merge.gso_extra().encode();
        for (index, (piece, &id)) in pieces.iter().zip(&ids).enumerate() {
            let (flags, size) = match index {
                0 => (NETTXF_CSUM_BLANK | NETTXF_DATA_VALIDATED | NETTXF_EXTRA_INFO | NETTXF_MORE_DATA, merge.length()),
                _ if index + 1 < data_slots => (NETTXF_MORE_DATA, piece.length),
                _ => (0, piece.length),
            };
            let request = TxRequest { gref: piece.bus_page, offset: piece.offset as u16, flags, id, size: size as u16 };
            let pushed = self.tx_ring.push(request.encode());
            debug_assert!(pushed.is_ok(), "ring room was checked");
            if index == 0 {
                let pushed = self.tx_ring.push([extra_low, extra_high, 0]);
                debug_assert!(pushed.is_ok(), "ring room was checked");
            }
        }
        if let Some(head) = ids.first().and_then(|&id| self.gso_heads.get_mut(usize::from(id))) {
            *head = true;
        }
        self.unpublished = true;
        counters.tx_frames += data_slots as u64;
        counters.tx_bytes += merge.stack_bytes() as u64;
        counters.tx_large_segments += 1;
        counters.tx_segments_merged += data_slots as u64;
    }

    /// Plans and queues one frame as it was built (not yet published), or
    /// drops it (counted) when netback would refuse its plan or the ring
    /// or the ids have no room.
    fn queue_plain<T: Translation, S: PageSource>(
        &mut self,
        buffer: TxBuffer,
        length: usize,
        dma: &DmaDevice<T, S>,
        counters: &mut NetfrontCounters,
    ) {
        let pieces: Vec<Piece> = match &buffer {
            TxBuffer::Pooled(handle) | TxBuffer::Mapped(handle) => handle
                .segments()
                .map(|segment| Piece {
                    bus_page: segment.bus_page,
                    offset: usize::from(segment.offset),
                    length: usize::from(segment.length),
                })
                .collect(),
            // Large segments are queued by `queue_open`.
            TxBuffer::Merged(_) => Vec::new(),
        };
        let slots = match tx_plan::plan(pieces, length) {
            Ok(slots) => slots,
            Err(error) => {
                counters.tx_plan_errors += u64::from(error != PlanError::TooShort);
                self.drop_tx(buffer, dma, counters);
                return;
            }
        };
        // The caller may hold a token from the receive path, which promises
        // nothing about room: check here, and drop when the ring is full.
        if (self.tx_ring.free_slots() as usize) < slots.len() {
            self.drop_tx(buffer, dma, counters);
            return;
        }
        if let Err(buffer) = self.queue_slots(slots.as_slice(), buffer) {
            self.drop_tx(buffer, dma, counters);
            return;
        }
        self.unpublished = true;
        counters.tx_frames += 1;
        counters.tx_bytes += length as u64;
    }

    /// Puts the open large segment, if any, on the ring and publishes what
    /// was queued, notifying the backend if it asked. Run before the driver
    /// waits: a segment is held at most until then.
    pub fn flush_tx<H: Hypervisor, T: Translation, S: PageSource>(
        &mut self,
        events: &EventChannels<'_, H>,
        dma: &DmaDevice<T, S>,
        counters: &mut NetfrontCounters,
    ) -> Result<(), LinkError> {
        self.queue_open(dma, counters);
        self.publish(events, counters)
    }

    /// Publishes the requests queued since the last time, notifying the
    /// backend if it asked.
    fn publish<H: Hypervisor>(
        &mut self,
        events: &EventChannels<'_, H>,
        counters: &mut NetfrontCounters,
    ) -> Result<(), LinkError> {
        if core::mem::take(&mut self.unpublished) && self.tx_ring.publish() {
            return self.notify(events, counters);
        }
        Ok(())
    }

    fn drop_tx<T: Translation, S: PageSource>(
        &mut self,
        buffer: TxBuffer,
        dma: &DmaDevice<T, S>,
        counters: &mut NetfrontCounters,
    ) {
        counters.tx_dropped += 1;
        self.discard_tx(buffer, dma);
    }

    /// Builds the frame in a pooled page or a buffer of its own; gives
    /// `fill` back, not run, when there is neither. A buffer of its own is
    /// filled before it is mapped, so that mapping copies it once (in
    /// bounce mode) and nothing is copied twice.
    /// A frame in a pooled page has its first bytes (up to
    /// [`MAX_HEADERS`]) copied to `headers`, if given, for
    /// [`crate::tx_merge`] to read.
    fn fill_buffer<T: Translation, S: PageSource, R, F: FnOnce(&mut [u8]) -> R>(
        pool: &mut DmaPool<ToDevice>,
        dma: &DmaDevice<T, S>,
        length: usize,
        headers: Option<&mut [u8; MAX_HEADERS]>,
        fill: F,
    ) -> Filled<R, F> {
        if length == 0 {
            return Filled::NotRun(fill);
        }
        if length <= PAGE_SIZE {
            let Ok(mut handle) = pool.take() else { return Filled::NotRun(fill) };
            let result = handle.write_range(dma, 0..length, |bytes| {
                let result = fill(bytes);
                if let Some(headers) = headers {
                    let count = bytes.len().min(MAX_HEADERS);
                    headers[..count].copy_from_slice(&bytes[..count]);
                }
                result
            });
            return Filled::Buffer(result, TxBuffer::Pooled(handle));
        }
        if !dma.has_room_for::<ToDevice>(length.div_ceil(PAGE_SIZE)) {
            return Filled::NotRun(fill);
        }
        let Ok(mut buffer) = DmaBuffer::allocate(dma.source(), length) else { return Filled::NotRun(fill) };
        let result = fill(buffer.as_bytes_mut());
        match dma.map(buffer, ToDevice) {
            Ok(handle) => Filled::Buffer(result, TxBuffer::Mapped(handle)),
            Err(error) => {
                error.buffer.free(dma.source());
                Filled::Unmapped(result)
            }
        }
    }

    /// Puts a planned frame on the ring, or gives its buffer back when
    /// there are not enough free request ids (nothing is queued then). The
    /// caller checked that the ring has room for every slot.
    fn queue_slots(&mut self, slots: &[tx_plan::TxSlotPlan], buffer: TxBuffer) -> Result<(), TxBuffer> {
        let ids = self.tx_table.insert_frame(buffer.post(), slots.len()).map_err(PostedTx::complete)?;
        for (slot, id) in slots.iter().zip(ids) {
            let request =
                TxRequest { gref: slot.bus_page, offset: slot.offset, flags: slot.flags, id, size: slot.size };
            let pushed = self.tx_ring.push(request.encode());
            debug_assert!(pushed.is_ok(), "ring room was checked");
        }
        Ok(())
    }

    fn discard_tx<T: Translation, S: PageSource>(&mut self, buffer: TxBuffer, dma: &DmaDevice<T, S>) {
        match buffer {
            TxBuffer::Pooled(handle) => self.return_tx_page(handle),
            TxBuffer::Merged(handles) => handles.into_iter().for_each(|handle| self.return_tx_page(handle)),
            TxBuffer::Mapped(handle) => {
                if let dma::Released::Now(buffer) = dma.unmap_or_defer(handle) {
                    buffer.free(dma.source());
                }
            }
        }
    }

    /// The next received frame, if a complete one is on the ring.
    pub fn receive<T: Translation, S: PageSource>(
        &mut self,
        dma: &DmaDevice<T, S>,
        counters: &mut NetfrontCounters,
    ) -> Result<Option<ReceivedFrame>, LinkError> {
        loop {
            let Some(first) = self.next_rx_response()? else { return Ok(None) };
            if let Some(frame) = self.assemble(first, dma, counters)? {
                return Ok(Some(frame));
            }
        }
    }

    fn next_rx_response(&mut self) -> Result<Option<(u32, RxResponse)>, LinkError> {
        let index = self.rx_ring.next_response_index();
        Ok(self.rx_ring.take()?.map(|words| (index, RxResponse::decode(words))))
    }

    /// Collects the slots of one frame starting at `first`; `None` if the
    /// frame was dropped (error status, or malformed: see [`Malformed`]),
    /// with every page back in the pool. On a violation too every page
    /// taken off the ring goes back to the pool: a hostile backend must not
    /// make the pages leak (a pool with a page missing can never be closed,
    /// and its memory is lost).
    fn assemble<T: Translation, S: PageSource>(
        &mut self,
        first: (u32, RxResponse),
        dma: &DmaDevice<T, S>,
        counters: &mut NetfrontCounters,
    ) -> Result<Option<ReceivedFrame>, LinkError> {
        let mut pieces: Vec<(DmaHandle<FromDevice>, usize, usize)> = Vec::new();
        let mut slots = match self.collect_slots(first, &mut pieces) {
            Ok(slots) => slots,
            Err(error) => {
                self.return_rx_pages(pieces);
                return Err(error);
            }
        };
        if slots.dropped || pieces.is_empty() {
            counters.rx_dropped += 1;
            self.return_rx_pages(pieces);
            return Ok(None);
        }
        let total: usize = pieces.iter().map(|(_, _, length)| length).sum();
        if total > MAX_FRAME {
            slots.problem = slots.problem.or(Some(Malformed::TooLong(total)));
        }
        if let Some(problem) = slots.problem.or_else(|| slots.gso.and_then(|gso| check_gso(self.rules, &gso))) {
            return Ok(self.drop_malformed(problem, pieces, counters));
        }
        let blank_checksum = first.1.flags & NETRXF_CSUM_BLANK != 0;
        let gso_type = slots.gso.map(|gso| gso.gso_type);
        Ok(self.frame_from(pieces, total, blank_checksum, gso_type, dma, counters))
    }

    /// Counts and drops a frame that broke the rules; its pages go back.
    fn drop_malformed(
        &mut self,
        problem: Malformed,
        pieces: Vec<(DmaHandle<FromDevice>, usize, usize)>,
        counters: &mut NetfrontCounters,
    ) -> Option<ReceivedFrame> {
        log::debug!("netfront: dropping a received frame: {problem:?}");
        counters.rx_malformed += 1;
        self.last_malformed = Some(problem);
        self.return_rx_pages(pieces);
        None
    }

    /// Takes one frame's slots off the ring into `pieces` (the pages of slots
    /// with data), with the extra-info slots behind its first slot. Pages of
    /// error slots go straight back to the pool; on a violation the caller
    /// returns `pieces`.
    fn collect_slots(
        &mut self,
        (mut index, mut slot): (u32, RxResponse),
        pieces: &mut Vec<(DmaHandle<FromDevice>, usize, usize)>,
    ) -> Result<Slots, LinkError> {
        let mut slots = Slots::default();
        let mut taken = 0;
        loop {
            let handle = self.rx_table.complete(index, Some(slot.id)).map_err(LinkError::Violation)?.complete();
            taken += 1;
            match check_rx_status(&slot) {
                Ok(length) => pieces.push((handle, usize::from(slot.offset), length)),
                Err(Some(violation)) => {
                    self.return_rx_page(handle);
                    return Err(LinkError::Violation(violation));
                }
                Err(None) => {
                    slots.dropped = true;
                    self.return_rx_page(handle);
                }
            }
            if slot.flags & NETRXF_EXTRA_INFO != 0 {
                let extras = self.read_extra_info()?;
                let misplaced = (taken > 1).then_some(Malformed::ExtraInfoNotFirst);
                slots.problem = slots.problem.or(misplaced).or(extras.problem);
                slots.gso = slots.gso.or(extras.gso);
            }
            if slot.flags & NETRXF_MORE_DATA == 0 {
                return Ok(slots);
            }
            if taken >= xen_pv::abi::netif::LEGACY_SLOTS_MAX {
                return Err(LinkError::Violation(Violation::FrameTooLong));
            }
            (index, slot) = self.next_rx_response()?.ok_or(LinkError::Violation(Violation::FrameTooLong))?;
        }
    }

    /// Reads the extra-info slots behind a slot flagged `NETRXF_extra_info`:
    /// one, and another while the last one's `XEN_NETIF_EXTRA_FLAG_MORE` is
    /// set (as Linux's netfront reads them), at most one of each extra
    /// type. Each took a posted buffer, which goes back to the pool. A
    /// chain the ring does not hold (the producer stops inside it) or one
    /// longer than there are types is a violation: the frame's end cannot
    /// be found. A type unknown or seen twice makes the frame malformed;
    /// the chain is still followed to its end, so the ring stays in step.
    fn read_extra_info(&mut self) -> Result<Extras, LinkError> {
        let mut extras = Extras::default();
        let mut seen = 0u8;
        for _ in 0..MAX_EXTRA_SLOTS {
            let index = self.rx_ring.next_response_index();
            let Some(words) = self.rx_ring.take()? else {
                return Err(LinkError::Violation(Violation::FrameTooLong));
            };
            let handle = self.rx_table.complete(index, None).map_err(LinkError::Violation)?.complete();
            self.return_rx_page(handle);
            let extra = ExtraInfo::decode(words);
            let problem = if extra.kind == EXTRA_TYPE_NONE || extra.kind >= EXTRA_TYPE_MAX {
                Some(Malformed::UnknownExtraType(extra.kind))
            } else if seen & (1 << extra.kind) != 0 {
                Some(Malformed::DuplicateExtraType(extra.kind))
            } else {
                seen |= 1 << extra.kind;
                if extra.kind == EXTRA_TYPE_GSO {
                    extras.gso = Some(extra);
                }
                None
            };
            extras.problem = extras.problem.or(problem);
            if !extra.more() {
                return Ok(extras);
            }
        }
        Err(LinkError::Violation(Violation::ExtraInfoChainTooLong))
    }

    /// The frame for the stack: in place when it is one slot the CPU need
    /// not change, else copied out (several slots, a checksum to complete,
    /// a large segment to check). `gso_type` is the GSO extra's type, for
    /// a large segment (one [`check_gso`] passed). `None` when the
    /// copy has no memory (the frame is dropped, counted) or a large
    /// segment is not the TCP segment its GSO type says.
    fn frame_from<T: Translation, S: PageSource>(
        &mut self,
        mut pieces: Vec<(DmaHandle<FromDevice>, usize, usize)>,
        total: usize,
        blank_checksum: bool,
        gso_type: Option<u8>,
        dma: &DmaDevice<T, S>,
        counters: &mut NetfrontCounters,
    ) -> Option<ReceivedFrame> {
        let large_segment = gso_type.is_some();
        if pieces.len() == 1 && !blank_checksum && !large_segment {
            counters.rx_frames += 1;
            counters.rx_bytes += total as u64;
            let (handle, offset, length) = pieces.remove(0);
            return Some(ReceivedFrame::InPlace { handle, offset, length });
        }
        let mut frame = Vec::new();
        if frame.try_reserve_exact(total).is_err() {
            // Out of heap for the copy (a small guest and a large segment):
            // backpressure, not a crash.
            counters.rx_dropped += 1;
            self.return_rx_pages(pieces);
            return None;
        }
        // Only each piece's bytes are synced for the CPU (a bounce backend's
        // copy is the frame's length, not whole pages).
        for (handle, offset, length) in &mut pieces {
            handle.read_range(dma, *offset..*offset + *length, |bytes| frame.extend_from_slice(bytes));
        }
        if let Some(problem) = gso_type.and_then(|gso_type| gso_frame_problem(&frame, gso_type)) {
            return self.drop_malformed(problem, pieces, counters);
        }
        self.return_rx_pages(pieces);
        counters.rx_frames += 1;
        counters.rx_bytes += total as u64;
        counters.rx_large_segments += u64::from(large_segment);
        if blank_checksum {
            counters.rx_checksums_completed += 1;
            if checksum::complete(&mut frame) == checksum::Completion::Unsupported {
                counters.rx_checksums_unsupported += 1;
            }
        }
        Some(ReceivedFrame::Copied(frame))
    }

    /// Gives a page the stack has read back to the rx pool.
    pub fn return_rx_page(&mut self, handle: DmaHandle<FromDevice>) {
        let _ = self.rx_pool.put(handle);
    }

    fn return_rx_pages(&mut self, pieces: Vec<(DmaHandle<FromDevice>, usize, usize)>) {
        for (handle, _, _) in pieces {
            self.return_rx_page(handle);
        }
    }

    /// Re-arms rx notifications; true if responses arrived meanwhile.
    pub fn rx_final_check(&self) -> Result<bool, LinkError> {
        Ok(self.rx_ring.final_check()?)
    }

    fn notify<H: Hypervisor>(
        &self,
        events: &EventChannels<'_, H>,
        counters: &mut NetfrontCounters,
    ) -> Result<(), LinkError> {
        counters.notifications_sent += 1;
        events.notify(self.port).map_err(|_| LinkError::Notify)
    }

    /// Frames (their first slots) on the tx ring without a response yet.
    pub fn tx_outstanding(&self) -> usize {
        self.tx_table.outstanding()
    }

    /// Takes every buffer back from the tables (after the backend closed):
    /// pooled pages to their pools, per-packet buffers to the caller.
    pub fn reclaim_all(&mut self) -> Vec<DmaHandle<ToDevice>> {
        for posted in self.rx_table.drain().collect::<Vec<_>>() {
            let _ = self.rx_pool.put(posted.complete());
        }
        // A large segment never queued: its pages are the CPU's.
        if let Some(open) = self.open.take() {
            open.pages.into_iter().for_each(|handle| self.return_tx_page(handle));
        }
        self.gso_heads.fill(false);
        self.null_due = false;
        let mut mapped = Vec::new();
        for posted in self.tx_table.drain() {
            match posted.complete() {
                TxBuffer::Pooled(handle) => self.return_tx_page(handle),
                TxBuffer::Mapped(handle) => mapped.push(handle),
                TxBuffer::Merged(handles) => handles.into_iter().for_each(|handle| self.return_tx_page(handle)),
            }
        }
        mapped
    }
}

/// The rule a GSO extra breaks under `rules`, if any (its frame's bytes
/// are checked once they are copied out: [`gso_frame_problem`]).
fn check_gso(rules: RxRules, gso: &ExtraInfo) -> Option<Malformed> {
    if !rules.large_segments {
        return Some(Malformed::GsoNotNegotiated);
    }
    let headers = match gso.gso_type {
        GSO_TYPE_TCPV4 => IPV4_TCP_HEADERS,
        GSO_TYPE_TCPV6 => IPV6_TCP_HEADERS,
        other => return Some(Malformed::GsoType(other)),
    };
    if gso.gso_size == 0 || gso.gso_size > u16::MAX - headers {
        return Some(Malformed::GsoSize(gso.gso_size));
    }
    None
}

/// What is wrong with a large segment's bytes for its GSO type, if
/// anything: a TCPv4 extra promises an IPv4 TCP segment ([`is_ipv4_tcp`]),
/// a TCPv6 one an IPv6 TCP segment ([`is_ipv6_tcp`]). A mismatch (either
/// type on the other version's frame) is malformed.
fn gso_frame_problem(frame: &[u8], gso_type: u8) -> Option<Malformed> {
    match gso_type {
        GSO_TYPE_TCPV4 if is_ipv4_tcp(frame) => None,
        GSO_TYPE_TCPV4 => Some(Malformed::GsoNotTcpIpv4),
        GSO_TYPE_TCPV6 if is_ipv6_tcp(frame) => None,
        GSO_TYPE_TCPV6 => Some(Malformed::GsoNotTcpIpv6),
        // `check_gso` lets no other type through.
        other => Some(Malformed::GsoType(other)),
    }
}

/// Whether `frame` is an Ethernet II frame carrying an IPv6 TCP segment
/// whose payload length lies inside the frame, its TCP header (20 bytes at
/// least) found directly or behind the extension headers
/// [`checksum`] walks: what a GSO extra of type TCPv6 promises.
fn is_ipv6_tcp(frame: &[u8]) -> bool {
    checksum::transport(frame).is_some_and(|transport| {
        transport.is_ipv6() && transport.protocol == 6 && transport.end - transport.start >= 20
    })
}

/// Whether `frame` is an Ethernet II frame carrying an IPv4 TCP segment
/// whose IP header and total length lie inside the frame: what a GSO extra
/// of type TCPv4 promises.
fn is_ipv4_tcp(frame: &[u8]) -> bool {
    const ETHERNET_HEADER: usize = 14;
    let Some(ip) = frame.get(ETHERNET_HEADER..) else { return false };
    if frame[12..14] != [0x08, 0x00] || ip.len() < 20 {
        return false;
    }
    let header_length = usize::from(ip[0] & 0x0f) * 4;
    let total_length = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    ip[0] >> 4 == 4
        && ip[9] == 6
        && header_length >= 20
        && total_length >= header_length + 20
        && total_length <= ip.len()
}

/// The bytes an rx slot holds, or why it holds none: `Err(None)` for an
/// error the backend reported (drop the frame), `Err(Some(_))` for a
/// response no backend may send.
fn check_rx_status(response: &RxResponse) -> Result<usize, Option<Violation>> {
    match response.status {
        NETIF_RSP_ERROR | NETIF_RSP_DROPPED => Err(None),
        status if status <= 0 => Err(Some(Violation::BadStatus { status })),
        status => {
            let (offset, length) = (usize::from(response.offset), status as usize);
            if offset + length > PAGE_SIZE {
                return Err(Some(Violation::OutOfPage { offset: response.offset, length: status as u16 }));
            }
            Ok(length)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_status_is_checked_against_the_page() {
        let ok = RxResponse { id: 0, offset: 0, flags: 0, status: 1514 };
        assert_eq!(check_rx_status(&ok), Ok(1514));
        let full = RxResponse { offset: 96, status: 4000, ..ok };
        assert_eq!(check_rx_status(&full), Ok(4000));
        let over = RxResponse { offset: 100, status: 4000, ..ok };
        assert_eq!(check_rx_status(&over), Err(Some(Violation::OutOfPage { offset: 100, length: 4000 })));
        let huge = RxResponse { status: 5000, ..ok };
        assert!(matches!(check_rx_status(&huge), Err(Some(Violation::OutOfPage { .. }))));
        assert_eq!(check_rx_status(&RxResponse { status: NETIF_RSP_ERROR, ..ok }), Err(None));
        assert_eq!(check_rx_status(&RxResponse { status: -7, ..ok }), Err(Some(Violation::BadStatus { status: -7 })));
        assert_eq!(check_rx_status(&RxResponse { status: 0, ..ok }), Err(Some(Violation::BadStatus { status: 0 })));
    }

    fn gso(gso_type: u8, gso_size: u16) -> ExtraInfo {
        ExtraInfo { kind: EXTRA_TYPE_GSO, gso_type, gso_size, ..ExtraInfo::default() }
    }

    #[test]
    fn gso_sizes_are_bounded_by_the_headers_of_their_type() {
        let on = RxRules { large_segments: true, mtu: 1500 };
        assert_eq!(check_gso(on, &gso(GSO_TYPE_TCPV4, 1460)), None);
        assert_eq!(check_gso(on, &gso(GSO_TYPE_TCPV6, 1440)), None);
        assert_eq!(check_gso(on, &gso(GSO_TYPE_TCPV4, 65_495)), None, "65 535 less 40");
        assert_eq!(check_gso(on, &gso(GSO_TYPE_TCPV4, 65_496)), Some(Malformed::GsoSize(65_496)));
        assert_eq!(check_gso(on, &gso(GSO_TYPE_TCPV6, 65_475)), None, "65 535 less 60");
        assert_eq!(check_gso(on, &gso(GSO_TYPE_TCPV6, 65_476)), Some(Malformed::GsoSize(65_476)));
        assert_eq!(check_gso(on, &gso(GSO_TYPE_TCPV6, 0)), Some(Malformed::GsoSize(0)));
        assert_eq!(check_gso(on, &gso(3, 1000)), Some(Malformed::GsoType(3)));
        let off = RxRules { large_segments: false, ..on };
        assert_eq!(check_gso(off, &gso(GSO_TYPE_TCPV6, 1440)), Some(Malformed::GsoNotNegotiated));
    }

    /// An Ethernet frame carrying a 20-byte TCP header over IPv4, or over
    /// IPv6 behind the extension headers `extensions` (next-header values,
    /// 8 bytes each); `protocol` 6 for TCP.
    fn segment(ipv6: bool, extensions: &[u8], protocol: u8) -> Vec<u8> {
        let mut frame = vec![0u8; 14];
        if ipv6 {
            frame[12..14].copy_from_slice(&[0x86, 0xdd]);
            let payload = (extensions.len() * 8 + 20) as u16;
            let first = extensions.first().copied().unwrap_or(protocol);
            frame.extend_from_slice(&[0x60, 0, 0, 0]);
            frame.extend_from_slice(&payload.to_be_bytes());
            frame.extend_from_slice(&[first, 64]);
            frame.extend_from_slice(&[0; 32]);
            for index in 0..extensions.len() {
                let next = extensions.get(index + 1).copied().unwrap_or(protocol);
                frame.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
        } else {
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            frame.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, protocol, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1]);
        }
        frame.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0x20, 0, 0, 0, 0, 0]);
        frame
    }

    #[test]
    fn a_gso_type_must_match_its_frame() {
        let (v4, v6) = (segment(false, &[], 6), segment(true, &[], 6));
        assert_eq!(gso_frame_problem(&v4, GSO_TYPE_TCPV4), None);
        assert_eq!(gso_frame_problem(&v6, GSO_TYPE_TCPV6), None);
        assert_eq!(gso_frame_problem(&v4, GSO_TYPE_TCPV6), Some(Malformed::GsoNotTcpIpv6));
        assert_eq!(gso_frame_problem(&v6, GSO_TYPE_TCPV4), Some(Malformed::GsoNotTcpIpv4));
        // Behind a hop-by-hop and a destination options header: still TCP.
        assert_eq!(gso_frame_problem(&segment(true, &[0, 60], 6), GSO_TYPE_TCPV6), None);
        // UDP, a fragment header, a cut TCP header: not a TCPv6 segment.
        assert_eq!(gso_frame_problem(&segment(true, &[], 17), GSO_TYPE_TCPV6), Some(Malformed::GsoNotTcpIpv6));
        assert_eq!(gso_frame_problem(&segment(true, &[44], 6), GSO_TYPE_TCPV6), Some(Malformed::GsoNotTcpIpv6));
        let mut cut = v6.clone();
        cut[18..20].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(gso_frame_problem(&cut, GSO_TYPE_TCPV6), Some(Malformed::GsoNotTcpIpv6));
        assert_eq!(gso_frame_problem(&segment(false, &[], 17), GSO_TYPE_TCPV4), Some(Malformed::GsoNotTcpIpv4));
        assert_eq!(gso_frame_problem(&v6[..40], GSO_TYPE_TCPV6), Some(Malformed::GsoNotTcpIpv6));
    }
}
