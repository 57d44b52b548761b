//! What a test chooses about the simulated vif: its identity, the features
//! the backend advertises, and how received frames' checksums look.
//!
//! The defaults are what Debian's Xen 4.17 toolstack and a Linux dom0's
//! netback produce on the test host. Never: describe a behaviour the
//! simulation does not implement (no control ring, one queue).

/// The features netback's probe writes to the backend directory; each is
/// written as `0` or `1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertisedFeatures {
    /// `feature-sg`: the backend takes multi-slot packets.
    pub scatter_gather: bool,
    /// `feature-gso-tcpv4`: the backend takes large TCPv4 segments from
    /// the frontend (a GSO extra on a transmit packet). Off, a frontend
    /// that sends one anyway is counted ([`super::Violation::GsoNotAdvertised`]).
    pub gso_tcpv4: bool,
    /// `feature-gso-tcpv6`: the same for TCPv6.
    pub gso_tcpv6: bool,
    /// `feature-ipv6-csum-offload`: the backend takes IPv6 frames with a
    /// partial checksum (which a large TCPv6 segment has).
    pub ipv6_checksum_offload: bool,
    /// `feature-rx-copy`: receive by grant copy (what this simulation does).
    pub receive_copy: bool,
    /// `feature-multicast-control` and `feature-dynamic-multicast-control`.
    pub multicast_control: bool,
    /// `feature-split-event-channels`: the frontend may give one port per ring.
    pub split_event_channels: bool,
}

impl Default for AdvertisedFeatures {
    /// Everything Linux netback advertises.
    fn default() -> Self {
        Self {
            scatter_gather: true,
            gso_tcpv4: true,
            gso_tcpv6: true,
            ipv6_checksum_offload: true,
            receive_copy: true,
            multicast_control: true,
            split_event_channels: true,
        }
    }
}

/// How frames injected for the guest carry their checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveChecksum {
    /// As traffic dom0 itself sends: unless the frontend wrote
    /// `feature-no-csum-offload=1`, IPv4 TCP and UDP frames arrive with a
    /// partial checksum (the pseudo-header sum, Linux's `CHECKSUM_PARTIAL`)
    /// and `NETRXF_csum_blank | NETRXF_data_validated`; IPv6 TCP and UDP
    /// frames (behind hop-by-hop, routing and destination options headers
    /// or none) the same if it wrote `feature-ipv6-csum-offload=1`; other
    /// frames, and every frame of a version whose offload is off, arrive as
    /// injected with no flag.
    PartialLikeDom0,
    /// Every frame arrives as injected with `NETRXF_data_validated`
    /// (bridged from a NIC that checked it).
    Validated,
    /// Every frame arrives as injected with no flag.
    Unflagged,
    /// As [`Self::PartialLikeDom0`] whatever the frontend wrote: a backend
    /// that ignores `feature-no-csum-offload=1` (and a missing
    /// `feature-ipv6-csum-offload`), so that IPv4 and IPv6 TCP and UDP
    /// frames reach a frontend that asked for complete checksums with
    /// partial ones.
    PartialRegardless,
}

/// How the backend reads what the frontend writes for a page: the ring
/// references in xenstore (`tx-ring-ref`, `rx-ring-ref`) and the `gref` of
/// every transmit and receive request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Addressing {
    /// Grant references of the guest's grant table, mapped and copied with
    /// Xen's checks (domain, permission, live entry): what netback does.
    #[default]
    Grants,
    /// Guest frame numbers, reached directly: a device on bare metal
    /// without an IOMMU, told physical addresses (`frame << 12 | offset`).
    /// No grant, domain or permission is checked, and nothing the guest
    /// does can take access back; a frame that is not live guest RAM is
    /// refused, and counted as a violation, exactly where a bad grant is.
    Identity,
}

/// The simulated vif's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetbackOptions {
    /// The device index: `device/vif/<device>`.
    pub device: u32,
    /// The backend's domain (`backend-id`; its directories live under
    /// `/local/domain/<backend_domain>`): dom0, or a driver domain. Grants
    /// and the event channel must be for it.
    pub backend_domain: xen_pv::abi::DomainId,
    /// The frontend's `trusted` node (libxl writes `1` or `0`), or none.
    pub trusted: Option<bool>,
    /// The guest's MAC address, written as `mac` in both directories.
    pub mac: [u8; 6],
    /// `mtu` in both directories, when set.
    pub mtu: Option<u16>,
    /// What the backend advertises.
    pub features: AdvertisedFeatures,
    /// How received frames' checksums look.
    pub receive_checksum: ReceiveChecksum,
    /// Connect when the frontend reaches `Initialised`, not only
    /// `Connected`. Linux netback ignores `Initialised`.
    pub connect_on_initialised: bool,
    /// Serve a ring only after the guest notified (or the backend was
    /// awake anyway), as a real backend sleeping on its event channel does.
    pub notifications_required: bool,
    /// How the references the frontend writes are read.
    pub addressing: Addressing,
}

impl Default for NetbackOptions {
    fn default() -> Self {
        Self {
            device: 0,
            backend_domain: crate::BACKEND_DOMAIN,
            trusted: None,
            mac: [0x00, 0x16, 0x3e, 0x00, 0x00, 0x01],
            mtu: None,
            features: AdvertisedFeatures::default(),
            receive_checksum: ReceiveChecksum::PartialLikeDom0,
            connect_on_initialised: false,
            notifications_required: true,
            addressing: Addressing::Grants,
        }
    }
}

impl NetbackOptions {
    /// The MAC address as the toolstack writes it: `00:16:3e:00:00:01`.
    pub fn mac_text(&self) -> std::string::String {
        let [a, b, c, d, e, f] = self.mac;
        std::format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
    }
}
