//! [`GrantList`]: the grant references of one mapping, in page order, held
//! inline for buffers of up to [`INLINE_GRANTS`] pages. (They are the
//! translation's bus pages: grant references on Xen, frame numbers under the
//! identity translation; the list does not care.)
//!
//! A handle needs one reference per page its buffer touches. Almost every
//! buffer is one page (netfront's pooled rx and tx pages, the benchmark), so
//! a heap list per handle would cost an allocation on `map` and a free on
//! `unmap`. The list keeps up to [`INLINE_GRANTS`] references in place and
//! moves to the heap only above that; it is the same size either way (32
//! bytes), the size of the `Vec` it replaces plus its tag. A refused unmap
//! shrinks the list in place to the references the backend still holds, so
//! the refusal and the deferred queue do not allocate either.
//!
//! Never: expose references past the list's length (the unused inline slots
//! are zeros or references already dropped from the list: not grants of it).

use crate::translation::BusPage;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Deref;

/// How many references a list holds without allocating: five, with their
/// 4-byte count, fill the 24 bytes a `Vec` (the heap form) takes anyway, so
/// the list is 32 bytes either way, tag included, and a handle costs no
/// more than it did with a `Vec`. Five pages cover any buffer up to 16 KiB
/// at any offset, 20 KiB page-aligned; above that one allocation is small
/// beside the per-page grant work.
pub(crate) const INLINE_GRANTS: usize = 5;

/// The inline form: `len` references, then unused slots.
///
/// Aligned to 8 bytes so that, as with the `Vec` it replaces, the enum's
/// contents start 8 bytes after its tag. With a byte or a 4-byte count right
/// after the tag (room for seven or six references), opt-level "s" moves a
/// handle (every pool `take` and `put`) with a call to `memcpy` or in 4-byte
/// pieces, and a pooled packet measured 10 to 15 % slower.
#[derive(Debug)]
#[repr(align(8))]
pub(crate) struct InlineGrants {
    len: u32,
    references: [BusPage; INLINE_GRANTS],
}

/// Grant references in page order: inline up to [`INLINE_GRANTS`], on the
/// heap above.
#[derive(Debug)]
pub(crate) enum GrantList {
    /// At most [`INLINE_GRANTS`] references.
    Inline(InlineGrants),
    /// A list longer than [`INLINE_GRANTS`] when it was made.
    Spilled(Vec<BusPage>),
}

impl GrantList {
    /// `count` zero references, for [`crate::Translation::translate_run`] to
    /// fill.
    /// Allocates only when `count` is above [`INLINE_GRANTS`].
    pub(crate) fn zeroed(count: usize) -> Self {
        match u32::try_from(count) {
            Ok(len) if count <= INLINE_GRANTS => {
                GrantList::Inline(InlineGrants { len, references: [0; INLINE_GRANTS] })
            }
            _ => GrantList::Spilled(vec![0; count]),
        }
    }

    /// The references, for writing (their number is fixed).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [BusPage] {
        match self {
            GrantList::Inline(inline) => &mut inline.references[..inline.len as usize],
            GrantList::Spilled(references) => references,
        }
    }

    /// Keeps the references for which `keep` is true, in order, in place:
    /// never allocates.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(BusPage) -> bool) {
        match self {
            GrantList::Inline(inline) => {
                let mut kept = 0;
                for read in 0..inline.len as usize {
                    let reference = inline.references[read];
                    if keep(reference) {
                        inline.references[kept] = reference;
                        kept += 1;
                    }
                }
                inline.len = kept as u32; // kept <= len, a u32
            }
            GrantList::Spilled(references) => references.retain(|&reference| keep(reference)),
        }
    }
}

impl Deref for GrantList {
    type Target = [BusPage];

    fn deref(&self) -> &[BusPage] {
        match self {
            GrantList::Inline(inline) => &inline.references[..inline.len as usize],
            GrantList::Spilled(references) => references,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_lists_are_inline_and_large_ones_spill() {
        for count in 1..=INLINE_GRANTS {
            let list = GrantList::zeroed(count);
            assert!(matches!(list, GrantList::Inline(_)), "{count} references fit inline");
            assert_eq!(list.len(), count);
        }
        for count in [INLINE_GRANTS + 1, 16, 17, 300] {
            let list = GrantList::zeroed(count);
            assert!(matches!(list, GrantList::Spilled(_)), "{count} references spill");
            assert_eq!(list.len(), count);
        }
        assert!(GrantList::zeroed(0).is_empty());
    }

    #[test]
    fn retain_keeps_the_chosen_references_in_order() {
        for count in [1, 3, INLINE_GRANTS, INLINE_GRANTS + 1, 17] {
            let mut list = GrantList::zeroed(count);
            list.as_mut_slice().iter_mut().zip(10..).for_each(|(slot, reference)| *slot = reference);
            list.retain(|reference| reference % 2 == 1);
            let expected: Vec<BusPage> = (10..10 + count as BusPage).filter(|reference| reference % 2 == 1).collect();
            assert_eq!(&*list, expected.as_slice());
            list.retain(|_| false);
            assert!(list.is_empty());
        }
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_list_is_no_larger_than_a_vec_and_its_tag() {
        assert_eq!(size_of::<GrantList>(), 32);
    }
}
