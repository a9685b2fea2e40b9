//! Reference Dropout2d.

use crate::buffers;
use crate::error::Error;
use crate::rng::dropout_scale;
use crate::spec::Dropout2dSpec;

/// Reference [`crate::dropout2d`]: `channel_scale[n*C + c]` is 0 (dropped, probability `p`)
/// or `1/(1-p)`, and `output = input * channel_scale` of its plane.
pub fn dropout2d(
    s: &Dropout2dSpec,
    seed: u64,
    input: &[f32],
    output: &mut [f32],
    channel_scale: &mut [f32],
) -> Result<(), Error> {
    buffers::dropout2d(s, ("input", input), channel_scale, ("output", output))?;
    for (plane, scale) in channel_scale.iter_mut().enumerate() {
        *scale = dropout_scale(seed, plane, s.p);
    }
    dropout2d_backward(s, input, channel_scale, output)
}

/// Reference [`crate::dropout2d_backward`]: `grad_input = grad_output * channel_scale` of its plane.
pub fn dropout2d_backward(
    s: &Dropout2dSpec,
    grad_output: &[f32],
    channel_scale: &[f32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::dropout2d(s, ("grad_output", grad_output), channel_scale, ("grad_input", grad_input))?;
    for (i, (dx, &dy)) in grad_input.iter_mut().zip(grad_output).enumerate() {
        *dx = (dy as f64 * channel_scale[i / g.plane] as f64) as f32;
    }
    Ok(())
}
