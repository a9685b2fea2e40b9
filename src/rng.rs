//! A small counter-based random stream (SplitMix64), the one source of randomness in
//! sverka: dropout masks, weight initialisation and data shuffling.
//!
//! Counter-based means `uniform(seed, i)` depends only on its two arguments, so a dropout
//! mask does not depend on how the work is split across threads, and runs are reproducible
//! from their seed.
//!
//! ```
//! let mut rng = sverka::rng::SplitMix64::new(42);
//! let a = rng.next_f64();
//! assert!((0.0..1.0).contains(&a));
//! assert_eq!(sverka::rng::SplitMix64::new(42).next_f64(), a);
//! ```

/// The SplitMix64 generator (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// A uniform number in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform number in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f64() as f32
    }

    /// A uniform index in `0..n` (`n > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// The `i`-th uniform number in `[0, 1)` of stream `seed`, independent of every other
/// `i`: the counter-based form used by dropout.
pub fn uniform_at(seed: u64, i: u64) -> f64 {
    (mix(mix(seed ^ GOLDEN).wrapping_add(i.wrapping_mul(GOLDEN))) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Dropout2d's scale for plane `plane` (`n * channels + c`) of stream `seed`: `0` with
/// probability `p`, else `1 / (1 - p)`. With `p = 1` every plane gets 0.
pub fn dropout_scale(seed: u64, plane: usize, p: f32) -> f32 {
    if uniform_at(seed, plane as u64) < p as f64 { 0.0 } else { 1.0 / (1.0 - p) }
}
