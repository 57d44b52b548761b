//! Where the interface's IPv4 address is published in xenstore, for dom0's
//! tools and toolstacks:
//!
//! - `data/ipv4-address` ([`ADDRESS_KEY`]): this appliance's own key, which
//!   the test host, its scripts and operators read;
//! - `attr/vif/<dev>/ipv4/0` ([`vif_address_key`]): Xen's convention for the
//!   addresses of a vif (`<dev>` is its device number: 0 for
//!   `device/vif/0`), which toolstacks and their consoles read.
//!
//! Both are written when the interface gets an address (a DHCP lease, or
//! the static one) and removed when it loses it (the lease is lost). The
//! interface outlives the vif's frontends: when the vif comes back under
//! another device number, the address moves to that number's key, and the
//! old one is removed. While the vif is away, the keys stay as they are.
//!
//! [`AddressKeys::changes`] decides what to write and remove (pure, and
//! tested here); [`AddressKeys::set_address`] and [`AddressKeys::set_vif`]
//! do it. A failed write or removal is said in the log and not retried (the
//! keys are for display and for finding the guest, not for routing).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use xen_pv::Hypervisor;
use xen_pv::xenstore::{Xenstore, XenstoreError};

/// The appliance's own address key, relative to the domain's home path.
pub const ADDRESS_KEY: &str = "data/ipv4-address";

/// The key of the first IPv4 address of vif number `vif`, relative to the
/// domain's home path.
pub fn vif_address_key(vif: u32) -> String {
    format!("attr/vif/{vif}/ipv4/0")
}

/// The device number of a vif's frontend directory (`device/vif/0`: 0).
pub fn vif_number(frontend_path: &str) -> Option<u32> {
    frontend_path.strip_prefix("device/vif/")?.parse().ok()
}

/// One change to xenstore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write `value` at `key`.
    Write {
        /// The key, relative to the domain's home path.
        key: String,
        /// The address.
        value: String,
    },
    /// Remove `key`.
    Remove {
        /// The key, relative to the domain's home path.
        key: String,
    },
}

/// What is published: the address, and the vif number it is published
/// under (the last vif the interface had).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AddressKeys {
    address: Option<String>,
    vif: Option<u32>,
}

impl AddressKeys {
    /// The address published, if any.
    pub fn address(&self) -> Option<&str> {
        self.address.as_deref()
    }

    /// The vif number the address is (or will be) published under.
    pub fn vif(&self) -> Option<u32> {
        self.vif
    }

    /// The changes that take xenstore from what is published to `address`
    /// (none: the interface has no address) under vif number `vif` (none:
    /// not known yet), in order: the appliance's key first, then the vif's
    /// (an old vif number's key removed before the new one is written).
    pub fn changes(&self, address: Option<&str>, vif: Option<u32>) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.address.as_deref() != address {
            changes.push(match address {
                Some(address) => Change::Write { key: ADDRESS_KEY.to_string(), value: address.to_string() },
                None => Change::Remove { key: ADDRESS_KEY.to_string() },
            });
        }
        let old = self.vif.zip(self.address.as_deref());
        let new = vif.zip(address);
        if old != new {
            if let Some((old_vif, _)) = old
                && new.map(|(vif, _)| vif) != Some(old_vif)
            {
                changes.push(Change::Remove { key: vif_address_key(old_vif) });
            }
            if let Some((vif, address)) = new {
                changes.push(Change::Write { key: vif_address_key(vif), value: address.to_string() });
            }
        }
        changes
    }

    /// Publishes `address` (or removes it: `None`) under the vif number
    /// already known.
    pub fn set_address<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>, address: Option<&str>) {
        self.update(store, address.map(String::from), self.vif);
    }

    /// The vif is now number `vif`: the address, if any, moves there.
    pub fn set_vif<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>, vif: u32) {
        self.update(store, self.address.clone(), Some(vif));
    }

    /// After a resume in a new domain, whose home in xenstore is new and
    /// empty: writes the address, if any, again (under the vif number known
    /// so far; the reconnected vif moves it if its number changed).
    pub fn resumed<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>) {
        let address = self.address.take();
        self.update(store, address, self.vif);
    }

    /// Makes xenstore hold `address` under `vif` ([`Self::changes`]).
    fn update<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>, address: Option<String>, vif: Option<u32>) {
        for change in self.changes(address.as_deref(), vif) {
            let outcome = match &change {
                Change::Write { key, value } => store.write(key, value),
                // Already gone (or its parent never made): what was wanted.
                Change::Remove { key } => store.rm(key).or_else(|error| match error {
                    XenstoreError::NotFound => Ok(()),
                    error => Err(error),
                }),
            };
            if let Err(error) = outcome {
                log::warn!("publishing the address in xenstore ({change:?}): {error:?}");
            }
        }
        self.address = address;
        self.vif = vif;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, value: &str) -> Change {
        Change::Write { key: key.to_string(), value: value.to_string() }
    }

    fn remove(key: &str) -> Change {
        Change::Remove { key: key.to_string() }
    }

    fn published(address: Option<&str>, vif: Option<u32>) -> AddressKeys {
        AddressKeys { address: address.map(String::from), vif }
    }

    #[test]
    fn vif_numbers_come_from_the_frontend_directory() {
        assert_eq!(vif_number("device/vif/0"), Some(0));
        assert_eq!(vif_number("device/vif/12"), Some(12));
        assert_eq!(vif_number("device/vif/eth0"), None);
        assert_eq!(vif_number("device/vbd/0"), None);
        assert_eq!(vif_address_key(3), "attr/vif/3/ipv4/0");
    }

    #[test]
    fn an_address_is_written_in_both_places() {
        let nothing = AddressKeys::default();
        assert_eq!(
            nothing.changes(Some("10.0.0.2"), Some(0)),
            [write("data/ipv4-address", "10.0.0.2"), write("attr/vif/0/ipv4/0", "10.0.0.2")]
        );
        // With no vif known yet, only the appliance's key.
        assert_eq!(nothing.changes(Some("10.0.0.2"), None), [write("data/ipv4-address", "10.0.0.2")]);
        // Once the vif is known, its key follows.
        assert_eq!(
            published(Some("10.0.0.2"), None).changes(Some("10.0.0.2"), Some(0)),
            [write("attr/vif/0/ipv4/0", "10.0.0.2")]
        );
    }

    #[test]
    fn a_lost_address_is_removed_from_both_places() {
        assert_eq!(
            published(Some("10.0.0.2"), Some(0)).changes(None, Some(0)),
            [remove("data/ipv4-address"), remove("attr/vif/0/ipv4/0")]
        );
        assert_eq!(published(None, Some(0)).changes(None, Some(0)), [], "nothing was published");
    }

    #[test]
    fn a_new_address_replaces_the_old_one() {
        assert_eq!(
            published(Some("10.0.0.2"), Some(0)).changes(Some("10.0.0.7"), Some(0)),
            [write("data/ipv4-address", "10.0.0.7"), write("attr/vif/0/ipv4/0", "10.0.0.7")]
        );
        assert_eq!(published(Some("10.0.0.2"), Some(0)).changes(Some("10.0.0.2"), Some(0)), [], "a renewed lease");
    }

    #[test]
    fn the_address_moves_with_the_vif_number() {
        assert_eq!(
            published(Some("10.0.0.2"), Some(0)).changes(Some("10.0.0.2"), Some(1)),
            [remove("attr/vif/0/ipv4/0"), write("attr/vif/1/ipv4/0", "10.0.0.2")]
        );
        // A new vif number with no address: nothing in xenstore to move.
        assert_eq!(published(None, Some(0)).changes(None, Some(1)), []);
    }
}
