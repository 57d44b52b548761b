//! Xen ARM guest entry: libxl loads the whole image file at the start of
//! guest RAM (0x40000000 + `text_offset`) and jumps to its first byte at EL1
//! with the MMU and caches off, DAIF masked and `x0` = the device tree.
//!
//! The image starts with the 64-byte Linux arm64 `Image` header (a branch,
//! `text_offset` 0, the image size, flags, the `ARM\x64` magic), which is
//! what Xen's loader checks. The assembly then zeroes the BSS (libxl does
//! not: it loads the file and ignores `image_size`), builds identity page
//! tables, turns the MMU and caches on, and calls [`kernel_entry`] on the
//! boot stack. Rust code runs only with the MMU on: before that every data
//! access is Device memory, where unaligned and exclusive accesses fault.
//!
//! The page tables (4 KiB granule, 39-bit addresses, level 1 and 2 blocks):
//! - 0x0000_0000..0x3800_0000, 2 MiB blocks, Device-nGnRE, never executable:
//!   the GIC, the emulated UART and whatever else Xen puts below;
//! - 0x3800_0000..0x4000_0000, 2 MiB blocks, Normal: the grant-table region
//!   and Xen's special pages (xenstore and console rings);
//! - 0x4000_0000..0x1_0000_0000 (RAM bank 0 and the free space above it) and
//!   0x2_0000_0000..0x4_0000_0000 (the start of RAM bank 1), 1 GiB blocks,
//!   Normal.
//!
//! Normal is Inner/Outer Write-Back, Inner Shareable: what the Xen ARM ABI
//! requires of every page shared with Xen or another domain.

use crate::devicetree::{DeviceTree, InterruptControllerName};
use crate::memory::ReservedRanges;
use crate::memory::map::{MapError, MemoryMap};
use crate::pv::{ForeignArea, MAX_GRANT_FRAMES};
use crate::start::BootData;
use core::arch::global_asm;
use xen_pv::abi::start_info::{MEMMAP_TYPE_RAM, MemoryMapEntry};

/// Boot stack size. There is no guard page (block mappings).
const BOOT_STACK_SIZE: usize = 256 * 1024;

/// Block descriptor attributes: Normal (MAIR index 1), Inner Shareable,
/// accessed.
const NORMAL_BLOCK: u64 = 0x705;
/// Device-nGnRE (MAIR index 0), accessed, never executable (PXN, UXN).
const DEVICE_BLOCK: u64 = 0x0060_0000_0000_0401;
/// MAIR_EL1: index 0 Device-nGnRE, index 1 Normal Write-Back RW-allocate.
const MAIR: u64 = 0xff04;
/// TCR_EL1: T0SZ 25 (39 bits), walks Inner/Outer WB Inner Shareable, 4 KiB
/// granule; TTBR1 walks disabled (EPD1); 40-bit intermediate addresses.
const TCR: u64 = 0x2_8099_3519;
/// Where Normal memory starts in the first GiB (the grant-table region).
const NORMAL_FROM: u64 = 0x3800_0000;

global_asm!(
    r#"
    .pushsection .text.head, "ax"
    .globl _head
_head:
    b       primary_entry           /* code0: Xen jumps to the first byte */
    .long   0                       /* code1 */
    .quad   0                       /* text_offset */
    .quad   __image_size            /* image_size */
    .quad   0xa                     /* flags: little endian, 4 KiB pages, anywhere */
    .quad   0, 0, 0                 /* res2..res4 */
    .ascii  "ARM\x64"               /* magic */
    .long   0                       /* res5: no PE header */

primary_entry:
    mov     x19, x0                 /* the device tree */
    mov     x1, #(3 << 20)          /* CPACR_EL1.FPEN: FP/SIMD do not trap */
    msr     cpacr_el1, x1

    adrp    x1, __bss_start
    add     x1, x1, :lo12:__bss_start
    adrp    x2, __bss_end
    add     x2, x2, :lo12:__bss_end
1:  cmp     x1, x2
    b.hs    2f
    stp     xzr, xzr, [x1], #16
    b       1b

2:  adrp    x1, boot_l1
    adrp    x2, boot_l2_low
    orr     x3, x2, #3              /* table descriptor */
    str     x3, [x1]
    ldr     x5, ={device}
    ldr     x6, ={normal}
    mov     x8, #{normal_from}
    mov     x4, #0
3:  lsl     x7, x4, #21             /* the first GiB in 2 MiB blocks */
    cmp     x7, x8
    csel    x9, x5, x6, lo
    orr     x7, x7, x9
    str     x7, [x2, x4, lsl #3]
    add     x4, x4, #1
    cmp     x4, #512
    b.lo    3b
    mov     x4, #1                  /* 1..4 GiB: RAM bank 0 and above */
4:  lsl     x7, x4, #30
    orr     x7, x7, x6
    str     x7, [x1, x4, lsl #3]
    add     x4, x4, #1
    cmp     x4, #4
    b.lo    4b
    mov     x4, #8                  /* 8..16 GiB: RAM bank 1 */
5:  lsl     x7, x4, #30
    orr     x7, x7, x6
    str     x7, [x1, x4, lsl #3]
    add     x4, x4, #1
    cmp     x4, #16
    b.lo    5b

    /* The tables were written with the caches off: drop stale lines. */
    dsb     sy
    mov     x4, #0
6:  add     x7, x1, x4
    dc      ivac, x7
    add     x4, x4, #64
    cmp     x4, #(2 * 4096)
    b.lo    6b
    dsb     sy

    ldr     x1, ={mair}
    msr     mair_el1, x1
    ldr     x1, ={tcr}
    msr     tcr_el1, x1
    adrp    x1, boot_l1
    msr     ttbr0_el1, x1
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    mrs     x1, sctlr_el1
    orr     x1, x1, #(1 << 0)       /* M: MMU on */
    orr     x1, x1, #(1 << 2)       /* C: data cache */
    orr     x1, x1, #(1 << 12)      /* I: instruction cache */
    bic     x1, x1, #(1 << 1)       /* A: no alignment faults */
    msr     sctlr_el1, x1
    isb
    ic      iallu
    dsb     nsh
    isb

    adrp    x1, boot_stack_top
    add     x1, x1, :lo12:boot_stack_top
    mov     sp, x1
    mov     x29, #0
    mov     x0, x19
    bl      {entry}
7:  wfi
    b       7b
    .ltorg
    .popsection

    .pushsection .bss.boot, "aw", @nobits
    .balign 4096
boot_l1:        .skip 4096
boot_l2_low:    .skip 4096
    .balign 16
boot_stack:     .skip {stack_size}
boot_stack_top:
    .popsection
    "#,
    device = const DEVICE_BLOCK,
    normal = const NORMAL_BLOCK,
    normal_from = const NORMAL_FROM,
    mair = const MAIR,
    tcr = const TCR,
    stack_size = const BOOT_STACK_SIZE,
    entry = sym kernel_entry,
);

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Whether `range` lies where the boot page tables map Normal memory.
fn mapped_normal(range: &core::ops::Range<u64>) -> bool {
    let inside = |low: u64, high: u64| low <= range.start && range.end <= high;
    inside(NORMAL_FROM, 1 << 32) || inside(8 << 30, 16 << 30)
}

/// First Rust code; runs on the boot stack with the MMU on.
extern "C" fn kernel_entry(device_tree_address: u64) -> ! {
    crate::arch::init_exceptions();
    let tree = read_device_tree(device_tree_address);
    super::set_device_tree_facts(&tree);
    let mut reserved = ReservedRanges::new();
    // Linker-script symbols: only their addresses are used.
    let image = (&raw const __kernel_start) as u64..(&raw const __kernel_end) as u64;
    reserved.push(image);
    reserved.push(device_tree_address..device_tree_address + tree.total_size);
    let memory_map = memory_map(&tree);
    let foreign_area = foreign_area(&tree);
    let command_line = BOOT_DEVICE_TREE.call_once(|| tree).command_line();
    crate::start::start(BootData { command_line, memory_map, reserved, foreign_area })
}

/// What the device tree said, kept for the kernel's life (it holds the
/// command line the kernel borrows).
static BOOT_DEVICE_TREE: spin::Once<DeviceTree> = spin::Once::new();

/// Logs what the device tree said (once the logger exists; before the heap:
/// nothing here allocates).
pub fn log_platform() {
    let Some(tree) = BOOT_DEVICE_TREE.get() else { return };
    let regions = tree.hypervisor_regions.as_slice();
    let grant = regions.first().map_or(0..0, Clone::clone);
    log::info!(
        "device tree: hypervisor {}, grant-table region {:#x}-{:#x}, {} free region(s) for mappings from {:#x}",
        tree.xen_compatible().unwrap_or("?"),
        grant.start,
        grant.end,
        regions.len().saturating_sub(1),
        regions.get(1).map_or(0, |range| range.start),
    );
    log::info!(
        "device tree: event channel INTID {}, {}, vuart {:#x}, image {:#x}-{:#x}",
        tree.event_interrupt.unwrap_or(0),
        InterruptControllerName(tree.interrupt_controller),
        tree.uart.unwrap_or(0),
        (&raw const __kernel_start) as u64,
        (&raw const __kernel_end) as u64,
    );
}

fn read_device_tree(address: u64) -> DeviceTree {
    const HEADER: usize = 8;
    if !address.is_multiple_of(8) || !mapped_normal(&(address..address + HEADER as u64)) {
        crate::fatal(format_args!("device tree address {address:#x} is not usable"));
    }
    // SAFETY: Xen placed the device tree in guest RAM (mapped Normal by the
    // boot page tables, checked above) and nobody writes it; the header's
    // first two words are the magic and the total size.
    let header = unsafe { core::ptr::read(address as *const [u8; HEADER]) };
    let total = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as u64;
    if total > 2 << 20 || !mapped_normal(&(address..address + total)) {
        crate::fatal(format_args!("device tree at {address:#x} claims {total} bytes"));
    }
    // SAFETY: as above, for the `total` bytes the header announces, which
    // lie in mapped RAM (checked) and stay untouched while we parse them.
    let blob = unsafe { core::slice::from_raw_parts(address as *const u8, total as usize) };
    DeviceTree::parse(blob).unwrap_or_else(|error| crate::fatal(format_args!("device tree: {error:?}")))
}

fn memory_map(tree: &DeviceTree) -> Result<MemoryMap, MapError> {
    let ram = tree.memory.as_slice().iter().filter(|range| mapped_normal(range));
    MemoryMap::from_entries(ram.map(|range| MemoryMapEntry {
        addr: range.start,
        size: range.end - range.start,
        kind: MEMMAP_TYPE_RAM,
        reserved: 0,
    }))
}

/// Grant frames go into the `hypervisor` node's region 0 (the grant-table
/// region); shared info into the first free region after it, or, without
/// one, into the grant-table region's last page.
fn foreign_area(tree: &DeviceTree) -> Option<ForeignArea> {
    const PAGE: u64 = xen_pv::abi::PAGE_SIZE as u64;
    let regions = tree.hypervisor_regions.as_slice();
    let grant = regions.first().filter(|range| mapped_normal(range))?;
    let grant_start = grant.start.next_multiple_of(PAGE);
    let grant_pages = grant.end.saturating_sub(grant_start) / PAGE;
    let free = regions[1..].iter().map(|range| range.start.next_multiple_of(PAGE)..range.end).find(|range| {
        range.end.saturating_sub(range.start) >= PAGE && mapped_normal(&(range.start..range.start + PAGE))
    });
    let (shared_info, capacity) = match free {
        Some(range) => (range.start, grant_pages),
        None if grant_pages >= 2 => (grant_start + (grant_pages - 1) * PAGE, grant_pages - 1),
        None => return None,
    };
    Some(ForeignArea { shared_info, grant_frames: grant_start, grant_frame_capacity: capacity.min(MAX_GRANT_FRAMES) })
}
