//! The domain's identity as the runtime reads it from xenstore
//! ([`runtime::Instance::read`]), against the simulated xenstored: the
//! keys the toolstack writes, keys missing, and a `domid` that is not a
//! domain id.
#![forbid(unsafe_code)]

use runtime::Instance;
use xen_pv::event_channel::EventChannels;
use xen_pv::xenstore::Xenstore;
use xen_sim::xenstore::GUEST_HOME;
use xen_sim::{SimXen, XENSTORE_PORT};

fn read_instance(xen: &SimXen) -> Instance {
    let events = EventChannels::new(xen, xen.shared_info());
    let mut store = Xenstore::new(&events, xen.xenstore_ring(), XENSTORE_PORT, SimXen::clock());
    Instance::read(&mut store)
}

fn write_as_toolstack(xen: &SimXen, key: &str, value: &str) {
    xen.with_xenstore(|store| store.write_as_dom0(&format!("{GUEST_HOME}/{key}"), value));
}

#[test]
fn the_name_and_domain_id_the_toolstack_wrote_are_read() {
    let xen = SimXen::new(4);
    write_as_toolstack(&xen, "name", "xenecho-7");
    write_as_toolstack(&xen, "domid", "1");
    assert_eq!(read_instance(&xen), Instance { name: Some("xenecho-7".into()), domid: Some(1) });
}

#[test]
fn what_cannot_be_read_is_none() {
    let xen = SimXen::new(4);
    assert_eq!(read_instance(&xen), Instance::default(), "no keys");
    write_as_toolstack(&xen, "name", "odd \"name\"\twith\u{1}bytes");
    write_as_toolstack(&xen, "domid", "one");
    let instance = read_instance(&xen);
    assert_eq!(instance.name.as_deref(), Some("odd \"name\"\twith\u{1}bytes"), "kept as bytes, unsanitised");
    assert_eq!(instance.domid, None, "not a number");
    write_as_toolstack(&xen, "domid", "70000");
    assert_eq!(read_instance(&xen).domid, None, "not a 16-bit domain id");
}
