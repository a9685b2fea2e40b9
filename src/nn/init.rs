//! PyTorch's default initialisation, drawn from a seeded [`SplitMix64`] so runs are
//! reproducible.

use crate::rng::SplitMix64;

/// `len` values uniform in `[-bound, bound)`.
pub fn uniform(len: usize, bound: f32, rng: &mut SplitMix64) -> Vec<f32> {
    (0..len).map(|_| rng.uniform(-bound, bound)).collect()
}

/// Kaiming-uniform (He et al. 2015) with negative slope `a`, as `torch.nn.init.kaiming_uniform_`
/// in `fan_in` mode with the leaky-ReLU gain: bound `sqrt(2 / (1 + a²)) * sqrt(3 / fan_in)`.
///
/// PyTorch's layers use `a = √5`, which makes the bound `1 / sqrt(fan_in)`.
pub fn kaiming_uniform(len: usize, fan_in: usize, a: f32, rng: &mut SplitMix64) -> Vec<f32> {
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    uniform(len, gain * (3.0 / fan_in as f32).sqrt(), rng)
}

/// PyTorch's default weight initialisation for Conv2d, ConvTranspose2d and Linear:
/// Kaiming-uniform with `a = √5`.
pub fn default_weight(len: usize, fan_in: usize, rng: &mut SplitMix64) -> Vec<f32> {
    kaiming_uniform(len, fan_in, 5f32.sqrt(), rng)
}

/// PyTorch's default bias initialisation: uniform in `±1 / sqrt(fan_in)`.
pub fn default_bias(len: usize, fan_in: usize, rng: &mut SplitMix64) -> Vec<f32> {
    uniform(len, 1.0 / (fan_in as f32).sqrt(), rng)
}
