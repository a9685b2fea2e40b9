//! conv_transpose2d forward and backward, as the adjoint of a convolution.
//!
//! `ConvTranspose2dSpec::geometry` describes the convolution `A` that maps this op's
//! output to its input, with exactly this op's weight. Then
//! - forward: `y = A^T x` (A's data gradient) plus bias;
//! - gradient w.r.t. input: `dx = A dy` (A's forward);
//! - gradient w.r.t. weight: A's weight gradient with the roles of `x` and `dy` swapped.

use crate::buffers;
use crate::conv::unfolded;
use crate::error::Error;
use crate::spec::ConvTranspose2dSpec;

/// 2-D transposed convolution (PyTorch's `F.conv_transpose2d`).
///
/// Buffers: input `[batch, in_channels, h, w]`, weight `[in_channels, out_channels /
/// groups, kh, kw]`, bias `[out_channels]`, output `[batch, out_channels, oh, ow]` with
/// `oh = (h-1)*stride - pad_top - pad_bottom + dilation*(kh-1) + output_padding + 1`.
///
/// ```
/// use sverka::{ConvTranspose2dSpec, Padding};
/// // Stride 2, kernel 2: every input pixel becomes a 2x2 block.
/// let spec = ConvTranspose2dSpec {
///     batch: 1, in_channels: 1, out_channels: 1, input: [1, 2], kernel: [2, 2],
///     stride: [2, 2], padding: Padding::ZERO, dilation: [1, 1], groups: 1,
///     output_padding: [0, 0],
/// };
/// let mut out = vec![0.0; spec.output_len()?];
/// sverka::conv_transpose2d(&spec, &[1.0, 2.0], &[1.0, 1.0, 1.0, 1.0], None, &mut out)?;
/// assert_eq!(out, [1., 1., 2., 2., 1., 1., 2., 2.]);
/// # Ok::<(), sverka::Error>(())
/// ```
pub fn conv_transpose2d(
    s: &ConvTranspose2dSpec,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::conv_transpose2d(s, input, weight, bias, output)?;
    unfolded::backward_data(&g, input, weight, output)?;
    if let Some(b) = bias {
        for (i, plane) in output.chunks_exact_mut(g.in_plane()).enumerate() {
            let bias = b[i % s.out_channels];
            plane.iter_mut().for_each(|v| *v += bias);
        }
    }
    Ok(())
}

/// Gradient of [`conv_transpose2d`] with respect to its input (a convolution of
/// `grad_output`). Overwrites `grad_input` (`[batch, in_channels, h, w]`).
pub fn conv_transpose2d_backward_input(
    s: &ConvTranspose2dSpec,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::conv_transpose2d_backward_input(s, grad_output, weight, grad_input)?;
    unfolded::forward(&g, grad_output, weight, None, grad_input)
}

/// Gradients of [`conv_transpose2d`] with respect to its weight and (optionally) bias,
/// summed over the batch. Overwrites `grad_weight` and `grad_bias`.
pub fn conv_transpose2d_backward_weight(
    s: &ConvTranspose2dSpec,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) -> Result<(), Error> {
    let g = buffers::conv_transpose2d_backward_weight(s, input, grad_output, grad_weight, grad_bias.as_deref())?;
    unfolded::backward_weight(&g, grad_output, input, grad_weight)?;
    if let Some(b) = grad_bias {
        unfolded::channel_sums(grad_output, s.out_channels, g.in_plane(), b);
    }
    Ok(())
}
