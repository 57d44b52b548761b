//! Scheduler operations (`sched.h`).

use crate::abi::event_channel::Port;
use crate::{assert_abi_offset, assert_abi_size};

/// `SCHEDOP_yield`: give up the CPU, stay runnable.
pub const SCHEDOP_YIELD: u32 = 0;
/// `SCHEDOP_block`: sleep until an event is pending.
pub const SCHEDOP_BLOCK: u32 = 1;
/// `SCHEDOP_shutdown`: end the domain with a [`ShutdownReason`].
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// `SCHEDOP_poll`: sleep until one of a set of ports is pending, or a timeout.
pub const SCHEDOP_POLL: u32 = 3;

/// `SHUTDOWN_*` reasons.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    /// `SHUTDOWN_poweroff`: a clean end.
    Poweroff = 0,
    /// `SHUTDOWN_reboot`: restart the domain.
    Reboot = 1,
    /// `SHUTDOWN_suspend`: save and stop.
    Suspend = 2,
    /// `SHUTDOWN_crash`: the guest failed.
    Crash = 3,
}

/// `struct sched_shutdown`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SchedShutdown {
    /// A [`ShutdownReason`] value.
    pub reason: u32,
}
assert_abi_size!(SchedShutdown, 4);

/// `struct sched_poll`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SchedPoll {
    /// Guest handle: address of an array of ports.
    pub ports: *const Port,
    /// Number of ports in the array.
    pub nr_ports: u32,
    /// Padding.
    pub pad: u32,
    /// Absolute deadline in system time (ns); 0 waits without a deadline.
    pub timeout: u64,
}
assert_abi_size!(SchedPoll, 24);
assert_abi_offset!(SchedPoll, nr_ports, 8);
assert_abi_offset!(SchedPoll, timeout, 16);
