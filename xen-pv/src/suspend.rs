//! Suspending the domain, and telling how it came back.
//!
//! The guest suspends with `SCHEDOP_shutdown(SHUTDOWN_suspend)` once it has
//! acknowledged the toolstack's `suspend` request. The call returns in one
//! of two worlds:
//!
//! - **Cancelled**: the toolstack resumed this same domain (the save
//!   failed, or it was a checkpoint). Everything Xen and dom0 had set up
//!   for it is still there: ports, grants, the xenstore connection.
//! - **Resumed in a new domain**: the domain was saved and restored (or
//!   migrated). Its memory is the same, but Xen and the toolstack made the
//!   rest anew: the shared info page is not mapped, no port is bound but
//!   the xenstore and console channels the toolstack allocated (under new
//!   numbers), the grant table is empty, and xenstore's connection has no
//!   watches.
//!
//! Xen reports a cancellation by making the hypercall return 1, but only
//! when the toolstack asks it to, and libxc does so for an HVM or PVH guest
//! only if `HVM_PARAM_CALLBACK_IRQ` is set, which this guest never sets (it
//! takes no event interrupts). So a 0 does not prove a new domain. The
//! guest asks Xen instead: a port it bound itself to a virtual IRQ before
//! suspending (the timer's, `probe`) is still bound to that VIRQ only in
//! the same domain; a new domain has no VIRQ bound at all. That answer
//! decides; a 1 from the hypercall is taken at its word.
//!
//! Never: take a new domain for the old one (the guest would sleep on
//! ports that no longer exist) or the old one for a new one without the
//! checks that keep that safe (the grant table refuses to forget grants
//! that Xen still shows: `grant_table::GrantTable::reset_after_resume`).

use crate::abi::event_channel::Port;
use crate::hypervisor::{Hypervisor, PortStatus, XenError};

/// How a suspended domain came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspendOutcome {
    /// Restored in a new domain: everything Xen and the toolstack provide
    /// was made anew and must be set up again.
    Resumed,
    /// The suspend was cancelled: the same domain runs on, nothing changed.
    Cancelled,
}

/// Suspends the domain (`SCHEDOP_shutdown(SHUTDOWN_suspend)`) and tells how
/// it came back. `probe` is a port the guest bound to virtual IRQ
/// `probe_virq` on vCPU 0 and still holds.
///
/// A failing suspend hypercall is returned as its error (the domain never
/// stopped). A failing status query after a 0 is taken as a new domain: in
/// the old one every re-binding would fail harmlessly, while taking a new
/// domain for the old one would leave the guest waiting on ports that are
/// gone.
pub fn suspend<H: Hypervisor>(hypervisor: &H, probe: Port, probe_virq: u32) -> Result<SuspendOutcome, XenError> {
    if hypervisor.suspend()? == 1 {
        return Ok(SuspendOutcome::Cancelled);
    }
    Ok(match hypervisor.event_channel_status(probe) {
        Ok(PortStatus::Virq { virq, vcpu: 0 }) if virq == probe_virq => SuspendOutcome::Cancelled,
        _ => SuspendOutcome::Resumed,
    })
}
