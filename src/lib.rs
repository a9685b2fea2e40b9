//! # sverka — fast CPU kernels for convolutional neural networks
//!
//! Convolution, transposed convolution, max/average pooling, channel-wise BatchNorm2d and
//! Dropout2d, forward and backward, with PyTorch's semantics and layouts (NCHW activations,
//! `[out_c, in_c/groups, kh, kw]` convolution weights, `[in_c, out_c/groups, kh, kw]`
//! transposed-convolution weights).
//!
//! The API is slice based: every buffer is a contiguous `&[f32]` described by a spec
//! struct, validated up front. Bad input is an [`Error`], never a panic.
//!
//! ```
//! use sverka::{Conv2dSpec, Padding};
//!
//! // A 5x5 image and a 3x3 kernel: PyTorch's F.conv2d gives the same numbers.
//! let spec = Conv2dSpec {
//!     batch: 1, in_channels: 1, out_channels: 1, input: [5, 5], kernel: [3, 3],
//!     stride: [1, 1], padding: Padding::ZERO, dilation: [1, 1], groups: 1,
//! };
//! let input = [0., 1., 2., 1., 0., 4., 1., 0., 1., 0., 2., 0., 1., 1., 1.,
//!              1., 2., 3., 1., 0., 0., 4., 3., 2., 0.];
//! let weight = [0., 1., 0., 1., 0., 1., 2., 1., 0.];
//! let mut output = vec![0.0; spec.output_len()?];
//! sverka::conv2d(&spec, &input, &weight, None, &mut output)?;
//! assert_eq!(spec.output()?, [3, 3]);
//! assert_eq!(output, [9., 5., 4., 8., 8., 10., 8., 15., 12.]);
//! # Ok::<(), sverka::Error>(())
//! ```
//!
//! - [`Conv2dPlan`] is the fast path's real API: it validates once, picks the algorithm and
//!   the generated SIMD kernel for this CPU ([`Isa`]), packs the weights and owns its
//!   workspace, so `run` allocates nothing; the one-shot [`conv2d`] builds one per call.
//! - [`reference`](mod@reference) holds every operation as plain `f64`-accumulating loops: the oracle the
//!   fast paths are tested against.
//! - [`nn`] is a thin layer/training module on top (layers, losses, optimisers,
//!   safetensors checkpoints with PyTorch names, the MNIST IDX format).
//! - Threads come from rayon's current pool; results do not depend on the thread count.

mod buffers;
mod conv;
mod dropout;
mod error;
mod isa;
pub mod kernels;
pub mod nn;
mod norm;
mod pool;
pub mod reference;
pub mod rng;
mod sgemm;
mod spec;
mod transpose_conv;

pub use conv::{Algorithm, Conv2dPlan, Conv2dPlanBuilder, conv2d, conv2d_backward_input, conv2d_backward_weight};
pub use dropout::{dropout2d, dropout2d_backward};
pub use error::Error;
pub use isa::Isa;
pub use norm::{batch_norm2d_backward, batch_norm2d_eval, batch_norm2d_train};
pub use pool::{avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward};
pub use spec::{BatchNorm2dSpec, Conv2dSpec, ConvTranspose2dSpec, Dropout2dSpec, Padding, Pool2dSpec};
pub use transpose_conv::{conv_transpose2d, conv_transpose2d_backward_input, conv_transpose2d_backward_weight};

/// The README's code sample, compiled and run as a doc-test so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
