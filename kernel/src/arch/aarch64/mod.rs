//! aarch64 Xen guest glue: entry and page tables, exceptions, the emulated
//! UART as the earliest output, Xen found through the device tree, time
//! from the generic timer.

mod boot;
mod exceptions;

pub use boot::log_platform;
pub use exceptions::init_exceptions;

use crate::devicetree::DeviceTree;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use xen_pv::hypercall::SharedInfo;

/// What says Xen is there (for the error when it is not).
pub const XEN_EVIDENCE: &str = "a `xen,xen` hypervisor node in the device tree";

/// The counter system time comes from, for the log.
pub const CLOCK_NAME: &str = "generic timer";

/// Xen has no save, restore or migration on ARM.
pub const SUSPENDS: bool = false;

/// NMIs taken: none on ARM (`xl trigger nmi` is x86 only).
pub fn nmis() -> u64 {
    0
}

/// Never reached: an ARM domain is never suspended.
pub fn after_resume_in_new_domain() {}

/// The PL011/SBSA UART's MMIO base (Xen's `vuart = "sbsa_uart"`); 0 if the
/// device tree has none.
static UART_BASE: AtomicU64 = AtomicU64::new(0);
/// Whether the device tree has a `xen,xen` node.
static XEN_NODE: AtomicBool = AtomicBool::new(false);

/// UART data register.
const UARTDR: u64 = 0x00;
/// UART flag register and its "transmit FIFO full" bit.
const UARTFR: u64 = 0x18;
const UARTFR_TXFF: u32 = 1 << 5;
/// How often a write checks a full FIFO before writing anyway.
const UART_PATIENCE: u32 = 10_000;

/// Keeps what the rest of this module needs from the device tree.
fn set_device_tree_facts(tree: &DeviceTree) {
    if let Some(base) = tree.uart {
        UART_BASE.store(base, Ordering::Relaxed);
    }
    XEN_NODE.store(tree.xen_compatible().is_some(), Ordering::Relaxed);
}

/// Writes `bytes` to the emulated UART (`xl console -t vuart`), if the
/// domain has one; Xen forwards every byte to xenconsoled.
pub fn debug_port_write(bytes: &[u8]) {
    let base = UART_BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    for &byte in bytes {
        let mut patience = UART_PATIENCE;
        // SAFETY: `base` is the UART's MMIO page from the device tree, which
        // the boot page tables map as Device memory (below the grant-table
        // region); reading the flag register has no side effect.
        while unsafe { core::ptr::read_volatile((base + UARTFR) as *const u32) } & UARTFR_TXFF != 0 && patience > 0 {
            patience -= 1;
            core::hint::spin_loop();
        }
        // SAFETY: as above; writing the data register sends one byte.
        unsafe { core::ptr::write_volatile((base + UARTDR) as *mut u32, u32::from(byte)) };
    }
}

/// The first serial port, for failures when Xen is not there: on ARM64
/// that is the UART of the device tree, which [`debug_port_write`] writes
/// already, so nothing more.
pub fn serial_write(_bytes: &[u8]) {}

/// Checks the device tree named Xen and asks Xen its version.
pub fn init_hypervisor() -> Option<(u32, u32)> {
    if !XEN_NODE.load(Ordering::Relaxed) {
        return None;
    }
    xen_pv::hypercall::xen_version().ok()
}

/// Xen system time as this guest sees it: the virtual counter in ns (Xen
/// on ARM keeps no pvclock).
pub fn system_time(_shared: &SharedInfo) -> u64 {
    xen_pv::hypercall::system_time()
}

/// The generic timer's frequency.
pub fn clock_frequency(_shared: &SharedInfo) -> u64 {
    xen_pv::hypercall::counter_frequency()
}

/// An address the boot page tables leave unmapped (between 4 and 8 GiB).
const UNMAPPED_ADDRESS: u64 = 0x0000_0008_dead_b000;

/// Reads from an unmapped address: the `selftest=pagefault` fault.
pub fn trigger_page_fault() -> ! {
    // SAFETY: the address is not mapped, so the read takes a translation
    // fault before it returns anything; the exception handler never returns.
    let value = unsafe { core::ptr::read_volatile(UNMAPPED_ADDRESS as *const u64) };
    panic!("read of unmapped address {UNMAPPED_ADDRESS:#x} returned {value:#x}");
}

/// Stops this CPU for good (interrupts stay masked).
pub fn halt_forever() -> ! {
    loop {
        aarch64_cpu::asm::wfi();
    }
}
