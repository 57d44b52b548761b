//! Xenbus device states and the few xenstore values the handshake reads.
//!
//! Every value comes from xenstore, which the backend's domain writes: all
//! of it is parsed as untrusted text and refused, not trusted, when odd.

use core::fmt;

pub use xen_pv::abi::xenbus::XenbusState;

/// An Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// Parses `aa:bb:cc:dd:ee:ff` (the `mac` node).
    pub fn parse(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 6];
        let mut parts = text.trim().split(':');
        for byte in &mut bytes {
            let part = parts.next()?;
            if part.len() != 2 {
                return None;
            }
            *byte = u8::from_str_radix(part, 16).ok()?;
        }
        parts.next().is_none().then_some(Self(bytes))
    }

    /// Whether the address is a unicast one a NIC may use.
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Parses a domain id node (`backend-id`).
pub fn parse_domain_id(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|&id| id < 0x7ff0)
}

/// Parses the `mtu` node: Ethernet payload sizes from 68 to 65 535.
pub fn parse_mtu(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|&mtu| mtu >= 68)
}

/// Whether a `feature-*` node says yes (`1`).
pub fn parse_feature(text: &str) -> bool {
    text.trim() == "1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_parse_strictly() {
        let mac = MacAddress::parse("00:16:3e:0a:Bc:ff").unwrap();
        assert_eq!(mac.0, [0x00, 0x16, 0x3e, 0x0a, 0xbc, 0xff]);
        assert_eq!(mac.to_string(), "00:16:3e:0a:bc:ff");
        assert!(mac.is_unicast());
        for junk in ["", "00:16:3e:0a:bc", "00:16:3e:0a:bc:ff:00", "0:16:3e:0a:bc:ff", "zz:16:3e:0a:bc:ff"] {
            assert_eq!(MacAddress::parse(junk), None, "{junk:?}");
        }
        assert!(!MacAddress::parse("01:00:5e:00:00:01").unwrap().is_unicast());
        assert!(!MacAddress::parse("00:00:00:00:00:00").unwrap().is_unicast());
    }

    #[test]
    fn numbers_and_features() {
        assert_eq!(parse_domain_id("0"), Some(0));
        assert_eq!(parse_domain_id("32752"), None, "DOMID_SELF and above are not domains");
        assert_eq!(parse_mtu("1500"), Some(1500));
        assert_eq!(parse_mtu("67"), None);
        assert_eq!(parse_mtu("70000"), None);
        assert!(parse_feature("1") && !parse_feature("0") && !parse_feature(""));
    }
}
