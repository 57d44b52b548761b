//! PVH entry: Xen starts us in 32-bit protected mode with paging off and
//! `%ebx` = physical address of the `hvm_start_info`.
//!
//! The assembly below zeroes the BSS, identity-maps the low 4 GiB with 2 MiB
//! pages, enables long mode, and calls [`kernel_entry`] on the boot stack.
//! `kernel_entry` copies what it needs out of the start info (memory map,
//! command line) and hands over to the architecture-neutral start.

use crate::memory::ReservedRanges;
use crate::memory::map::{MAX_REGIONS, MapError, MemoryMap};
use crate::pv::{ForeignArea, MAX_GRANT_FRAMES};
use crate::start::BootData;
use core::arch::global_asm;
use xen_pv::abi::start_info::{MemoryMapEntry, START_MAGIC, StartInfo};

/// Boot stack size. There is no guard page yet (2 MiB mappings).
const BOOT_STACK_SIZE: usize = 256 * 1024;

// The ELF note that makes this image a PVH kernel: XEN_ELFNOTE_PHYS32_ENTRY
// (type 18), name "Xen", a 32-bit physical entry address.
global_asm!(
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    ".long 4",
    ".long 4",
    ".long 18",
    ".asciz \"Xen\"",
    ".balign 4",
    ".long pvh_start32",
    ".balign 4",
    ".popsection",
);

global_asm!(
    r#"
    .pushsection .bss.boot, "aw", @nobits
    .balign 4096
boot_pml4:  .skip 4096
boot_pdpt:  .skip 4096
boot_pd:    .skip 4 * 4096
boot_stack: .skip {stack_size}
boot_stack_top:
    .popsection

    .pushsection .rodata.boot, "a"
    .balign 16
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, ring 0 */
    .quad 0x00cf92000000ffff        /* 0x10: data, ring 0 */
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt
    .popsection

    .pushsection .text.boot, "ax"
    .code32
    .globl pvh_start32
pvh_start32:
    cli
    cld
    /* %ebx holds the start info address: keep it there. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT; PDPT[0..4] -> four page directories. */
    mov $boot_pdpt + 0x3, %eax
    mov %eax, boot_pml4
    mov $boot_pd + 0x3, %eax
    mov $boot_pdpt, %edi
    mov $4, %ecx
1:  mov %eax, (%edi)
    add $0x1000, %eax
    add $8, %edi
    loop 1b

    /* 2048 entries of 2 MiB: present, writable, large page. */
    mov $0x83, %eax
    mov $boot_pd, %edi
    mov $2048, %ecx
2:  mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 2b

    mov %cr4, %eax
    or $0x20, %eax                  /* PAE */
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx           /* EFER */
    rdmsr
    or $0x900, %eax                 /* LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax            /* PG | WP | PE */
    mov %eax, %cr0

    lgdt boot_gdt_pointer
    ljmp $0x08, $3f

    .code64
3:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $boot_stack_top, %rsp
    xor %ebp, %ebp
    mov %ebx, %edi
    call {entry}
    ud2
    .popsection
    "#,
    stack_size = const BOOT_STACK_SIZE,
    entry = sym kernel_entry,
    options(att_syntax),
);

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Longest command line kept (Xen's own limit for guests is 1024).
const COMMAND_LINE_CAPACITY: usize = 1024;

static COMMAND_LINE: spin::Once<([u8; COMMAND_LINE_CAPACITY], usize)> = spin::Once::new();

/// First Rust code; runs on the boot stack in long mode.
extern "C" fn kernel_entry(start_info_address: u32) -> ! {
    crate::arch::init_exceptions();
    let address = u64::from(start_info_address);
    if address == 0 || address % 8 != 0 {
        crate::fatal(format_args!("PVH start info address {address:#x} is not usable"));
    }
    // SAFETY: Xen passes the physical address of a `hvm_start_info` in %ebx;
    // it is identity-mapped (below 4 GiB), aligned (checked above), and not
    // written by anyone while we copy it.
    let start_info: StartInfo = unsafe { core::ptr::read(address as *const StartInfo) };
    if start_info.magic != START_MAGIC {
        crate::fatal(format_args!("PVH start info magic {:#x}, expected {START_MAGIC:#x}", start_info.magic));
    }
    let mut reserved = ReservedRanges::new();
    // Linker-script symbols: only their addresses are used.
    let image = (&raw const __kernel_start) as u64..(&raw const __kernel_end) as u64;
    reserved.push(image);
    reserved.push(address..address + size_of::<StartInfo>() as u64);
    // Of the first MiB, only frame 0: a PVH guest has no firmware, and
    // libxl both describes and populates RAM from address 0 when there is
    // no device model (its e820 `lowmem_start` is 0, and the domain
    // builder skips the VGA hole only for a device model). Xen puts nothing
    // there: the start info, command line and memory map follow the image
    // (reserved by their addresses), the ACPI tables and special pages sit
    // far above RAM. In a 4 MB guest this MiB is a quarter of the memory.
    reserved.push(crate::memory::NULL_FRAME);

    let command_line = read_command_line(start_info.cmdline_paddr, &mut reserved);
    let memory_map = read_memory_map(&start_info, &mut reserved);
    let foreign_area = memory_map.as_ref().ok().and_then(foreign_area);
    crate::start::start(BootData { command_line, memory_map, reserved, foreign_area })
}

/// Xen's pages (shared info, then the grant-table frames) go into a 2 MiB
/// aligned hole of the memory map above RAM and below 4 GiB, which the boot
/// page tables map.
fn foreign_area(map: &MemoryMap) -> Option<ForeignArea> {
    let pages = 1 + MAX_GRANT_FRAMES;
    let start = map.find_hole(pages * PAGE_SIZE, 2 << 20, 1 << 32)?;
    Some(ForeignArea { shared_info: start, grant_frames: start + PAGE_SIZE, grant_frame_capacity: MAX_GRANT_FRAMES })
}

const PAGE_SIZE: u64 = xen_pv::abi::PAGE_SIZE as u64;

fn read_command_line(address: u64, reserved: &mut ReservedRanges) -> &'static str {
    if address == 0 {
        return "";
    }
    let (bytes, len) = COMMAND_LINE.call_once(|| {
        let mut bytes = [0u8; COMMAND_LINE_CAPACITY];
        let mut len = 0;
        while len < COMMAND_LINE_CAPACITY {
            // SAFETY: the command line is a zero-terminated string Xen placed
            // in identity-mapped low memory; we stop at its terminator or at
            // our capacity, whichever comes first.
            let byte = unsafe { core::ptr::read((address + len as u64) as *const u8) };
            if byte == 0 {
                break;
            }
            bytes[len] = byte;
            len += 1;
        }
        (bytes, len)
    });
    reserved.push(address..address + *len as u64 + 1);
    match core::str::from_utf8(&bytes[..*len]) {
        Ok(text) => text,
        Err(error) => core::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or_default(),
    }
}

fn read_memory_map(start_info: &StartInfo, reserved: &mut ReservedRanges) -> Result<MemoryMap, MapError> {
    if start_info.version < 1 || start_info.memmap_paddr == 0 {
        return Err(MapError::NoRam);
    }
    let count = start_info.memmap_entries as usize;
    if count > MAX_REGIONS {
        return Err(MapError::TooManyRegions);
    }
    let table = start_info.memmap_paddr;
    reserved.push(table..table + (count * size_of::<MemoryMapEntry>()) as u64);
    MemoryMap::from_entries((0..count).map(|index| {
        let entry_address = table + (index * size_of::<MemoryMapEntry>()) as u64;
        // SAFETY: Xen placed `memmap_entries` entries at `memmap_paddr` in
        // identity-mapped low memory; `index` stays below that count.
        unsafe { core::ptr::read_unaligned(entry_address as *const MemoryMapEntry) }
    }))
}
