//! The network interface protocol (`io/netif.h`): ring messages and flags.
//!
//! Messages are kept as plain Rust structs and converted to and from the
//! ring's 32-bit slot words ([`crate::ring`]) field by field, in the
//! little-endian layout of the C structs (both x86 and ARM are
//! little-endian). Decoding never fails: every bit pattern is some message,
//! and checking it is the driver's job.

use crate::abi::grant_table::GrantRef;

#[cfg(not(target_endian = "little"))]
compile_error!("netif slot packing assumes a little-endian machine");

/// Words in a tx slot (`sizeof(union netif_tx_sring_entry)` = 12).
pub const TX_WORDS: usize = 3;
/// Words in an rx slot (`sizeof(union netif_rx_sring_entry)` = 8).
pub const RX_WORDS: usize = 2;

/// `NETTXF_csum_blank`: the packet's checksum is not filled in.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `NETTXF_data_validated`: the checksum has been checked.
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `NETTXF_more_data`: more slots of this packet follow.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `NETTXF_extra_info`: an extra-info slot follows.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `NETRXF_data_validated`: the checksum has been checked.
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `NETRXF_csum_blank`: the checksum is partial (to be completed).
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `NETRXF_more_data`: more slots of this packet follow.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `NETRXF_extra_info`: an extra-info slot follows.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `NETRXF_gso_prefix`: a GSO prefix slot.
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// `NETIF_RSP_DROPPED`
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: a response for an extra-info slot.
pub const NETIF_RSP_NULL: i16 = 1;

/// `XEN_NETIF_MAX_TX_SIZE`: the largest packet on the tx ring.
pub const MAX_TX_SIZE: usize = 0xffff;
/// Slots per packet above which netback drops it (`XEN_NETBK_LEGACY_SLOTS_MAX`).
pub const LEGACY_SLOTS_MAX: usize = 18;

/// `struct netif_tx_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxRequest {
    /// Grant of the page holding this slot's data.
    pub gref: GrantRef,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETTXF_*` flags.
    pub flags: u16,
    /// Our id, echoed in the response.
    pub id: u16,
    /// First slot: the whole packet's length; others: this slot's.
    pub size: u16,
}

/// `struct netif_tx_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxResponse {
    /// The request's id.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

/// `struct netif_rx_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxRequest {
    /// Our id, echoed in the response.
    pub id: u16,
    /// Grant of the page the backend copies into.
    pub gref: GrantRef,
}

/// `struct netif_rx_response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxResponse {
    /// The request's id.
    pub id: u16,
    /// Offset of the data in the page.
    pub offset: u16,
    /// `NETRXF_*` flags.
    pub flags: u16,
    /// Bytes received (> 0) or a `NETIF_RSP_*` error (< 0).
    pub status: i16,
}

/// `XEN_NETIF_EXTRA_TYPE_NONE`: no extra information (never valid in a slot).
pub const EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`: segmentation offload (`u.gso`).
pub const EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`: a multicast address to add (`u.mcast`).
pub const EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`: a multicast address to remove (`u.mcast`).
pub const EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`: the packet's hash (`u.hash`).
pub const EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_XDP`: XDP headroom (`u.xdp`).
pub const EXTRA_TYPE_XDP: u8 = 5;
/// `XEN_NETIF_EXTRA_TYPE_MAX`: every known type is below it.
pub const EXTRA_TYPE_MAX: u8 = 6;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows this one.
pub const EXTRA_FLAG_MORE: u8 = 1 << 0;
/// `XEN_NETIF_GSO_TYPE_NONE`
pub const GSO_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_GSO_TYPE_TCPV4`: TCP segments over IPv4.
pub const GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`: TCP segments over IPv6.
pub const GSO_TYPE_TCPV6: u8 = 2;

/// `struct netif_extra_info`, in the view of its `u.gso` member: an
/// extra-info slot that follows a request or response flagged
/// `NET{TX,RX}F_extra_info` and takes a whole ring slot. For the other
/// types the three `gso_*` fields hold the union's other members' bytes
/// (`u.mcast.addr`, `u.hash`, `u.xdp`), kept as they are.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtraInfo {
    /// `type`: `XEN_NETIF_EXTRA_TYPE_*`.
    pub kind: u8,
    /// `flags`: `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// `u.gso.size`: the segment size (MSS) the packet is cut into.
    pub gso_size: u16,
    /// `u.gso.type`: `XEN_NETIF_GSO_TYPE_*`.
    pub gso_type: u8,
    /// `u.gso.pad`.
    pub gso_pad: u8,
    /// `u.gso.features`: `XEN_NETIF_GSO_FEAT_*` (none are defined).
    pub gso_features: u16,
}

crate::assert_abi_size!(ExtraInfo, 8);
crate::assert_abi_offset!(ExtraInfo, kind, 0);
crate::assert_abi_offset!(ExtraInfo, flags, 1);
crate::assert_abi_offset!(ExtraInfo, gso_size, 2);
crate::assert_abi_offset!(ExtraInfo, gso_type, 4);
crate::assert_abi_offset!(ExtraInfo, gso_pad, 5);
crate::assert_abi_offset!(ExtraInfo, gso_features, 6);
// An extra-info slot fills an rx slot exactly (and the first 8 bytes of a tx slot).
const _: () = assert!(core::mem::size_of::<ExtraInfo>() == RX_WORDS * 4);

impl ExtraInfo {
    /// The slot words of an rx slot (a tx slot's first two words).
    pub fn encode(&self) -> [u32; RX_WORDS] {
        [
            u32::from_le_bytes([self.kind, self.flags, self.gso_size as u8, (self.gso_size >> 8) as u8]),
            u32::from_le_bytes([self.gso_type, self.gso_pad, self.gso_features as u8, (self.gso_features >> 8) as u8]),
        ]
    }

    /// From an rx slot's words (or a tx slot's first two).
    pub fn decode(words: [u32; RX_WORDS]) -> Self {
        let [kind, flags, size_low, size_high] = words[0].to_le_bytes();
        let [gso_type, gso_pad, features_low, features_high] = words[1].to_le_bytes();
        Self {
            kind,
            flags,
            gso_size: u16::from_le_bytes([size_low, size_high]),
            gso_type,
            gso_pad,
            gso_features: u16::from_le_bytes([features_low, features_high]),
        }
    }

    /// Whether another extra-info slot follows.
    pub fn more(&self) -> bool {
        self.flags & EXTRA_FLAG_MORE != 0
    }
}

fn pair(low: u16, high: u16) -> u32 {
    u32::from(low) | (u32::from(high) << 16)
}

fn halves(word: u32) -> (u16, u16) {
    (word as u16, (word >> 16) as u16)
}

impl TxRequest {
    /// Slot words.
    pub fn encode(&self) -> [u32; TX_WORDS] {
        [self.gref, pair(self.offset, self.flags), pair(self.id, self.size)]
    }

    /// From slot words.
    pub fn decode(words: [u32; TX_WORDS]) -> Self {
        let (offset, flags) = halves(words[1]);
        let (id, size) = halves(words[2]);
        Self { gref: words[0], offset, flags, id, size }
    }
}

impl TxResponse {
    /// Slot words (the response uses the first 4 bytes of the slot).
    pub fn encode(&self) -> [u32; TX_WORDS] {
        [pair(self.id, self.status as u16), 0, 0]
    }

    /// From slot words.
    pub fn decode(words: [u32; TX_WORDS]) -> Self {
        let (id, status) = halves(words[0]);
        Self { id, status: status as i16 }
    }
}

impl RxRequest {
    /// Slot words.
    pub fn encode(&self) -> [u32; RX_WORDS] {
        [u32::from(self.id), self.gref]
    }

    /// From slot words.
    pub fn decode(words: [u32; RX_WORDS]) -> Self {
        Self { id: words[0] as u16, gref: words[1] }
    }
}

impl RxResponse {
    /// Slot words.
    pub fn encode(&self) -> [u32; RX_WORDS] {
        [pair(self.id, self.offset), pair(self.flags, self.status as u16)]
    }

    /// From slot words.
    pub fn decode(words: [u32; RX_WORDS]) -> Self {
        let (id, offset) = halves(words[0]);
        let (flags, status) = halves(words[1]);
        Self { id, offset, flags, status: status as i16 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The C layouts, byte by byte: the words' little-endian bytes must put
    /// each field at its `offsetof`.
    fn bytes<const N: usize>(words: [u32; N]) -> std::vec::Vec<u8> {
        words.iter().flat_map(|word| word.to_le_bytes()).collect()
    }

    #[test]
    fn tx_request_matches_the_c_layout() {
        let request = TxRequest { gref: 0x0403_0201, offset: 0x0605, flags: 0x0807, id: 0x0a09, size: 0x0c0b };
        assert_eq!(bytes(request.encode()), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(TxRequest::decode(request.encode()), request);
    }

    #[test]
    fn extra_info_matches_the_c_layout() {
        let extra = ExtraInfo { kind: 1, flags: 2, gso_size: 0x0403, gso_type: 5, gso_pad: 6, gso_features: 0x0807 };
        assert_eq!(bytes(extra.encode()), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(ExtraInfo::decode(extra.encode()), extra);
        assert!(!extra.more());
        assert!(ExtraInfo { flags: EXTRA_FLAG_MORE, ..extra }.more());
    }

    #[test]
    fn responses_match_the_c_layout() {
        let tx = TxResponse { id: 0x0201, status: NETIF_RSP_DROPPED };
        assert_eq!(&bytes(tx.encode())[..4], [1, 2, 0xfe, 0xff]);
        assert_eq!(TxResponse::decode(tx.encode()), tx);
        let rx = RxResponse { id: 0x0201, offset: 0x0403, flags: 0x0605, status: 1514 };
        assert_eq!(bytes(rx.encode()), [1, 2, 3, 4, 5, 6, 0xea, 0x05]);
        assert_eq!(RxResponse::decode(rx.encode()), rx);
        let request = RxRequest { id: 0x0201, gref: 0x0807_0605 };
        assert_eq!(bytes(request.encode()), [1, 2, 0, 0, 5, 6, 7, 8]);
        assert_eq!(RxRequest::decode(request.encode()), request);
    }
}
