//! The handle-based DMA layer (not yet implemented: see the DMA issue).
//!
//! `map` will take ownership of a buffer, grant its pages to the backend
//! domain and return an opaque `DmaHandle<Direction>` that carries every
//! grant reference, frame, CPU address, offset and length; `unmap`,
//! `sync_for_cpu` and `sync_for_device` take that handle back, so no
//! operation ever recovers a physical address from a bus address. The
//! direction is a type parameter, so a wrong-direction sync does not compile.
#![cfg_attr(target_os = "none", no_std)]
