//! The architecture seam. Every `arch/<name>/` module exposes the same names,
//! so the rest of the kernel never writes `cfg(target_arch)`:
//!
//! - `boot`: the entry point; it builds a [`crate::start::BootData`] from what
//!   the hypervisor handed over and calls [`crate::start::start`];
//! - `init_exceptions()`: install handlers that report and crash the domain;
//! - `init_hypervisor()`: find Xen and make hypercalls possible;
//! - `debug_port_write(bytes)`: the earliest output channel;
//! - `trigger_page_fault()`: the `selftest=pagefault` fault;
//! - `halt_forever()`: stop this CPU for good.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;
