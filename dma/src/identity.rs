//! [`IdentityTranslation`]: bus address = physical address, the way a
//! device sees memory on bare metal without an IOMMU.
//!
//! A page's bus page is its frame number, so a mapping's bus address
//! ([`DmaAddress::encoded`](crate::DmaAddress::encoded), `frame << 12 |
//! offset`) is the physical address of its first byte: the device is told
//! where the bytes are. Mapping sets nothing up and unmapping tears nothing
//! down. Everything else in the DMA layer is the same over it: handles,
//! directions, syncs, pools, shared pages, and bounce mode (the device is
//! then told the bounce pages' frames, as a software IOTLB does for a
//! device that cannot reach the buffer's own pages).
//!
//! What it cannot do, stated plainly: it takes nothing back. A device on a
//! bus without an IOMMU can read and write any page of the machine at any
//! time, told about it or not. `revoke` therefore always succeeds, and an
//! unmap over this translation never fails with `StillInUse`. After the
//! unmap, only the driver's protocol keeps the device off the page: the
//! driver must not unmap a buffer (and so free or reuse it) until the
//! device has said it is done with every page of it, its ring response for
//! each request, and must not show the device the address again. The
//! `readonly` wish of a `ToDevice` mapping cannot be enforced either. On
//! Xen the grant table enforces both, whatever the backend does; on bare
//! metal an IOMMU would (`docs/dma.md`).
//!
//! A frame must fit a 32-bit bus page (16 TiB of memory); a larger one is
//! `GrantError::FrameTooLarge`, and the map fails with nothing done.
//!
//! Never: claim to have revoked access it never controlled; name a frame
//! other than the page's own.

use crate::translation::{BusPage, Translation};
use xen_pv::abi::DomainId;
use xen_pv::grant_table::{GrantError, RevokeError};

/// Bus address = physical address: a page's bus page is its frame number,
/// and nothing is ever revoked (see the module documentation for what that
/// leaves to the driver).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityTranslation;

impl Translation for IdentityTranslation {
    /// Writes the frames themselves; `domain` and `readonly` change
    /// nothing (one bus, no permissions). Refuses the whole run if its last
    /// frame does not fit a bus page.
    fn translate_run(
        &self,
        _domain: DomainId,
        first_frame: u64,
        _readonly: bool,
        bus_pages: &mut [BusPage],
    ) -> Result<(), GrantError> {
        let Some(last) = (bus_pages.len() as u64).checked_sub(1) else { return Ok(()) };
        let last_frame = first_frame.checked_add(last).ok_or(GrantError::FrameTooLarge)?;
        if BusPage::try_from(last_frame).is_err() {
            return Err(GrantError::FrameTooLarge);
        }
        for (frame, bus_page) in (first_frame..).zip(bus_pages.iter_mut()) {
            *bus_page = frame as BusPage; // every frame of the run is at most `last_frame`: fits
        }
        Ok(())
    }

    /// Nothing to end: the device keeps whatever access the machine gives
    /// it. Always `Ok`.
    fn revoke(&self, _bus_page: BusPage) -> Result<(), RevokeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bus_page_is_the_frame() {
        let mut pages = [0; 3];
        IdentityTranslation.translate_run(7, 0x1_0000, true, &mut pages).unwrap();
        assert_eq!(pages, [0x1_0000, 0x1_0001, 0x1_0002]);
        assert_eq!(IdentityTranslation.revoke(0x1_0001), Ok(()));
        assert_eq!(IdentityTranslation.translate_run(7, 5, false, &mut []), Ok(()));
    }

    #[test]
    fn a_frame_beyond_32_bits_is_refused_with_nothing_written() {
        let mut pages = [9; 2];
        let last_fitting = u64::from(u32::MAX);
        assert_eq!(
            IdentityTranslation.translate_run(0, last_fitting, false, &mut pages),
            Err(GrantError::FrameTooLarge)
        );
        assert_eq!(pages, [9, 9]);
        assert_eq!(IdentityTranslation.translate_run(0, u64::MAX, false, &mut pages), Err(GrantError::FrameTooLarge));
        IdentityTranslation.translate_run(0, last_fitting - 1, false, &mut pages).unwrap();
        assert_eq!(pages, [u32::MAX - 1, u32::MAX]);
    }
}
