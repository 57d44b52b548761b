//! The page-frame allocator: one bit per 4 KiB frame of guest-physical RAM.
//!
//! A set bit means "in use or not RAM". The allocator starts with every bit
//! set, RAM ranges are then released and reserved ranges (kernel image,
//! start info, special pages, the bitmap itself) taken back. The bitmap's
//! storage is lent by the caller, so the same code runs on the host in tests.
//!
//! Contract: a frame is handed out at most once until it is freed; freeing a
//! frame that is not allocated, or is outside the span, is reported as an
//! error and changes nothing.

use core::ops::Range;

/// Size of a frame.
pub const FRAME_SIZE: u64 = 4096;

/// A guest-physical frame number (address / 4096).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FrameNumber(pub u64);

impl FrameNumber {
    /// The frame's first byte.
    pub fn address(self) -> u64 {
        self.0 * FRAME_SIZE
    }
}

/// Why a free was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreeError {
    /// The frame lies outside the managed span.
    OutOfSpan(FrameNumber),
    /// The frame was already free.
    NotAllocated(FrameNumber),
}

/// A bitmap frame allocator over one span of guest-physical memory.
pub struct FrameAllocator<'a> {
    bitmap: &'a mut [u64],
    first: u64,
    count: u64,
    free: u64,
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// Words of bitmap needed to manage `span`.
    pub fn bitmap_words(span: &Range<u64>) -> usize {
        let frames = span.end.div_ceil(FRAME_SIZE) - span.start / FRAME_SIZE;
        frames.div_ceil(64) as usize
    }

    /// An allocator over `span` with every frame in use. `bitmap` must have
    /// at least [`Self::bitmap_words`] words.
    pub fn new(span: Range<u64>, bitmap: &'a mut [u64]) -> Self {
        let first = span.start / FRAME_SIZE;
        let count = span.end.div_ceil(FRAME_SIZE) - first;
        assert!(bitmap.len() as u64 * 64 >= count, "frame bitmap too small");
        bitmap.fill(u64::MAX);
        Self { bitmap, first, count, free: 0, hint: 0 }
    }

    /// Marks the whole frames inside `range` free (partial frames stay used).
    pub fn release(&mut self, range: Range<u64>) {
        let start = range.start.div_ceil(FRAME_SIZE);
        let end = range.end / FRAME_SIZE;
        for frame in self.clip(start, end) {
            self.set(frame, false);
        }
    }

    /// Marks every frame touched by `range` in use.
    pub fn reserve(&mut self, range: Range<u64>) {
        let start = range.start / FRAME_SIZE;
        let end = range.end.div_ceil(FRAME_SIZE);
        for frame in self.clip(start, end) {
            self.set(frame, true);
        }
    }

    /// Frames free now.
    pub fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames managed (free or not).
    pub fn span_frames(&self) -> u64 {
        self.count
    }

    /// The longest run of free frames in a row: the most
    /// [`Self::allocate_contiguous`] can hand out at once (unaligned).
    pub fn largest_free_run(&self) -> u64 {
        let (mut longest, mut current) = (0, 0);
        for frame in 0..self.count {
            current = if self.is_used(frame) { 0 } else { current + 1 };
            longest = longest.max(current);
        }
        longest
    }

    /// One free frame, or `None` when memory is exhausted.
    pub fn allocate(&mut self) -> Option<FrameNumber> {
        let words = self.bitmap.len();
        let index = (0..words).map(|i| (self.hint + i) % words).find(|&i| self.bitmap[i] != u64::MAX)?;
        let bit = (!self.bitmap[index]).trailing_zeros() as u64;
        let frame = index as u64 * 64 + bit;
        if frame >= self.count {
            return None;
        }
        self.hint = index;
        self.set(frame, true);
        Some(FrameNumber(self.first + frame))
    }

    /// `frames` free frames in a row, aligned to `align_frames` (a power of
    /// two), lowest first; `None` if no such run exists.
    pub fn allocate_contiguous(&mut self, frames: u64, align_frames: u64) -> Option<FrameNumber> {
        debug_assert!(align_frames.is_power_of_two());
        let mut candidate = (self.first.div_ceil(align_frames) * align_frames) - self.first;
        while candidate + frames <= self.count {
            match (candidate..candidate + frames).rev().find(|&frame| self.is_used(frame)) {
                None => {
                    (candidate..candidate + frames).for_each(|frame| self.set(frame, true));
                    return Some(FrameNumber(self.first + candidate));
                }
                Some(used) => {
                    let next = self.first + used + 1;
                    candidate = next.div_ceil(align_frames) * align_frames - self.first;
                }
            }
        }
        None
    }

    /// Returns a frame to the allocator.
    pub fn free(&mut self, frame: FrameNumber) -> Result<(), FreeError> {
        let index = frame.0.checked_sub(self.first).filter(|&index| index < self.count);
        let index = index.ok_or(FreeError::OutOfSpan(frame))?;
        if !self.is_used(index) {
            return Err(FreeError::NotAllocated(frame));
        }
        self.set(index, false);
        Ok(())
    }

    fn clip(&self, start: u64, end: u64) -> Range<u64> {
        let start = start.clamp(self.first, self.first + self.count) - self.first;
        let end = end.clamp(self.first, self.first + self.count) - self.first;
        start..end.max(start)
    }

    fn is_used(&self, index: u64) -> bool {
        self.bitmap[(index / 64) as usize] & (1 << (index % 64)) != 0
    }

    fn set(&mut self, index: u64, used: bool) {
        let was_used = self.is_used(index);
        let word = &mut self.bitmap[(index / 64) as usize];
        let mask = 1 << (index % 64);
        match (was_used, used) {
            (true, false) => {
                *word &= !mask;
                self.free += 1;
            }
            (false, true) => {
                *word |= mask;
                self.free -= 1;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn allocator(span: Range<u64>, storage: &mut Vec<u64>) -> FrameAllocator<'_> {
        storage.resize(FrameAllocator::bitmap_words(&span), 0);
        FrameAllocator::new(span, storage)
    }

    #[test]
    fn starts_full_then_releases_whole_frames_only() {
        let mut storage = Vec::new();
        let mut frames = allocator(0..0x10_0000, &mut storage);
        assert_eq!(frames.free_frames(), 0);
        assert_eq!(frames.allocate(), None);
        frames.release(0x1800..0x4800);
        assert_eq!(frames.free_frames(), 2, "frames 2 and 3 only");
        assert_eq!(frames.allocate(), Some(FrameNumber(2)));
        assert_eq!(frames.allocate(), Some(FrameNumber(3)));
        assert_eq!(frames.allocate(), None);
    }

    #[test]
    fn reservations_cover_partial_frames() {
        let mut storage = Vec::new();
        let mut frames = allocator(0..0x10_0000, &mut storage);
        frames.release(0..0x10_0000);
        frames.reserve(0x1fff..0x3001);
        assert_eq!(frames.free_frames(), 256 - 3);
        let handed: HashSet<u64> = std::iter::from_fn(|| frames.allocate()).map(|f| f.0).collect();
        assert_eq!(handed.len(), 253);
        assert!(!handed.contains(&1) && !handed.contains(&2) && !handed.contains(&3));
    }

    #[test]
    fn never_hands_out_a_frame_twice_and_refuses_bad_frees() {
        let mut storage = Vec::new();
        let mut frames = allocator(0x10_0000..0x20_0000, &mut storage);
        frames.release(0x10_0000..0x20_0000);
        let first = frames.allocate().unwrap();
        assert_eq!(first, FrameNumber(0x100));
        assert_eq!(frames.free(FrameNumber(0x10)), Err(FreeError::OutOfSpan(FrameNumber(0x10))));
        assert_eq!(frames.free(FrameNumber(0x200)), Err(FreeError::OutOfSpan(FrameNumber(0x200))));
        assert_eq!(frames.free(first), Ok(()));
        assert_eq!(frames.free(first), Err(FreeError::NotAllocated(first)));
        assert_eq!(frames.free_frames(), 256);
    }

    #[test]
    fn the_largest_free_run_is_what_one_contiguous_allocation_can_take() {
        let mut storage = Vec::new();
        let mut frames = allocator(0..0x40_0000, &mut storage);
        assert_eq!(frames.largest_free_run(), 0);
        frames.release(0x1000..0x10_0000);
        frames.release(0x1c_0000..0x40_0000);
        assert_eq!(frames.largest_free_run(), 576);
        assert_eq!(frames.free_frames(), 255 + 576);
        assert_eq!(frames.allocate_contiguous(577, 1), None);
        assert_eq!(frames.allocate_contiguous(576, 1), Some(FrameNumber(0x1c0)));
        assert_eq!(frames.largest_free_run(), 255);
    }

    #[test]
    fn contiguous_runs_respect_alignment_and_holes() {
        let mut storage = Vec::new();
        let mut frames = allocator(0x1000..0x80_0000, &mut storage);
        frames.release(0x1000..0x80_0000);
        frames.reserve(0x20_0000..0x20_1000);
        let run = frames.allocate_contiguous(512, 512).unwrap();
        assert_eq!(run.address(), 0x40_0000, "0x200000 run is broken by the reservation");
        let small = frames.allocate_contiguous(16, 1).unwrap();
        assert_eq!(small.address(), 0x1000);
        assert_eq!(frames.allocate_contiguous(2048, 1), None);
        assert_eq!(frames.free_frames(), 2047 - 1 - 512 - 16);
    }

    #[test]
    fn random_allocate_free_sequences_keep_the_count() {
        let mut storage = Vec::new();
        let mut frames = allocator(0..0x40_0000, &mut storage);
        frames.release(0x1000..0x40_0000);
        let mut held = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if !seed.is_multiple_of(3) {
                if let Some(frame) = frames.allocate() {
                    assert!(!held.contains(&frame));
                    held.push(frame);
                }
            } else if !held.is_empty() {
                let frame = held.swap_remove((seed as usize / 3) % held.len());
                frames.free(frame).unwrap();
            }
            assert_eq!(frames.free_frames() + held.len() as u64, 1023);
        }
    }
}
