//! The tests' random numbers: xorshift64, deterministic from its seed and
//! free of dependencies, so a failing seeded test fails the same way again.

/// A xorshift64 generator; the seed must not be 0.
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_xorshift64_and_stays_below_its_bound() {
        let mut random = XorShift(1);
        assert_eq!(random.next_u64(), 1_082_269_761);
        assert!((0..1000).all(|_| random.below(7) < 7));
    }
}
