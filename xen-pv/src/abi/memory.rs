//! Memory operations (`memory.h`).

use crate::abi::DomainId;
use crate::{assert_abi_offset, assert_abi_size};

/// `XENMEM_add_to_physmap`
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;

/// `XENMAPSPACE_shared_info`: idx 0 is the shared info page.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: idx is the grant-table frame index.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;

/// `struct xen_add_to_physmap`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct AddToPhysmap {
    /// The domain (`DOMID_SELF`).
    pub domid: DomainId,
    /// Number of pages, for `XENMAPSPACE_gmfn_range` only.
    pub size: u16,
    /// A `XENMAPSPACE_*` value.
    pub space: u32,
    /// Index into the space.
    pub idx: u64,
    /// Guest frame to map it at.
    pub gpfn: u64,
}
assert_abi_size!(AddToPhysmap, 24);
assert_abi_offset!(AddToPhysmap, space, 4);
assert_abi_offset!(AddToPhysmap, idx, 8);
assert_abi_offset!(AddToPhysmap, gpfn, 16);
