//! The oracle: every public operation of sverka as the plainest possible loops, with
//! `f64` accumulation, written straight from PyTorch's definitions and independent of the
//! fast paths (it shares only the spec validation and the dropout random stream).
//!
//! Use it to check the fast path on your own shapes: it has the same signatures and the
//! same validation as the functions at the crate root. It is slow (no blocking, no SIMD,
//! `O(output * kernel)` work even where the kernel hangs over the padding) and meant for
//! tests, not production.
//!
//! ```
//! use sverka::{Conv2dSpec, Padding};
//! let spec = Conv2dSpec {
//!     batch: 1, in_channels: 1, out_channels: 1, input: [3, 3], kernel: [2, 2],
//!     stride: [1, 1], padding: Padding::ZERO, dilation: [1, 1], groups: 1,
//! };
//! let input: Vec<f32> = (1..=9).map(|v| v as f32).collect();
//! let mut fast = vec![0.0; 4];
//! let mut oracle = vec![0.0; 4];
//! sverka::conv2d(&spec, &input, &[1.0, 0.0, 0.0, 1.0], None, &mut fast).unwrap();
//! sverka::reference::conv2d(&spec, &input, &[1.0, 0.0, 0.0, 1.0], None, &mut oracle).unwrap();
//! assert_eq!(fast, oracle);
//! assert_eq!(oracle, [6.0, 8.0, 12.0, 14.0]);
//! ```

mod conv;
mod conv_transpose;
mod dropout;
mod norm;
mod pool;

pub use conv::{conv2d, conv2d_backward_input, conv2d_backward_weight};
pub use conv_transpose::{conv_transpose2d, conv_transpose2d_backward_input, conv_transpose2d_backward_weight};
pub use dropout::{dropout2d, dropout2d_backward};
pub use norm::{batch_norm2d_backward, batch_norm2d_eval, batch_norm2d_train};
pub use pool::{avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward};

/// Row (or column) `o * stride - pad + tap * dilation` in signed arithmetic; `None` when
/// it falls outside `0..size`.
fn tap(o: usize, stride: usize, pad: usize, t: usize, dilation: usize, size: usize) -> Option<usize> {
    let r = (o * stride + t * dilation) as i128 - pad as i128;
    (0..size as i128).contains(&r).then_some(r as usize)
}

/// Index of `[a, b, c, d]` in a contiguous array of shape `[_, nb, nc, nd]`.
fn at(a: usize, b: usize, c: usize, d: usize, nb: usize, nc: usize, nd: usize) -> usize {
    ((a * nb + b) * nc + c) * nd + d
}

/// Rounds the f64 accumulators into the f32 output.
fn store(out: &mut [f32], acc: &[f64]) {
    for (o, a) in out.iter_mut().zip(acc) {
        *o = *a as f32;
    }
}

/// Accumulators for an NCHW output of `channels` planes of `plane` pixels each, set to
/// the bias of their channel (or zero).
fn biased(len: usize, channels: usize, plane: usize, bias: Option<&[f32]>) -> Vec<f64> {
    (0..len).map(|i| bias.map_or(0.0, |b| b[(i / plane) % channels] as f64)).collect()
}

/// The bias gradient: `grad_bias[c]` = sum of `grad_output` over batch and pixels of channel `c`.
fn bias_grad(grad_output: &[f32], channels: usize, plane: usize, grad_bias: &mut [f32]) {
    let mut sums = vec![0f64; channels];
    for (i, &v) in grad_output.iter().enumerate() {
        sums[(i / plane) % channels] += v as f64;
    }
    store(grad_bias, &sums);
}
