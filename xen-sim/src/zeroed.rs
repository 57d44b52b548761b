//! The simulated shared info page, zero-filled on the heap, as Xen hands
//! it to a new domain.
//!
//! `SharedInfo` is made of atomics and arrays of atomics only, for which
//! all-zero bytes are a valid value, but it has no constructor (it is an
//! ABI mirror of a page Xen owns), so the page is allocated zeroed. This is
//! one of the two modules of the crate that may use unsafe code (the other
//! is `grant_table::memory`).
//!
//! Never: make a value of any other type this way: zero is not a valid bit
//! pattern for every type.

use std::alloc::Layout;
use std::boxed::Box;
use xen_pv::abi::shared_info::x86_64::SharedInfo;

/// A shared info page of zeros: no event pending or masked, time 0.
pub(crate) fn shared_info() -> Box<SharedInfo> {
    let layout = Layout::new::<SharedInfo>();
    // SAFETY: `layout` is non-zero-sized (3 368 bytes of fields), the
    // memory is zeroed, and zero is a valid bit pattern for every field of
    // `SharedInfo`, which is atomics and arrays of atomics. The pointer
    // comes from the global allocator with `SharedInfo`'s layout, which is
    // what `Box::from_raw` requires.
    unsafe {
        let pointer = std::alloc::alloc_zeroed(layout).cast::<SharedInfo>();
        assert!(!pointer.is_null(), "out of memory");
        Box::from_raw(pointer)
    }
}
