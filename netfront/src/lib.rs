//! The Xen network frontend.
//!
//! It finds `device/vif/*` in xenstore, runs the xenbus handshake with the
//! backend, keeps one-page tx and rx rings whose buffers are DMA handles,
//! validates every response from the (untrusted) backend, and implements
//! `smoltcp::phy::Device` so that received buffers are lent to smoltcp by
//! handle without a copy.
#![cfg_attr(target_os = "none", no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod checksum;
pub mod slots;
pub mod tx_plan;
pub mod xenbus;
