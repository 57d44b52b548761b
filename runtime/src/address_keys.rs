//! Where the interface's addresses are published in xenstore, for dom0's
//! tools and toolstacks:
//!
//! - `data/ipv4-address` ([`ADDRESS_KEY`]): this appliance's own key, which
//!   the test host, its scripts and operators read;
//! - `attr/vif/<dev>/ipv4/0` ([`vif_address_key`]): Xen's convention for the
//!   addresses of a vif (`<dev>` is its device number: 0 for
//!   `device/vif/0`), which toolstacks and their consoles read;
//! - `attr/vif/<dev>/ipv6/<n>` ([`vif_ipv6_key`]): the vif's IPv6
//!   addresses, `n` from 0 with no gap: the link-local address first, then
//!   the static `ip6=`, then those router advertisements brought, in the
//!   order they came. When one goes, those after it move down one number.
//!
//! The IPv4 keys are written when the interface gets an address (a DHCP
//! lease, or the static one) and removed when it loses it (the lease is
//! lost); each IPv6 key when its address appears, and removed when it goes
//! (its lifetime ends). The
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

/// The key of IPv6 address number `index` of vif number `vif`, relative to
/// the domain's home path.
pub fn vif_ipv6_key(vif: u32, index: usize) -> String {
    format!("attr/vif/{vif}/ipv6/{index}")
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

/// What is published: the address, the IPv6 addresses, and the vif number
/// they are published under (the last vif the interface had).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AddressKeys {
    address: Option<String>,
    ipv6: Vec<String>,
    vif: Option<u32>,
    /// The vif's keys only, not [`ADDRESS_KEY`] (an interface beside the
    /// main one).
    vif_only: bool,
}

impl AddressKeys {
    /// Keys for an interface beside the main one: its vif's keys only;
    /// [`ADDRESS_KEY`] is the main interface's.
    pub fn for_vif_only() -> Self {
        Self { vif_only: true, ..Self::default() }
    }

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
        if !self.vif_only && self.address.as_deref() != address {
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

    /// The IPv6 addresses published, in key order.
    pub fn ipv6(&self) -> &[String] {
        &self.ipv6
    }

    /// The changes that take the vif's IPv6 keys from what is published to
    /// `addresses` (in key order) under vif number `vif`: under the same
    /// number, each key whose address differs written and the keys past
    /// the new list removed; under a new one, the old number's keys removed
    /// first, then all written. Nothing is published with no vif known.
    pub fn ipv6_changes(&self, addresses: &[String], vif: Option<u32>) -> Vec<Change> {
        let mut changes = Vec::new();
        let published: &[String] = if self.vif.is_some() { &self.ipv6 } else { &[] };
        let kept = if self.vif == vif { published } else { &[] };
        if self.vif != vif
            && let Some(old_vif) = self.vif
        {
            changes.extend((0..published.len()).map(|index| Change::Remove { key: vif_ipv6_key(old_vif, index) }));
        }
        let Some(vif) = vif else { return changes };
        for (index, address) in addresses.iter().enumerate() {
            if kept.get(index) != Some(address) {
                changes.push(Change::Write { key: vif_ipv6_key(vif, index), value: address.clone() });
            }
        }
        changes.extend((addresses.len()..kept.len()).map(|index| Change::Remove { key: vif_ipv6_key(vif, index) }));
        changes
    }

    /// Publishes `address` (or removes it: `None`) under the vif number
    /// already known.
    pub fn set_address<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>, address: Option<&str>) {
        let ipv6 = self.ipv6.clone();
        self.update(store, address.map(String::from), ipv6, self.vif);
    }

    /// Publishes the IPv6 `addresses` (in key order) under the vif number
    /// already known.
    pub fn set_ipv6<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>, addresses: Vec<String>) {
        self.update(store, self.address.clone(), addresses, self.vif);
    }

    /// The vif is now number `vif`: the addresses, if any, move there.
    pub fn set_vif<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>, vif: u32) {
        let ipv6 = self.ipv6.clone();
        self.update(store, self.address.clone(), ipv6, Some(vif));
    }

    /// After a resume in a new domain, whose home in xenstore is new and
    /// empty: writes the addresses, if any, again (under the vif number
    /// known so far; the reconnected vif moves them if its number changed).
    pub fn resumed<H: Hypervisor>(&mut self, store: &mut Xenstore<'_, H>) {
        let address = self.address.take();
        let ipv6 = core::mem::take(&mut self.ipv6);
        self.update(store, address, ipv6, self.vif);
    }

    /// Makes xenstore hold `address` and `ipv6` under `vif`
    /// ([`Self::changes`], [`Self::ipv6_changes`]).
    fn update<H: Hypervisor>(
        &mut self,
        store: &mut Xenstore<'_, H>,
        address: Option<String>,
        ipv6: Vec<String>,
        vif: Option<u32>,
    ) {
        let mut changes = self.changes(address.as_deref(), vif);
        changes.extend(self.ipv6_changes(&ipv6, vif));
        for change in changes {
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
        self.ipv6 = ipv6;
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
        AddressKeys { address: address.map(String::from), ipv6: Vec::new(), vif, vif_only: false }
    }

    fn published6(addresses: &[&str], vif: Option<u32>) -> AddressKeys {
        AddressKeys {
            address: None,
            ipv6: addresses.iter().map(|address| address.to_string()).collect(),
            vif,
            vif_only: false,
        }
    }

    fn list(addresses: &[&str]) -> Vec<String> {
        addresses.iter().map(|address| address.to_string()).collect()
    }

    #[test]
    fn an_interface_beside_the_main_one_publishes_its_vifs_key_only() {
        let keys = AddressKeys { vif: Some(1), ..AddressKeys::for_vif_only() };
        assert_eq!(keys.changes(Some("10.89.0.2"), Some(1)), [write("attr/vif/1/ipv4/0", "10.89.0.2")]);
        let leased = AddressKeys { address: Some("10.89.0.2".into()), ..keys };
        assert_eq!(leased.changes(None, Some(1)), [remove("attr/vif/1/ipv4/0")]);
    }

    #[test]
    fn ipv6_addresses_are_written_numbered_from_zero() {
        assert_eq!(vif_ipv6_key(2, 1), "attr/vif/2/ipv6/1");
        assert_eq!(
            published6(&[], Some(0)).ipv6_changes(&list(&["fe80::1", "fd00::1"]), Some(0)),
            [write("attr/vif/0/ipv6/0", "fe80::1"), write("attr/vif/0/ipv6/1", "fd00::1")]
        );
        // No vif known: nothing to publish under.
        assert_eq!(published6(&[], None).ipv6_changes(&list(&["fe80::1"]), None), []);
        // The vif becomes known: all written.
        assert_eq!(
            published6(&["fe80::1"], None).ipv6_changes(&list(&["fe80::1"]), Some(0)),
            [write("attr/vif/0/ipv6/0", "fe80::1")]
        );
    }

    #[test]
    fn an_ipv6_address_that_goes_is_removed_and_the_rest_move_down() {
        let before = published6(&["fe80::1", "2001:db8::1", "fd00::1"], Some(0));
        assert_eq!(before.ipv6_changes(&list(&["fe80::1", "2001:db8::1", "fd00::1"]), Some(0)), [], "unchanged");
        assert_eq!(
            before.ipv6_changes(&list(&["fe80::1", "fd00::1"]), Some(0)),
            [write("attr/vif/0/ipv6/1", "fd00::1"), remove("attr/vif/0/ipv6/2")]
        );
        assert_eq!(before.ipv6_changes(&list(&["fe80::1", "2001:db8::1"]), Some(0)), [remove("attr/vif/0/ipv6/2")]);
    }

    #[test]
    fn ipv6_addresses_move_with_the_vif_number() {
        assert_eq!(
            published6(&["fe80::1", "fd00::1"], Some(0)).ipv6_changes(&list(&["fe80::2"]), Some(3)),
            [remove("attr/vif/0/ipv6/0"), remove("attr/vif/0/ipv6/1"), write("attr/vif/3/ipv6/0", "fe80::2")]
        );
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
