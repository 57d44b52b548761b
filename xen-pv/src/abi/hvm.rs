//! HVM operations and parameters (`hvm/hvm_op.h`, `hvm/params.h`).

use crate::abi::DomainId;
use crate::{assert_abi_offset, assert_abi_size};

/// `HVMOP_set_param`
pub const HVMOP_SET_PARAM: u32 = 0;
/// `HVMOP_get_param`
pub const HVMOP_GET_PARAM: u32 = 1;

/// `HVM_PARAM_CALLBACK_IRQ`
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `HVM_PARAM_STORE_PFN`: frame of the xenstore ring.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`: event channel of the xenstore ring.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_CONSOLE_PFN`: frame of the PV console ring.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`: event channel of the PV console ring.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

/// `struct xen_hvm_param`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct HvmParam {
    /// Target domain (`DOMID_SELF`).
    pub domid: DomainId,
    /// Padding in the C layout.
    pub pad: u16,
    /// Parameter index (`HVM_PARAM_*`).
    pub index: u32,
    /// Value read or written.
    pub value: u64,
}
assert_abi_size!(HvmParam, 16);
assert_abi_offset!(HvmParam, index, 4);
assert_abi_offset!(HvmParam, value, 8);
