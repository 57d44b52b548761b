//! The data path of one turn of the event loop, in one place: at most a
//! budget of frames in ([`crate::budget`]) through the SYN cookies
//! ([`crate::syn_cookies`]) and the IPv4 fragment screen
//! ([`crate::fragments`]); what the caller does with what arrived (the
//! loop reads DHCP's events there); the service; the stack's output through
//! the cookies; the service's SYN pressure and saturated port noted (for
//! the refusal budget, [`crate::refusals`]).
//!
//! [`crate::run`] runs it over netfront; the appliance's host harness runs
//! the same function over a simulated Ethernet hub, so the turn its
//! hostile-client scenarios and fuzz target drive is the guest's.

use crate::budget::Budgeted;
use crate::fragments::{FragmentCounters, FragmentScreen, MAX_FRAGMENTS_PER_REPLY, Screened};
use crate::stats::Stats;
use crate::syn_cookies::{Guarded, SynCookies};
use crate::{InterfaceId, Service};
use smoltcp::iface::{Interface, SocketSet};
use smoltcp::phy::Device;
use smoltcp::time::Instant;

/// What one pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// The budget ran out, or the SYN cookies or the fragment screen ended
    /// the reading early, with frames perhaps still waiting: pass again at
    /// once.
    pub frames_left: bool,
    /// When the service wants to be polled again.
    pub service_deadline: Option<Instant>,
}

/// One pass over interface `id`'s data path at `now` (see the module
/// documentation).
/// `after_ingress` runs once the frames are in; `stats` gathers the
/// counters for a metrics request, from the device, the cookies and the
/// fragment screen's `fragments`.
#[allow(clippy::too_many_arguments)] // the pieces of one turn, borrowed apart
pub fn pass<D: Device, S: Service + ?Sized>(
    interface: &mut Interface,
    device: &mut D,
    cookies: &mut SynCookies,
    fragments: &mut FragmentScreen,
    sockets: &mut SocketSet<'static>,
    service: &mut S,
    id: InterfaceId,
    now: Instant,
    after_ingress: impl FnOnce(&mut Interface, &mut SocketSet<'static>),
    stats: impl Fn(&D, &SynCookies, &FragmentCounters) -> Stats,
) -> Pass {
    fragments.expire(now);
    let mut screened = Screened::new(&mut *device, &mut *fragments);
    let mut guarded = Guarded::new(&mut screened, &mut *cookies);
    let mut budgeted = Budgeted::new(&mut guarded);
    interface.poll(now, &mut budgeted, sockets);
    let frames_left = budgeted.exhausted() || guarded.stopped_early() || screened.closed();
    after_ingress(interface, sockets);
    let service_deadline = {
        let counters = fragments.counters();
        let (device, cookies) = (&*device, &*cookies);
        service.poll(id, sockets, now, &|| stats(device, cookies, &counters))
    };
    // The stack's output; then the rest of a fragmented datagram (one
    // fragment goes out per egress poll), so that it is whole before a
    // later frame can complete another; not while the ring takes none.
    for _ in 0..=MAX_FRAGMENTS_PER_REPLY {
        let sent = fragments.fragments_sent();
        let mut screened = Screened::new(&mut *device, &mut *fragments);
        interface.poll_egress(now, &mut Guarded::new(&mut screened, &mut *cookies), sockets);
        if !fragments.sending() || fragments.fragments_sent() == sent {
            break;
        }
    }
    cookies.note_pressure(service.syn_pressure(id), now);
    cookies.note_saturated(service.saturated_port(id), now);
    Pass { frames_left, service_deadline }
}
