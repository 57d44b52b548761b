//! The PVH start of day structure (`arch-x86/hvm/start_info.h`).
//!
//! Xen enters a PVH kernel with `%ebx` holding the physical address of a
//! [`StartInfo`]. Every address in it is physical; 0 means "not present".

use crate::{assert_abi_offset, assert_abi_size};

/// `XEN_HVM_START_MAGIC_VALUE`: "xEn3" with the 0x80 bit of the "E" set.
pub const START_MAGIC: u32 = 0x336e_c578;

/// `struct hvm_start_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct StartInfo {
    /// Must be [`START_MAGIC`].
    pub magic: u32,
    /// Version of this structure; 1 and later carry the memory map.
    pub version: u32,
    /// `SIF_*` flags.
    pub flags: u32,
    /// Number of modules in the module list.
    pub nr_modules: u32,
    /// Physical address of an array of [`ModuleEntry`].
    pub modlist_paddr: u64,
    /// Physical address of the zero-terminated command line.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP.
    pub rsdp_paddr: u64,
    /// Physical address of an array of [`MemoryMapEntry`] (version 1+).
    pub memmap_paddr: u64,
    /// Number of entries in the memory map (version 1+).
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}
assert_abi_size!(StartInfo, 56);
assert_abi_offset!(StartInfo, modlist_paddr, 16);
assert_abi_offset!(StartInfo, cmdline_paddr, 24);
assert_abi_offset!(StartInfo, rsdp_paddr, 32);
assert_abi_offset!(StartInfo, memmap_paddr, 40);
assert_abi_offset!(StartInfo, memmap_entries, 48);

/// `struct hvm_modlist_entry`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ModuleEntry {
    /// Physical address of the module.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Physical address of the module's command line.
    pub cmdline_paddr: u64,
    /// Reserved.
    pub reserved: u64,
}
assert_abi_size!(ModuleEntry, 32);

/// `struct hvm_memmap_table_entry`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryMapEntry {
    /// Base address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// One of the `MEMMAP_TYPE_*` values.
    pub kind: u32,
    /// Must be zero.
    pub reserved: u32,
}
assert_abi_size!(MemoryMapEntry, 24);
assert_abi_offset!(MemoryMapEntry, kind, 16);

/// `XEN_HVM_MEMMAP_TYPE_RAM`
pub const MEMMAP_TYPE_RAM: u32 = 1;
/// `XEN_HVM_MEMMAP_TYPE_RESERVED`
pub const MEMMAP_TYPE_RESERVED: u32 = 2;
/// `XEN_HVM_MEMMAP_TYPE_ACPI`
pub const MEMMAP_TYPE_ACPI: u32 = 3;
/// `XEN_HVM_MEMMAP_TYPE_NVS`
pub const MEMMAP_TYPE_NVS: u32 = 4;
/// `XEN_HVM_MEMMAP_TYPE_UNUSABLE`
pub const MEMMAP_TYPE_UNUSABLE: u32 = 5;
