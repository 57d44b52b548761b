//! x86_64 PVH glue: entry, page tables, exceptions, port I/O, Xen detection.

mod boot;
mod exceptions;

pub use exceptions::init_exceptions;

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

/// Finds Xen through CPUID and installs the hypercall page.
/// Returns Xen's (major, minor) version.
pub fn init_hypervisor() -> Option<(u32, u32)> {
    let signature = xen_pv::hypercall::detect_xen()?;
    // SAFETY: called once at boot, before any hypercall, with the kernel
    // identity-mapped by the boot page tables.
    unsafe { xen_pv::hypercall::install_hypercall_page(signature) };
    Some((signature.major, signature.minor))
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
