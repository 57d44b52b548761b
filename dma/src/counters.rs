//! Counters of one DMA device, for metrics and leak checks.
//!
//! Plain numbers, updated by the device as it works; reading them costs
//! nothing and changes nothing. The gauges (`grants_in_use`, `live_handles`,
//! `deferred_pending`) go back to zero when every handle is unmapped, the
//! deferred queue is empty and the device is closed: the tests' leak check.

/// What one device has done so far, and what it holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DmaCounters {
    /// Buffers mapped.
    pub maps: u64,
    /// Maps refused (no grant reference or bounce page free, or a frame too
    /// large): the buffer went back to the caller.
    pub map_failures: u64,
    /// Handles whose unmap completed: at once, on a retry, or through the
    /// deferred queue.
    pub unmaps: u64,
    /// Unmap attempts that found a grant still held by the backend.
    pub unmap_refusals: u64,
    /// `sync_for_device` calls (direct, or through `write` / `update`).
    pub syncs_for_device: u64,
    /// `sync_for_cpu` calls (direct, or through `read` / `update`).
    pub syncs_for_cpu: u64,
    /// Copies between a buffer and its bounce pages (at map, sync and unmap).
    pub bounce_copies: u64,
    /// Bytes those copies moved.
    pub bounce_bytes: u64,
    /// Handles sent to the deferred-release queue so far.
    pub deferred_releases: u64,
    /// Gauge: grant references this device holds now (mapped handles,
    /// deferred buffers and bounce pages).
    pub grants_in_use: u64,
    /// Gauge: handles mapped and not yet unmapped or deferred.
    pub live_handles: u64,
    /// Gauge: buffers waiting in the deferred-release queue.
    pub deferred_pending: u64,
}

impl core::ops::AddAssign for DmaCounters {
    /// Adds another device's counters: what several devices did, and hold,
    /// together (one vif's devices over its life, for metrics).
    fn add_assign(&mut self, other: Self) {
        // Every field named, so that a new counter cannot be forgotten here.
        let Self {
            maps,
            map_failures,
            unmaps,
            unmap_refusals,
            syncs_for_device,
            syncs_for_cpu,
            bounce_copies,
            bounce_bytes,
            deferred_releases,
            grants_in_use,
            live_handles,
            deferred_pending,
        } = other;
        self.maps += maps;
        self.map_failures += map_failures;
        self.unmaps += unmaps;
        self.unmap_refusals += unmap_refusals;
        self.syncs_for_device += syncs_for_device;
        self.syncs_for_cpu += syncs_for_cpu;
        self.bounce_copies += bounce_copies;
        self.bounce_bytes += bounce_bytes;
        self.deferred_releases += deferred_releases;
        self.grants_in_use += grants_in_use;
        self.live_handles += live_handles;
        self.deferred_pending += deferred_pending;
    }
}
