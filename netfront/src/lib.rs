//! The Xen network frontend, over xenecho's DMA layer, as a smoltcp device.
//!
//! [`Netfront`] finds `device/vif/*` in xenstore, runs the xenbus handshake
//! with the backend (wait for its InitWait; ring grants, event channel and
//! features written in one transaction, retried on EAGAIN; Connected), keeps
//! one-page tx and rx rings whose buffers are DMA handles from persistent
//! pools ([`link`]), checks every backend response, and implements
//! `smoltcp::phy::Device` ([`phy`]) so a received page is lent to smoltcp by
//! handle, without a copy.
//!
//! Large segments and checksums: with [`NetfrontConfig::large_segments`]
//! (the default) the frontend asks for received TCP segments of up to
//! 64 KiB over IPv4 and IPv6 (`feature-gso-tcpv4`, `feature-gso-tcpv6`) and
//! so takes partial checksums (`feature-no-csum-offload=0`,
//! `feature-ipv6-csum-offload=1`: Linux netback turns segmentation offload
//! on only with checksum offload); without, it asks for neither, and netback
//! hands over complete checksums. A frame marked `NETRXF_csum_blank` is
//! completed in software ([`checksum`]) and counted.
//!
//! Large transmitted segments: when the backend takes them
//! (`feature-gso-tcpv4`, `feature-gso-tcpv6`, with `feature-sg`) and
//! [`NetfrontConfig::tx_large_segments`] allows it, consecutive TCP
//! segments of one flow the stack sends are merged into one large segment
//! on the ring, zero-copy: one slot per segment, pointing past its headers
//! into its own page ([`tx_merge`]). At most one is open at a time; it is
//! put on the ring when a frame that does not continue it comes, and at
//! the latest by [`Netfront::poll_rings`] (or [`Netfront::flush_transmit`]),
//! which the event loop runs before it sleeps.
//!
//! The backend is untrusted input: a violation (bad id, size, status,
//! producer index) tears the link down and logs it; a backend that closes
//! (`xl network-detach`) is followed through Closing and Closed, and a new
//! one (`xl network-attach`) is connected again. Buffers go back to their
//! pools, and pages to the allocator, only once their grants are revoked.
//!
//! The driver knows the DMA layer's handle API and nothing of grant tables:
//! it is generic over the translation (`dma::Translation`), writes into ring
//! requests and xenstore the bus pages the handles give, and unmaps a
//! buffer only once the backend has answered for every page of it (and the
//! rings only once the backend has closed), so that it is correct even over
//! a translation that cannot refuse an unmap. Its host tests run it over
//! the grant table and over the identity translation of bare metal.
//!
//! This crate holds no `unsafe` code.
#![cfg_attr(target_os = "none", no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod checksum;
mod control;
pub mod link;
pub mod phy;
pub mod slots;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod tx_merge;
pub mod tx_plan;
pub mod xenbus;

pub use control::{
    LARGE_SEGMENT_RX_BUFFERS, LARGE_SEGMENT_SLOTS, MIN_POOL_BUFFERS, Netfront, NetfrontConfig, NetfrontError,
    VifChoice, VifDevice, VifIdentity, WATCH_TOKEN, find_vif, watch_vifs,
};

/// What the frontend counted. Per-request costs in the metrics come from
/// these (notifications, frames, errors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetfrontCounters {
    /// Frames received and handed to the stack.
    pub rx_frames: u64,
    /// Bytes in those frames.
    pub rx_bytes: u64,
    /// Frames dropped on receive (backend-reported errors).
    pub rx_dropped: u64,
    /// Frames whose blank checksum was completed here.
    pub rx_checksums_completed: u64,
    /// Blank-checksum frames that could not be completed.
    pub rx_checksums_unsupported: u64,
    /// Large segments (frames with a GSO extra) received and handed to the
    /// stack whole.
    pub rx_large_segments: u64,
    /// Frames dropped because their extra information or length broke the
    /// rules (`link::Malformed`); the link stays up.
    pub rx_malformed: u64,
    /// Frames the stack sent that were queued on the ring (each segment
    /// merged into a large segment counts as the frame it was).
    pub tx_frames: u64,
    /// Bytes in those frames (as the stack built them).
    pub tx_bytes: u64,
    /// Large segments queued: frames with a GSO extra, each made of
    /// several of the stack's segments.
    pub tx_large_segments: u64,
    /// The stack's segments that went inside those large segments.
    pub tx_segments_merged: u64,
    /// Frames the stack produced that could not be queued.
    pub tx_dropped: u64,
    /// Frames refused by the slot rules.
    pub tx_plan_errors: u64,
    /// Frames the backend reported as failed.
    pub tx_errors: u64,
    /// Notifications sent to the backend.
    pub notifications_sent: u64,
    /// Wake-ups by the backend's notifications.
    pub notifications_received: u64,
    /// Protocol violations by the backend (each one tears the link down).
    pub violations: u64,
    /// Handshakes completed.
    pub connects: u64,
    /// Links torn down.
    pub disconnects: u64,
}

impl core::ops::AddAssign for NetfrontCounters {
    /// Adds another frontend's counters (the frontends a vif had over its
    /// life, for metrics).
    fn add_assign(&mut self, other: Self) {
        // Every field named, so that a new counter cannot be forgotten here.
        let Self {
            rx_frames,
            rx_bytes,
            rx_dropped,
            rx_checksums_completed,
            rx_checksums_unsupported,
            rx_large_segments,
            rx_malformed,
            tx_frames,
            tx_bytes,
            tx_large_segments,
            tx_segments_merged,
            tx_dropped,
            tx_plan_errors,
            tx_errors,
            notifications_sent,
            notifications_received,
            violations,
            connects,
            disconnects,
        } = other;
        self.rx_frames += rx_frames;
        self.rx_bytes += rx_bytes;
        self.rx_dropped += rx_dropped;
        self.rx_checksums_completed += rx_checksums_completed;
        self.rx_checksums_unsupported += rx_checksums_unsupported;
        self.rx_large_segments += rx_large_segments;
        self.rx_malformed += rx_malformed;
        self.tx_frames += tx_frames;
        self.tx_bytes += tx_bytes;
        self.tx_large_segments += tx_large_segments;
        self.tx_segments_merged += tx_segments_merged;
        self.tx_dropped += tx_dropped;
        self.tx_plan_errors += tx_plan_errors;
        self.tx_errors += tx_errors;
        self.notifications_sent += notifications_sent;
        self.notifications_received += notifications_received;
        self.violations += violations;
        self.connects += connects;
        self.disconnects += disconnects;
    }
}
