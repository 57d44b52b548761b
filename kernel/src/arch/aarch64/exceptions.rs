//! CPU exceptions: every entry of the vector table is fatal.
//!
//! IRQs, FIQs and SErrors stay masked for the kernel's life (events are
//! polled, see `docs/event-loop.md`), so only synchronous exceptions (a
//! data or instruction abort, an undefined instruction, a breakpoint) can
//! arrive. Each of the 16 entries switches to its own stack (the faulting
//! one may be what overflowed) and calls [`exception_handler`] with the
//! entry's index; the handler prints the syndrome (ESR), the fault address
//! (FAR) and the faulting instruction (ELR), and crashes the domain.

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{ELR_EL1, ESR_EL1, FAR_EL1, Readable, VBAR_EL1, Writeable};
use core::arch::global_asm;

/// Stack for the exception path.
const EXCEPTION_STACK_SIZE: usize = 16 * 1024;

global_asm!(
    r#"
    .pushsection .text.exceptions, "ax"
    .balign 2048
    .globl exception_vectors
exception_vectors:
    .irp kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    .balign 128
    mov     x0, #\kind
    b       exception_common
    .endr
exception_common:
    adrp    x1, exception_stack_top
    add     x1, x1, :lo12:exception_stack_top
    mov     sp, x1
    bl      {handler}
1:  wfi
    b       1b
    .popsection

    .pushsection .bss.exceptions, "aw", @nobits
    .balign 16
exception_stack:     .skip {stack_size}
exception_stack_top:
    .popsection
    "#,
    handler = sym exception_handler,
    stack_size = const EXCEPTION_STACK_SIZE,
);

unsafe extern "C" {
    static exception_vectors: u8;
}

/// Points VBAR_EL1 at the vector table.
pub fn init_exceptions() {
    // The table is 2 KiB aligned code that lives forever; `isb` makes the
    // new base take effect before anything can fault.
    VBAR_EL1.set((&raw const exception_vectors) as u64);
    barrier::isb(barrier::SY);
}

/// The vector table entry's kind: which exception, from where.
fn entry_name(index: u64) -> &'static str {
    const NAMES: [&str; 16] = [
        "synchronous, EL1 with SP_EL0",
        "IRQ, EL1 with SP_EL0",
        "FIQ, EL1 with SP_EL0",
        "SError, EL1 with SP_EL0",
        "synchronous",
        "IRQ",
        "FIQ",
        "SError",
        "synchronous from EL0",
        "IRQ from EL0",
        "FIQ from EL0",
        "SError from EL0",
        "synchronous from EL0 (AArch32)",
        "IRQ from EL0 (AArch32)",
        "FIQ from EL0 (AArch32)",
        "SError from EL0 (AArch32)",
    ];
    NAMES.get(index as usize).copied().unwrap_or("unknown")
}

/// The exception class (ESR_EL1.EC) in words.
fn class_name(class: u64) -> &'static str {
    match class {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE trapped",
        0x07 => "FP/SIMD access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x18 => "system register access trapped",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2f => "SError",
        0x3c => "BRK instruction",
        _ => "other",
    }
}

extern "C" fn exception_handler(index: u64) -> ! {
    let (esr, fault_address, link) = (ESR_EL1.extract(), FAR_EL1.get(), ELR_EL1.get());
    // EC is bits 26..=31 (ISS2 sits above it on newer cores).
    let (syndrome, class) = (esr.get(), esr.read(ESR_EL1::EC));
    let kind = entry_name(index);
    let name = class_name(class);
    crate::fatal(format_args!(
        "exception {kind}: ESR {syndrome:#x} (class {class:#04x}, {name}), elr {link:#x}, fault address (far) {fault_address:#x}"
    ))
}
