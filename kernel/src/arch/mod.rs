//! The architecture seam. Every `arch/<name>/` module exposes the same names,
//! so the rest of the kernel never writes `cfg(target_arch)`:
//!
//! - `boot`: the entry point; it builds a [`crate::start::BootData`] from what
//!   the hypervisor handed over and calls [`crate::start::start`];
//! - `init_exceptions()`: install handlers that report and crash the domain;
//! - `init_hypervisor()`: find Xen and make hypercalls possible;
//! - `debug_port_write(bytes)`: the earliest output channel;
//! - `serial_write(bytes)`: the first serial port, for fatal errors before
//!   Xen is found (x86_64: COM1 at 0x3f8; aarch64: nothing more, the UART
//!   `debug_port_write` writes is the first serial port);
//! - `trigger_page_fault()`: the `selftest=pagefault` fault;
//! - `halt_forever()`: stop this CPU for good;
//! - `system_time(&SharedInfo)`: Xen system time, ns since the domain
//!   started (x86_64: the pvclock and the TSC; aarch64: the generic timer's
//!   virtual counter), and `clock_frequency(&SharedInfo)`, the counter's
//!   rate; `CLOCK_NAME` names that counter in the log;
//! - `XEN_EVIDENCE`: what `init_hypervisor` looks for, for its error;
//! - `log_platform()`: log what the boot code learnt about the platform
//!   (aarch64: the device tree's facts), once the logger exists;
//! - `SUSPENDS`: whether the domain can be suspended (x86_64 PVH; Xen has
//!   no save or migration on ARM), and `after_resume_in_new_domain()`, the
//!   architecture's first step in a new domain (x86_64: the hypercall page
//!   written again, for a host whose CPU vendor differs).
//!
//! The boot code also decides where Xen's pages go (the `foreign_area` of
//! [`crate::start::BootData`]): x86_64 picks a hole of the memory map below
//! 4 GiB, aarch64 the regions the device tree's `hypervisor` node names.
//! The layout of the shared info page comes with the hypercall module
//! (`xen_pv::hypercall::SharedInfo`).

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)] // the machine itself: entry, page tables, MMU, vectors, MMIO
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::*;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // the machine itself: entry, page tables, IDT, port I/O, TSC
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;
