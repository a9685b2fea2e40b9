//! The two networks of the examples, as functions, so that the examples, the benches and
//! the tests all build exactly the same model (and a user can start from them).

use super::{
    BatchNorm2d, Conv2d, ConvOptions, ConvTranspose2d, Dropout2d, Flatten, Linear, MaxPool2d, PoolOptions, ReLU,
    Sequential, Sigmoid,
};
use crate::error::Error;
use crate::rng::SplitMix64;

/// The MNIST classifier (M1 of the design's benchmark suite), for `[n, 1, 28, 28]` input:
/// conv(1→32, 3x3, pad 1)-BN-ReLU-maxpool2 → conv(32→64, 3x3, pad 1)-BN-ReLU-maxpool2 →
/// Dropout2d(0.25) → flatten → linear(3136→128)-ReLU → linear(128→10) logits.
///
/// ```
/// use sverka::nn::Layer;
/// let model = sverka::nn::models::mnist_cnn(&mut sverka::rng::SplitMix64::new(1))?;
/// assert_eq!(model.num_params(), 421_834);
/// # Ok::<(), sverka::Error>(())
/// ```
pub fn mnist_cnn(rng: &mut SplitMix64) -> Result<Sequential, Error> {
    Ok(Sequential::new()
        .with(Conv2d::new(ConvOptions::new(1, 32, 3).padding(1), rng)?)
        .with(BatchNorm2d::new(32)?)
        .with(ReLU::new())
        .with(MaxPool2d::new(PoolOptions::new(2)))
        .with(Conv2d::new(ConvOptions::new(32, 64, 3).padding(1), rng)?)
        .with(BatchNorm2d::new(64)?)
        .with(ReLU::new())
        .with(MaxPool2d::new(PoolOptions::new(2)))
        .with(Dropout2d::new(0.25, rng)?)
        .with(Flatten::new())
        .with(Linear::new(64 * 7 * 7, 128, rng)?)
        .with(ReLU::new())
        .with(Linear::new(128, 10, rng)?))
}

/// The convolutional autoencoder for `[n, 1, 28, 28]` input in `[0, 1]`: encoder
/// 1x28x28 → 16x14x14 → 32x7x7 → 8x7x7 (a 392-value bottleneck), decoder with transposed
/// convolutions 8x7x7 → 32x14x14 → 16x28x28 → 1x28x28; BatchNorm + ReLU between, sigmoid
/// output.
///
/// ```
/// use sverka::nn::Layer;
/// let model = sverka::nn::models::autoencoder(&mut sverka::rng::SplitMix64::new(1))?;
/// assert_eq!(model.num_params(), 14_425);
/// # Ok::<(), sverka::Error>(())
/// ```
pub fn autoencoder(rng: &mut SplitMix64) -> Result<Sequential, Error> {
    let down = |i, o| ConvOptions::new(i, o, 3).stride(2).padding(1);
    let up = |i, o| ConvOptions::new(i, o, 3).stride(2).padding(1).output_padding(1);
    Ok(Sequential::new()
        .with(Conv2d::new(down(1, 16), rng)?)
        .with(BatchNorm2d::new(16)?)
        .with(ReLU::new())
        .with(Conv2d::new(down(16, 32), rng)?)
        .with(BatchNorm2d::new(32)?)
        .with(ReLU::new())
        .with(Conv2d::new(ConvOptions::new(32, 8, 3).padding(1), rng)?)
        .with(BatchNorm2d::new(8)?)
        .with(ReLU::new())
        .with(ConvTranspose2d::new(up(8, 32), rng)?)
        .with(BatchNorm2d::new(32)?)
        .with(ReLU::new())
        .with(ConvTranspose2d::new(up(32, 16), rng)?)
        .with(BatchNorm2d::new(16)?)
        .with(ReLU::new())
        .with(Conv2d::new(ConvOptions::new(16, 1, 3).padding(1), rng)?)
        .with(Sigmoid::new()))
}
