//! Grant tables, version 1 (`grant_table.h`).
//!
//! A grant entry lets one other domain map or copy one of our frames. The
//! guest writes `domid` and `frame`, then (after a barrier) `flags`; Xen sets
//! `GTF_reading`/`GTF_writing` while the other domain has the frame mapped.

use crate::abi::DomainId;
use crate::{assert_abi_offset, assert_abi_size};
use core::sync::atomic::{AtomicU16, AtomicU32};

/// A grant reference: an index into the grant table.
pub type GrantRef = u32;

/// `GTF_permit_access`: the entry grants access to `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_readonly`: the other domain may only read.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: the other domain has the frame mapped for reading.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: the other domain has the frame mapped for writing.
pub const GTF_WRITING: u16 = 1 << 4;

/// References the toolstack and backends reserve (`GNTTAB_NR_RESERVED_ENTRIES`).
pub const GNTTAB_NR_RESERVED_ENTRIES: GrantRef = 8;

/// `struct grant_entry_v1`.
#[repr(C)]
pub struct GrantEntryV1 {
    /// `GTF_*` flags.
    pub flags: AtomicU16,
    /// The domain being granted access.
    pub domid: AtomicU16,
    /// The frame being granted.
    pub frame: AtomicU32,
}
assert_abi_size!(GrantEntryV1, 8);
assert_abi_offset!(GrantEntryV1, domid, 2);
assert_abi_offset!(GrantEntryV1, frame, 4);

/// Entries per 4 KiB grant-table frame.
pub const ENTRIES_PER_FRAME: usize = 4096 / 8;

/// `GNTTABOP_query_size`
pub const GNTTABOP_QUERY_SIZE: u32 = 6;

/// `struct gnttab_query_size`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct GrantTableQuerySize {
    /// IN: the domain (`DOMID_SELF`).
    pub domid: DomainId,
    /// Padding.
    pub pad: u16,
    /// OUT: frames in the table now.
    pub nr_frames: u32,
    /// OUT: frames the table may grow to.
    pub max_nr_frames: u32,
    /// OUT: `GNTST_*` status.
    pub status: i16,
    /// Padding.
    pub pad2: u16,
}
assert_abi_size!(GrantTableQuerySize, 16);
assert_abi_offset!(GrantTableQuerySize, nr_frames, 4);
assert_abi_offset!(GrantTableQuerySize, max_nr_frames, 8);
assert_abi_offset!(GrantTableQuerySize, status, 12);
