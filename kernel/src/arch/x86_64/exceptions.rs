//! CPU exceptions: every one of the 32 architectural vectors but the NMI is
//! fatal.
//!
//! The NMI (vector 2, `xl trigger NAME nmi`: operators send it to ask a
//! guest for a sign of life) is counted and returned from: its stub saves
//! the registers the C calling convention lets a callee clobber, calls
//! [`nmi_handler`] (one atomic increment: it may have interrupted anything,
//! a log line under its lock included, so it takes no lock and prints
//! nothing), restores them and returns with `iretq`. The event loop logs
//! the count when it next waits ([`nmis`]). The kernel's target keeps no red
//! zone, so the interrupted code has nothing below its stack pointer to lose.
//!
//! Each other stub pushes a zero where the CPU pushes no error code, then the
//! vector, and jumps to a common path that calls [`exception_handler`] with a
//! pointer to the frame. The handler prints what happened (vector, name,
//! error code, RIP, and CR2 for a page fault) and crashes the domain.
//! Interrupts stay disabled, so nothing but exceptions ever arrives here.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::registers::control::Cr2;
use x86_64::structures::DescriptorTablePointer;

global_asm!(
    r#"
    .pushsection .text.exceptions, "ax"
    .irp vector, 0,1,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
exception_stub_\vector:
    push $0
    push $\vector
    jmp exception_common
    .endr
    .irp vector, 8,10,11,12,13,14,17,21,29,30
exception_stub_\vector:
    push $\vector
    jmp exception_common
    .endr
exception_common:
    mov %rsp, %rdi
    and $-16, %rsp
    call {handler}
    ud2

    /* The CPU aligned the stack to 16 and pushed 5 words; 9 more keep the
       call aligned. */
exception_stub_2:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    cld
    call {nmi}
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq
    .popsection

    .pushsection .rodata.exceptions, "a"
    .balign 8
    .globl exception_stub_table
exception_stub_table:
    .irp vector, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad exception_stub_\vector
    .endr
    .popsection
    "#,
    handler = sym exception_handler,
    nmi = sym nmi_handler,
    options(att_syntax),
);

unsafe extern "C" {
    static exception_stub_table: [u64; 32];
}

/// What the stub and the CPU pushed, lowest address first.
#[repr(C)]
struct ExceptionFrame {
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

/// One 16-byte IDT gate.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}
const _: () = assert!(size_of::<Gate>() == 16);

impl Gate {
    fn interrupt(handler: u64) -> Self {
        Self {
            offset_low: handler as u16,
            selector: 0x08,
            ist: 0,
            attributes: 0x8e, // present, ring 0, 64-bit interrupt gate
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

static IDT: Once<[Gate; 32]> = Once::new();

/// Loads an IDT whose 32 exception gates all lead to [`exception_handler`].
pub fn init_exceptions() {
    let table = IDT.call_once(|| {
        // SAFETY: the table is defined in the assembly above and never written.
        let stubs = unsafe { &exception_stub_table };
        core::array::from_fn(|vector| Gate::interrupt(stubs[vector]))
    });
    let pointer = DescriptorTablePointer {
        limit: (size_of::<[Gate; 32]>() - 1) as u16,
        base: VirtAddr::from_ptr(table.as_ptr()),
    };
    // SAFETY: `table` is a static IDT of valid gates that lives forever.
    unsafe { lidt(&pointer) };
}

/// NMIs taken since boot.
static NMIS: AtomicU64 = AtomicU64::new(0);

/// Called by the NMI stub: counts, nothing else (see the module's comment).
extern "C" fn nmi_handler() {
    NMIS.fetch_add(1, Ordering::Relaxed);
}

/// NMIs taken since boot.
pub fn nmis() -> u64 {
    NMIS.load(Ordering::Relaxed)
}

fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 21] = [
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range",
        "#UD invalid opcode",
        "#NM device not available",
        "#DF double fault",
        "coprocessor segment overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack fault",
        "#GP general protection",
        "#PF page fault",
        "reserved",
        "#MF x87 error",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD error",
        "#VE virtualization",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("reserved")
}

extern "C" fn exception_handler(frame: &ExceptionFrame) -> ! {
    let fault_address = Cr2::read_raw();
    let vector = frame.vector;
    let name = exception_name(vector);
    let (error, rip, rsp) = (frame.error_code, frame.rip, frame.rsp);
    if vector == 14 {
        crate::fatal(format_args!(
            "exception {vector} ({name}): error code {error:#x}, rip {rip:#x}, rsp {rsp:#x}, fault address (cr2) {fault_address:#x}"
        ));
    }
    crate::fatal(format_args!("exception {vector} ({name}): error code {error:#x}, rip {rip:#x}, rsp {rsp:#x}"))
}
