//! The smallest guest on the production event loop (`runtime::run` on the
//! simulated Xen, with the real appliance): a 4 MB x86_64 guest's heap, as
//! boot makes it from the memory map (`kernel::memory::pvh_layout`), sized
//! as the command line's defaults size it, serving 16 clients at once and
//! a metrics scrape. Everything the guest allocates is counted (what dom0
//! and the simulated backend allocate is not), and its peak, with what this
//! run does not reach, must fit in that heap.

use crate::Appliance;
use crate::drain_tests::{Client, connect_to};
use dma::sim::SimPageSource;
use runtime::testing::{Dom0, SimPlatform, World};
use runtime::{NetConfig, RuntimeConfig, ShutdownRequest};
use std::vec::Vec;
use xen_pv::event_channel::EventChannels;
use xen_sim::SimXen;
use xen_sim::netback::NetbackOptions;

/// Simulated time after which the world gives up.
const GIVE_UP_NS: u64 = 60_000_000_000;
/// Each client's POST body.
const BODY_BYTES: usize = 20_000;
/// Clients at once, as the smallest-memory probe of `make bench` opens.
const CLIENTS: usize = 16;

/// Dom0: once the guest has an address, 16 clients POST a body each (the
/// echo comes back), one scrapes the metrics; once all are answered, or the
/// time is up, dom0 asks the domain to end.
struct Load<'x> {
    dom0: Dom0<'x>,
    request: &'static [u8],
    clients: Vec<Client>,
    scrape: Option<Client>,
    asked: bool,
}

impl Load<'_> {
    fn answered(&self) -> bool {
        let echoed = |client: &Client| client.received.len() > BODY_BYTES;
        self.clients.len() == CLIENTS
            && self.clients.iter().all(echoed)
            && self.scrape.as_ref().is_some_and(|scrape| scrape.received.ends_with(b"\n"))
    }
}

impl World for Load<'_> {
    fn step(&mut self, xen: &SimXen) {
        // Dom0's allocations are not the guest's.
        allocation_counter::opt_out(|| {
            self.dom0.step(xen);
            for client in self.clients.iter_mut().chain(self.scrape.as_mut()) {
                client.step(&mut self.dom0);
            }
            if self.clients.is_empty() && self.dom0.published_address(xen).is_some() {
                for index in 0..CLIENTS {
                    self.clients.push(Client::new(&mut self.dom0, 40_000 + index as u16, self.request, true));
                }
                let scrape: &'static [u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
                let handle = connect_to(&mut self.dom0, crate::DEFAULT_METRICS_PORT, 45_000, 64 * 1024);
                let (sent, received, established) = (0, Vec::new(), false);
                self.scrape = Some(Client { handle, request: scrape, sent, reads: true, received, established });
            }
            if !self.asked && (self.answered() || xen.now() > GIVE_UP_NS) {
                self.dom0.request_shutdown(xen);
                self.asked = true;
            }
        });
    }
}

#[test]
fn a_4_mb_guest_serves_16_clients_within_its_heap() {
    let layout = kernel::memory::pvh_layout(4 << 20, kernel::memory::PVH_IMAGE_END_BOUND, None).unwrap();
    let heap = (layout.heap.end - layout.heap.start) as usize;
    let settings = crate::config::Config::read("", heap).settings;
    assert!(settings.http.connections >= CLIENTS, "{:?}", settings.http);
    // The guest's RAM for pages: what boot left after the heap.
    let xen: &'static SimXen = Box::leak(Box::new(SimXen::with_memory_pages(4, layout.free_frames as usize)));
    let events = Box::leak(Box::new(EventChannels::new(xen, xen.shared_info())));
    let pages = Box::leak(Box::new(SimPageSource::new(xen.grants())));
    let mut request = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_BYTES}\r\n\r\n").into_bytes();
    request.resize(request.len() + BODY_BYTES, b'p');
    let world = Load {
        dom0: Dom0::new(xen, NetbackOptions::default()),
        request: Box::leak(request.into_boxed_slice()),
        clients: Vec::new(),
        scrape: None,
        asked: false,
    };
    let platform = SimPlatform::new(xen, events, pages, world);
    let config = RuntimeConfig { drain: core::time::Duration::from_secs(1), ..RuntimeConfig::new(NetConfig::Dhcp) };
    let mut appliance = Appliance::new(&settings);
    let mut ended = None;
    let guest = allocation_counter::measure(|| ended = Some(runtime::run(&platform, &config, &mut appliance)));
    assert_eq!(ended, Some(ShutdownRequest::Poweroff));
    let world = platform.into_world();
    assert!(world.answered(), "every client answered within the time");
    assert_eq!(appliance.http().refused, 0, "no 503");
    assert_eq!(appliance.http().counters().requests, CLIENTS as u64);
    // What this run does not reach: IPv4 reassembly's 4 datagrams of up to
    // 16 KiB each (smoltcp keeps them once used) and a large received
    // segment's copy (up to 64 KiB, fallible: a frame dropped without it).
    // And the kernel's allocator rounds each block up to 16 bytes and may
    // pad it to its alignment: 32 bytes for each block held at the peak.
    let unreached = 4 * 16 * 1024 + 64 * 1024;
    let rounding = 32 * guest.count_max as usize;
    let need = guest.bytes_max as usize + unreached + rounding;
    assert!(
        need <= heap,
        "the guest's peak {} KiB, with {} KiB unreached and {} KiB of rounding, exceeds its {} KiB heap",
        guest.bytes_max / 1024,
        unreached / 1024,
        rounding / 1024,
        heap / 1024
    );
}
