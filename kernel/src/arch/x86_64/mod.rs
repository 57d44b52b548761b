//! x86_64 PVH glue: entry, page tables, exceptions, port I/O, Xen detection.

mod boot;
mod exceptions;

pub use exceptions::{init_exceptions, nmis};

use x86_64::instructions::port::Port;
use xen_pv::hypercall::SharedInfo;
use xen_pv::time::PvClockSnapshot;

/// The port Xen's HVM emulation prints to its own console as `(dN) ...`.
const DEBUG_PORT: u16 = 0xe9;

/// Writes `bytes` to the debug port.
pub fn debug_port_write(bytes: &[u8]) {
    let mut port = Port::<u8>::new(DEBUG_PORT);
    for &byte in bytes {
        // SAFETY: the debug port only prints what it is given; writing it
        // has no effect on memory.
        unsafe { port.write(byte) };
    }
}

/// COM1, the first serial port of a PC.
const COM1: u16 = 0x3f8;
/// How often a write checks a busy transmitter before writing anyway.
const SERIAL_PATIENCE: u32 = 100_000;

/// Writes `bytes` to COM1 (115200 8N1, each `\n` as `\r\n`): for failures
/// when Xen is not there, so that a plain emulator or PC shows them. Xen's
/// PVH guests have no serial port: their port I/O there goes nowhere.
pub fn serial_write(bytes: &[u8]) {
    static SET_UP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    let register = |offset: u16| Port::<u8>::new(COM1 + offset);
    if !SET_UP.swap(true, core::sync::atomic::Ordering::Relaxed) {
        // Interrupts off; divisor 1 (115200 baud); 8 bits, no parity, one
        // stop bit; FIFOs on and cleared; DTR and RTS.
        for (offset, value) in [(1, 0x00), (3, 0x80), (0, 0x01), (1, 0x00), (3, 0x03), (2, 0xc7), (4, 0x03)] {
            // SAFETY: COM1's registers configure the UART alone (no DMA, no
            // interrupts: they are switched off first); on a machine without
            // one the writes go nowhere.
            unsafe { register(offset).write(value) };
        }
    }
    let send = |byte: u8| {
        let mut patience = SERIAL_PATIENCE;
        // SAFETY: reading the line status register has no side effect.
        while unsafe { register(5).read() } & 0x20 == 0 && patience > 0 {
            patience -= 1;
            core::hint::spin_loop();
        }
        // SAFETY: writing the data register sends one byte, nothing more.
        unsafe { register(0).write(byte) };
    };
    for &byte in bytes {
        if byte == b'\n' {
            send(b'\r');
        }
        send(byte);
    }
}

/// Finds Xen through CPUID and installs the hypercall page.
/// Returns Xen's (major, minor) version.
pub fn init_hypervisor() -> Option<(u32, u32)> {
    let signature = xen_pv::hypercall::detect_xen()?;
    // SAFETY: called once at boot, before any hypercall, with the kernel
    // identity-mapped by the boot page tables.
    unsafe { xen_pv::hypercall::install_hypercall_page(signature) };
    Some((signature.major, signature.minor))
}

/// A PVH domain can be suspended (saved, restored, migrated).
pub const SUSPENDS: bool = true;

/// The first step in a new domain after a resume: the hypercall page is
/// written again (the same MSR write as at boot), so that a domain
/// migrated to a host of the other CPU vendor makes its hypercalls with
/// that host's instruction.
pub fn after_resume_in_new_domain() {
    if let Some(signature) = xen_pv::hypercall::detect_xen() {
        // SAFETY: the same call as at boot, with the kernel still
        // identity-mapped by the boot page tables; no hypercall is in
        // progress (this is the only vCPU, and it runs this).
        unsafe { xen_pv::hypercall::install_hypercall_page(signature) };
    }
}

/// Logs the platform facts the boot code found (the memory map and the
/// command line are the appliance's to print; nothing else to say on PVH).
pub fn log_platform() {}

/// What says Xen is there (for the error when it is not).
pub const XEN_EVIDENCE: &str = "Xen's CPUID leaves";

/// The counter system time comes from, for the log.
pub const CLOCK_NAME: &str = "TSC";

/// Reads the time-stamp counter (the pvclock's time base).
fn read_timestamp_counter() -> u64 {
    // SAFETY: `rdtsc` only reads the counter (every x86_64 CPU has it).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Xen system time (ns since the domain started): the pvclock Xen keeps in
/// vCPU 0's `vcpu_info`, advanced by the TSC.
pub fn system_time(shared: &SharedInfo) -> u64 {
    PvClockSnapshot::read(&shared.vcpu_info[0].time).system_time_at(read_timestamp_counter())
}

/// The TSC frequency the pvclock implies.
pub fn clock_frequency(shared: &SharedInfo) -> u64 {
    PvClockSnapshot::read(&shared.vcpu_info[0].time).tsc_frequency()
}

/// An address the boot page tables leave unmapped (they cover 4 GiB).
const UNMAPPED_ADDRESS: u64 = 0x0000_0008_dead_b000;

/// Reads from an unmapped address: the `selftest=pagefault` fault.
pub fn trigger_page_fault() -> ! {
    // SAFETY: the address is canonical and not mapped, so the read faults
    // before it returns anything; the page-fault handler never returns.
    let value = unsafe { core::ptr::read_volatile(UNMAPPED_ADDRESS as *const u64) };
    panic!("read of unmapped address {UNMAPPED_ADDRESS:#x} returned {value:#x}");
}

/// Stops this CPU for good (interrupts stay off).
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
