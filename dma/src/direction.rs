//! DMA directions as types: who writes the buffer while the device owns it.
//!
//! A handle is typed by its direction, `DmaHandle<ToDevice>` and so on, and
//! the operations that only make sense one way are only implemented for the
//! directions that allow them:
//!
//! | direction       | grant     | [`CpuWrites`]: `write`, `sync_for_device` | [`DeviceWrites`]: `read`, `sync_for_cpu` |
//! |-----------------|-----------|-------------------------------------------|------------------------------------------|
//! | [`ToDevice`]      | read-only | yes                                       | no                                       |
//! | [`FromDevice`]    | writable  | no                                        | yes                                      |
//! | [`Bidirectional`] | writable  | yes                                       | yes                                      |
//!
//! Syncing the other way is not merely pointless, it cannot be written: the
//! call does not compile. That is sound as well as tidy: the CPU can only
//! ever read a `FromDevice` buffer (it never holds dirty data the device
//! could lose), and nobody but the CPU writes a `ToDevice` buffer (there is
//! nothing for the CPU to pick up).
//!
//! The traits are sealed: no other crate can add a direction, or declare
//! that `FromDevice` lets the CPU write.

mod sealed {
    /// Keeps the direction traits closed to this crate.
    pub trait Sealed {}
}

/// A DMA direction: one of [`ToDevice`], [`FromDevice`], [`Bidirectional`].
pub trait Direction: sealed::Sealed + Copy + Default + core::fmt::Debug {
    /// Whether the backend may write the pages (its grants are writable).
    const DEVICE_WRITES: bool;
    /// Whether the CPU fills the buffer for the device.
    const CPU_WRITES: bool;
}

/// Directions in which the CPU writes the buffer for the device: the handle
/// lends `&mut [u8]` and syncs for the device afterwards.
pub trait CpuWrites: Direction {}

/// Directions in which the device writes the buffer for the CPU: the handle
/// syncs for the CPU, then lends `&[u8]`.
pub trait DeviceWrites: Direction {}

/// The CPU fills the buffer, the device reads it (netfront's transmit).
/// Granted read-only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToDevice;

/// The device fills the buffer, the CPU reads it (netfront's receive).
/// Granted writable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FromDevice;

/// Both write it, in turns. Granted writable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bidirectional;

impl sealed::Sealed for ToDevice {}
impl sealed::Sealed for FromDevice {}
impl sealed::Sealed for Bidirectional {}

impl Direction for ToDevice {
    const DEVICE_WRITES: bool = false;
    const CPU_WRITES: bool = true;
}

impl Direction for FromDevice {
    const DEVICE_WRITES: bool = true;
    const CPU_WRITES: bool = false;
}

impl Direction for Bidirectional {
    const DEVICE_WRITES: bool = true;
    const CPU_WRITES: bool = true;
}

impl CpuWrites for ToDevice {}
impl CpuWrites for Bidirectional {}
impl DeviceWrites for FromDevice {}
impl DeviceWrites for Bidirectional {}
