//! conv2d forward and backward. The forward pass goes through a [`Conv2dPlan`] (SIMD
//! kernels, see `plan.rs`); the gradients use the unfolded (im2col + GEMM) driver.

mod blocked;
mod depthwise;
mod direct;
mod implicit_gemm;
mod indirect_gemm;
mod plan;
mod polyphase;
mod tasks;
mod unfold;
pub(crate) mod unfolded;
mod winograd;

pub use plan::{Algorithm, Conv2dPlan, Conv2dPlanBuilder};

use crate::buffers;
use crate::error::Error;
use crate::spec::Conv2dSpec;

/// 2-D convolution (PyTorch's `F.conv2d`): `output = conv(input, weight) + bias`.
///
/// Buffers: input `[batch, in_channels, h, w]`, weight `[out_channels, in_channels /
/// groups, kh, kw]`, bias `[out_channels]`, output `[batch, out_channels, oh, ow]`
/// (lengths from [`Conv2dSpec::input_len`] etc.). Returns `Err` on an invalid spec or a
/// wrong length, before writing anything.
pub fn conv2d(
    s: &Conv2dSpec,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<(), Error> {
    buffers::conv2d(s, input, weight, bias, output)?;
    Conv2dPlan::new(s, weight, bias)?.run(input, output)
}

/// Gradient of [`conv2d`] with respect to its input: `grad_input = conv^T(grad_output)`.
/// Overwrites `grad_input` (`[batch, in_channels, h, w]`).
pub fn conv2d_backward_input(
    s: &Conv2dSpec,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::conv2d_backward_input(s, grad_output, weight, grad_input)?;
    unfolded::backward_data(&g, grad_output, weight, grad_input)
}

/// Gradients of [`conv2d`] with respect to its weight and (optionally) bias, summed over
/// the batch. Overwrites `grad_weight` and `grad_bias`.
pub fn conv2d_backward_weight(
    s: &Conv2dSpec,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) -> Result<(), Error> {
    let g = buffers::conv2d_backward_weight(s, input, grad_output, grad_weight, grad_bias.as_deref())?;
    unfolded::backward_weight(&g, input, grad_output, grad_weight)?;
    if let Some(b) = grad_bias {
        unfolded::channel_sums(grad_output, s.out_channels, g.out_plane(), b);
    }
    Ok(())
}
