//! Which domain the appliance runs as: its name and domain id, as the
//! toolstack wrote them in xenstore when it made the domain.
//!
//! The toolstack (libxl) writes `name` and `domid` under the domain's home
//! path (`/local/domain/<domid>/`), where the domain itself may read them.
//! [`crate::run`] reads both before the service starts, and again after a
//! resume in a new domain (its domain id is new), and hands them to it
//! ([`crate::Service::identify`]), so that a service can say which instance
//! answered. A key that cannot be read (missing, refused, not a number) is
//! `None`; nothing is read at other times (an `xl rename` after boot is not
//! seen until the next move).
//!
//! Never: trust the values further than a string of bytes (a name may hold
//! anything xenstore allows; a service sanitises it before it writes it
//! anywhere).

use alloc::string::String;
use xen_pv::Hypervisor;
use xen_pv::abi::DomainId;
use xen_pv::xenstore::Xenstore;

/// The domain's `name` key, relative to its home path.
pub const NAME_KEY: &str = "name";
/// The domain's `domid` key, relative to its home path.
pub const DOMID_KEY: &str = "domid";

/// What the toolstack says this domain is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Instance {
    /// The domain's name (`xl list`'s first column), as xenstore holds it.
    pub name: Option<String>,
    /// The domain id.
    pub domid: Option<DomainId>,
}

impl Instance {
    /// Reads `name` and `domid` from the domain's home path; what cannot be
    /// read is `None` (and logged).
    pub fn read<H: Hypervisor>(store: &mut Xenstore<'_, H>) -> Instance {
        let mut read = |key: &str| match store.read(key) {
            Ok(value) => Some(String::from(value.trim_end_matches('\0'))),
            Err(error) => {
                log::warn!("xenstore: cannot read the domain's {key}: {error:?}");
                None
            }
        };
        let name = read(NAME_KEY);
        let domid = read(DOMID_KEY).and_then(|text| {
            let parsed = text.parse().ok();
            if parsed.is_none() {
                log::warn!("xenstore: the domain's {DOMID_KEY} is not a domain id: {text:?}");
            }
            parsed
        });
        Instance { name, domid }
    }
}
