//! Network configuration from the command line (`extra = "..."` in xl.cfg).
//!
//! - `ip=dhcp` (the default): ask a DHCP server;
//! - `ip=10.88.0.2/24` with optional `gw=10.88.0.1`: a static address;
//! - beside either, `ip6=fd00::2/64` and `gw6=fe80::1`: a static IPv6
//!   address and default router ([`Ipv6Static`]), on top of the link-local
//!   address and what router advertisements bring (`crate::slaac`).
//!
//! A value that does not parse is an error the runtime reports; it never
//! guesses an address.

use core::net::{Ipv4Addr, Ipv6Addr};
use smoltcp::wire::{Ipv4Cidr, Ipv6Cidr};

/// How the interface gets its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetConfig {
    /// DHCPv4.
    Dhcp,
    /// A fixed address and prefix, and maybe a default gateway.
    Static {
        /// Address and prefix length.
        address: Ipv4Cidr,
        /// Default route.
        gateway: Option<Ipv4Addr>,
    },
}

/// A network setting that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetConfigError<'a> {
    /// `ip=` is neither `dhcp` nor `a.b.c.d/len`.
    BadAddress(&'a str),
    /// `gw=` is not an IPv4 address.
    BadGateway(&'a str),
    /// `ip6=` is not a unicast IPv6 address with a prefix length.
    BadIpv6Address(&'a str),
    /// `gw6=` is not a unicast IPv6 address.
    BadIpv6Gateway(&'a str),
}

/// Static IPv6 settings (`ip6=`, `gw6=`); both optional. The default
/// router may be link-local (`fe80::1`), as routers usually are.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Static {
    /// Address and prefix length.
    pub address: Option<Ipv6Cidr>,
    /// Default router; it takes precedence over those router
    /// advertisements name.
    pub gateway: Option<Ipv6Addr>,
}

impl Ipv6Static {
    /// Reads the values of `ip6=` and `gw6=` (absent: `None`).
    pub fn parse<'a>(ip6: Option<&'a str>, gw6: Option<&'a str>) -> Result<Self, NetConfigError<'a>> {
        let address = match ip6 {
            None => None,
            Some(text) => Some(parse_cidr6(text).ok_or(NetConfigError::BadIpv6Address(text))?),
        };
        let gateway = match gw6 {
            None => None,
            Some(text) => Some(
                text.parse::<Ipv6Addr>()
                    .ok()
                    .filter(|&address| is_unicast6(address))
                    .ok_or(NetConfigError::BadIpv6Gateway(text))?,
            ),
        };
        Ok(Self { address, gateway })
    }
}

/// Neither unspecified, loopback nor multicast.
fn is_unicast6(address: Ipv6Addr) -> bool {
    !address.is_unspecified() && !address.is_loopback() && !address.is_multicast()
}

fn parse_cidr6(text: &str) -> Option<Ipv6Cidr> {
    let (address, prefix) = text.split_once('/')?;
    let address: Ipv6Addr = address.parse().ok().filter(|&address| is_unicast6(address))?;
    let prefix: u8 = prefix.parse().ok().filter(|&length| (1..=128).contains(&length))?;
    Some(Ipv6Cidr::new(address, prefix))
}

impl NetConfig {
    /// Reads the values of `ip=` and `gw=` (absent: `None`).
    pub fn parse<'a>(ip: Option<&'a str>, gw: Option<&'a str>) -> Result<Self, NetConfigError<'a>> {
        let address = match ip {
            None | Some("dhcp") => return Ok(Self::Dhcp),
            Some(text) => parse_cidr(text).ok_or(NetConfigError::BadAddress(text))?,
        };
        let gateway = match gw {
            None => None,
            Some(text) => Some(text.parse().map_err(|_| NetConfigError::BadGateway(text))?),
        };
        Ok(Self::Static { address, gateway })
    }
}

fn parse_cidr(text: &str) -> Option<Ipv4Cidr> {
    let (address, prefix) = text.split_once('/')?;
    let address: Ipv4Addr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok().filter(|&length| (1..=32).contains(&length))?;
    Some(Ipv4Cidr::new(address, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `ip=` and `gw=` out of a command line's words.
    fn from_line(line: &str) -> Result<NetConfig, NetConfigError<'_>> {
        let value = |key: &str| line.split_whitespace().filter_map(|word| word.strip_prefix(key)).next_back();
        NetConfig::parse(value("ip="), value("gw="))
    }

    #[test]
    fn dhcp_is_the_default() {
        assert_eq!(from_line("loglevel=info"), Ok(NetConfig::Dhcp));
        assert_eq!(from_line("ip=dhcp gw=1.2.3.4"), Ok(NetConfig::Dhcp));
    }

    #[test]
    fn static_addresses_parse() {
        let config = from_line("ip=10.88.0.2/24 gw=10.88.0.1").unwrap();
        assert_eq!(
            config,
            NetConfig::Static {
                address: Ipv4Cidr::new(Ipv4Addr::new(10, 88, 0, 2), 24),
                gateway: Some(Ipv4Addr::new(10, 88, 0, 1))
            }
        );
        let no_gateway = from_line("ip=192.168.1.9/16").unwrap();
        assert!(matches!(no_gateway, NetConfig::Static { gateway: None, .. }));
    }

    #[test]
    fn static_ipv6_settings_parse() {
        assert_eq!(Ipv6Static::parse(None, None), Ok(Ipv6Static::default()));
        let both = Ipv6Static::parse(Some("fd00:88::9/64"), Some("fe80::1")).unwrap();
        assert_eq!(both.address, Some(Ipv6Cidr::new(Ipv6Addr::new(0xfd00, 0x88, 0, 0, 0, 0, 0, 9), 64)));
        assert_eq!(both.gateway, Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)));
        let router_only = Ipv6Static::parse(None, Some("2001:db8::1")).unwrap();
        assert_eq!((router_only.address, router_only.gateway.is_some()), (None, true));
    }

    #[test]
    fn bad_ipv6_settings_are_refused() {
        for (ip6, gw6, error) in [
            (Some("fd00::9"), None, NetConfigError::BadIpv6Address("fd00::9")),
            (Some("fd00::9/129"), None, NetConfigError::BadIpv6Address("fd00::9/129")),
            (Some("fd00::9/0"), None, NetConfigError::BadIpv6Address("fd00::9/0")),
            (Some("10.0.0.2/24"), None, NetConfigError::BadIpv6Address("10.0.0.2/24")),
            (Some("ff02::1/64"), None, NetConfigError::BadIpv6Address("ff02::1/64")),
            (Some("::/64"), None, NetConfigError::BadIpv6Address("::/64")),
            (None, Some("fe80::1/64"), NetConfigError::BadIpv6Gateway("fe80::1/64")),
            (None, Some("ff02::2"), NetConfigError::BadIpv6Gateway("ff02::2")),
            (None, Some("router"), NetConfigError::BadIpv6Gateway("router")),
        ] {
            assert_eq!(Ipv6Static::parse(ip6, gw6), Err(error), "{ip6:?} {gw6:?}");
        }
    }

    #[test]
    fn junk_is_refused() {
        for (line, error) in [
            ("ip=10.88.0.2", NetConfigError::BadAddress("10.88.0.2")),
            ("ip=10.88.0.2/33", NetConfigError::BadAddress("10.88.0.2/33")),
            ("ip=10.88.0/24", NetConfigError::BadAddress("10.88.0/24")),
            ("ip=10.88.0.2/24 gw=nowhere", NetConfigError::BadGateway("nowhere")),
        ] {
            assert_eq!(from_line(line), Err(error), "{line}");
        }
    }
}
