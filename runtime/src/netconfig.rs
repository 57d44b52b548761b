//! Network configuration from the command line (`extra = "..."` in xl.cfg).
//!
//! - `ip=dhcp` (the default): ask a DHCP server;
//! - `ip=10.88.0.2/24` with optional `gw=10.88.0.1`: a static address.
//!
//! A value that does not parse is an error the runtime reports; it never
//! guesses an address.

use core::net::Ipv4Addr;
use smoltcp::wire::Ipv4Cidr;

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
