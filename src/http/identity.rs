//! Which instance answers: the Xen domain's name and id (what the runtime
//! read from xenstore), and the address a client reached it on.
//!
//! A request that asks for it (`instance`; see [`super::options`]) gets
//! three more response header fields:
//!
//! ```text
//! X-Echo-Instance: <domain name, or "unknown">
//! X-Echo-Domid: <domain id>          (when known)
//! X-Echo-Address: <address the client connected to>  (when known)
//! ```
//!
//! and the JSON description names the same ([`super::json`]).
//!
//! Contract: the name is made safe once, when the [`Instance`] is made
//! (visible ASCII and inner spaces only, at most [`MAX_INSTANCE_NAME_BYTES`]),
//! so it can go into a header field as it is; writing allocates nothing.

use super::output::ByteSink;
use alloc::string::String;
use core::net::{IpAddr, SocketAddr};

/// The most bytes of the domain's name that are written.
pub const MAX_INSTANCE_NAME_BYTES: usize = 128;

/// The instance as the appliance tells the engine: the domain's name and id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instance {
    name: String,
    domid: Option<u16>,
}

impl Instance {
    /// The instance `name` (any bytes: made safe here) with `domid`. A name
    /// that is empty once made safe counts as unknown.
    pub fn new(name: Option<&str>, domid: Option<u16>) -> Instance {
        let safe = |character: char| match character {
            ' ' | '!'..='~' => character,
            _ => '?',
        };
        let mut name: String = name.unwrap_or_default().chars().map(safe).collect();
        name.truncate(MAX_INSTANCE_NAME_BYTES);
        let trimmed = name.trim_matches(' ');
        let name = if trimmed.len() == name.len() { name } else { String::from(trimmed) };
        Instance { name, domid }
    }

    /// The domain's name, made safe, if known.
    pub fn name(&self) -> Option<&str> {
        (!self.name.is_empty()).then_some(self.name.as_str())
    }

    /// The domain id, if known.
    pub fn domid(&self) -> Option<u16> {
        self.domid
    }
}

/// The two ends of a connection, as the socket knows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The client's address and port.
    pub client: Option<SocketAddr>,
    /// The address and port the client connected to.
    pub local: Option<SocketAddr>,
}

/// The instance answering on one connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Identity<'a> {
    pub(crate) instance: Option<&'a Instance>,
    pub(crate) local: Option<&'a SocketAddr>,
}

impl Identity<'_> {
    /// The domain's name, if known.
    pub(crate) fn name(&self) -> Option<&str> {
        self.instance.and_then(Instance::name)
    }

    /// The domain id, if known.
    pub(crate) fn domid(&self) -> Option<u16> {
        self.instance.and_then(Instance::domid)
    }

    /// The address the client reached, if known.
    pub(crate) fn address(&self) -> Option<IpAddr> {
        self.local.map(|local| local.ip())
    }

    /// Writes `X-Echo-Instance`, and `X-Echo-Domid` and `X-Echo-Address`
    /// when known.
    pub(crate) fn write_fields(&self, sink: &mut impl ByteSink) {
        sink.put(b"X-Echo-Instance: ");
        sink.put(self.name().unwrap_or("unknown").as_bytes());
        sink.put(b"\r\n");
        if let Some(domid) = self.domid() {
            sink.put(b"X-Echo-Domid: ");
            super::response::put_decimal(sink, u64::from(domid));
            sink.put(b"\r\n");
        }
        if let Some(address) = self.address() {
            sink.put(b"X-Echo-Address: ");
            put_display(sink, &address);
            sink.put(b"\r\n");
        }
    }
}

/// Writes `value`'s `Display` form, without allocating.
pub(crate) fn put_display(sink: &mut impl ByteSink, value: &impl core::fmt::Display) {
    struct Adapter<'s, S>(&'s mut S);
    impl<S: ByteSink> core::fmt::Write for Adapter<'_, S> {
        fn write_str(&mut self, text: &str) -> core::fmt::Result {
            self.0.put(text.as_bytes());
            Ok(())
        }
    }
    let _ = core::fmt::write(&mut Adapter(sink), format_args!("{value}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::net::Ipv4Addr;

    #[test]
    fn names_are_made_safe_for_a_header_field() {
        assert_eq!(Instance::new(Some("xenecho-1"), Some(3)).name(), Some("xenecho-1"));
        let hostile = Instance::new(Some(" a\r\nSet-Cookie: x\u{0}\u{e9} "), None);
        assert_eq!(hostile.name(), Some("a??Set-Cookie: x??"));
        assert_eq!(Instance::new(Some("\u{7f}"), None).name(), Some("?"));
        assert_eq!(Instance::new(Some("   "), None).name(), None);
        assert_eq!(Instance::new(None, Some(1)).name(), None);
        let long: String = core::iter::repeat_n('n', 1000).collect();
        assert_eq!(Instance::new(Some(&long), None).name().map(str::len), Some(MAX_INSTANCE_NAME_BYTES));
    }

    #[test]
    fn the_fields_say_what_is_known() {
        let instance = Instance::new(Some("guest"), Some(7));
        let local = Some(SocketAddr::new(Ipv4Addr::new(10, 0, 0, 1).into(), 80));
        let mut text = Vec::new();
        Identity { instance: Some(&instance), local: local.as_ref() }.write_fields(&mut text);
        assert_eq!(text, b"X-Echo-Instance: guest\r\nX-Echo-Domid: 7\r\nX-Echo-Address: 10.0.0.1\r\n");
        let mut unknown = Vec::new();
        Identity::default().write_fields(&mut unknown);
        assert_eq!(unknown, b"X-Echo-Instance: unknown\r\n");
    }
}
