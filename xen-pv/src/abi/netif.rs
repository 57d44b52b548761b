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
