//! The PV console ring (`io/console.h`).
//!
//! One page shared with the console backend (xenconsoled in dom0): an input
//! ring the backend produces into and an output ring the guest produces into.
//! Indices run freely and are reduced modulo the ring size when used.

use crate::{assert_abi_offset, assert_abi_size};
use core::sync::atomic::{AtomicU8, AtomicU32};

/// Size of the input ring (`sizeof(in)`).
pub const CONSOLE_INPUT_SIZE: usize = 1024;
/// Size of the output ring (`sizeof(out)`).
pub const CONSOLE_OUTPUT_SIZE: usize = 2048;

/// `struct xencons_interface`.
#[repr(C)]
pub struct ConsoleInterface {
    /// Bytes from the backend to the guest.
    pub input: [AtomicU8; CONSOLE_INPUT_SIZE],
    /// Bytes from the guest to the backend.
    pub output: [AtomicU8; CONSOLE_OUTPUT_SIZE],
    /// Consumer index of `input` (guest-owned).
    pub in_cons: AtomicU32,
    /// Producer index of `input` (backend-owned).
    pub in_prod: AtomicU32,
    /// Consumer index of `output` (backend-owned).
    pub out_cons: AtomicU32,
    /// Producer index of `output` (guest-owned).
    pub out_prod: AtomicU32,
}
assert_abi_size!(ConsoleInterface, 3088);
assert_abi_offset!(ConsoleInterface, output, 1024);
assert_abi_offset!(ConsoleInterface, in_cons, 3072);
assert_abi_offset!(ConsoleInterface, in_prod, 3076);
assert_abi_offset!(ConsoleInterface, out_cons, 3080);
assert_abi_offset!(ConsoleInterface, out_prod, 3084);

impl ConsoleInterface {
    /// A zeroed interface in ordinary memory, for host tests and simulations.
    pub fn new_zeroed() -> Self {
        Self {
            input: [const { AtomicU8::new(0) }; CONSOLE_INPUT_SIZE],
            output: [const { AtomicU8::new(0) }; CONSOLE_OUTPUT_SIZE],
            in_cons: AtomicU32::new(0),
            in_prod: AtomicU32::new(0),
            out_cons: AtomicU32::new(0),
            out_prod: AtomicU32::new(0),
        }
    }
}
