//! The Xen network frontend (not yet implemented: see the netfront issue).
//!
//! It will find `device/vif/*` in xenstore, run the xenbus handshake with
//! the backend, keep one-page tx and rx rings whose buffers are DMA handles,
//! validate every response from the (untrusted) backend, and implement
//! `smoltcp::phy::Device` so that received buffers are lent to smoltcp by
//! handle without a copy.
#![cfg_attr(target_os = "none", no_std)]
#![forbid(unsafe_code)]
