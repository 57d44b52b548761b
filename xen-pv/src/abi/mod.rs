//! Mirrors of the Xen public headers, with their sizes checked at compile time.
//!
//! Each submodule names the header it follows. Field names keep the C names
//! where that helps a reader compare with the header; public Rust names are
//! spelled out otherwise.

pub mod console;
pub mod event_channel;
pub mod grant_table;
pub mod hvm;
pub mod memory;
pub mod netif;
pub mod sched;
pub mod shared_info;
pub mod start_info;
pub mod vcpu;
pub mod xenbus;
pub mod xenstore;

/// A domain identifier (`domid_t`).
pub type DomainId = u16;

/// `DOMID_SELF`: "the calling domain" in hypercall arguments.
pub const DOMID_SELF: DomainId = 0x7ff0;

/// Size of a Xen page on every architecture xenecho supports.
pub const PAGE_SIZE: usize = 4096;

/// Hypercall numbers (`xen/include/public/xen.h`).
pub mod hypercall_number {
    /// `__HYPERVISOR_memory_op`
    pub const MEMORY_OP: usize = 12;
    /// `__HYPERVISOR_xen_version`
    pub const XEN_VERSION: usize = 17;
    /// `__HYPERVISOR_console_io`
    pub const CONSOLE_IO: usize = 18;
    /// `__HYPERVISOR_grant_table_op`
    pub const GRANT_TABLE_OP: usize = 20;
    /// `__HYPERVISOR_vcpu_op`
    pub const VCPU_OP: usize = 24;
    /// `__HYPERVISOR_sched_op`
    pub const SCHED_OP: usize = 29;
    /// `__HYPERVISOR_event_channel_op`
    pub const EVENT_CHANNEL_OP: usize = 32;
    /// `__HYPERVISOR_hvm_op`
    pub const HVM_OP: usize = 34;
}

/// Checks a structure's size against the number in its C header, at compile time.
#[macro_export]
macro_rules! assert_abi_size {
    ($type:ty, $size:expr) => {
        const _: () = assert!(core::mem::size_of::<$type>() == $size);
    };
}

/// Checks a field's offset against the number in its C header, at compile time.
#[macro_export]
macro_rules! assert_abi_offset {
    ($type:ty, $field:ident, $offset:expr) => {
        const _: () = assert!(core::mem::offset_of!($type, $field) == $offset);
    };
}
