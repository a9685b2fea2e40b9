//! Buffer-length validation of every entry point, shared by the fast paths and the
//! reference: each function validates the spec, checks every slice against it (in
//! argument order, so the first wrong buffer is the one reported) and returns the geometry.

use crate::error::{Error, check_len};
use crate::spec::{
    BatchNorm2dSpec, ChannelGeom, Conv2dSpec, ConvGeom, ConvTranspose2dSpec, Dropout2dSpec, Pool2dSpec, PoolGeom,
};

/// Checks an optional per-channel buffer.
fn check_opt(buffer: &'static str, slice: Option<&[f32]>, expected: usize) -> Result<(), Error> {
    slice.map_or(Ok(()), |s| check_len(buffer, s, expected))
}

/// `conv2d(input, weight, bias, output)`.
pub(crate) fn conv2d(
    s: &Conv2dSpec,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &[f32],
) -> Result<ConvGeom, Error> {
    let g = s.geometry()?;
    check_len("input", input, g.input_len)?;
    check_len("weight", weight, g.weight_len)?;
    check_opt("bias", bias, s.out_channels)?;
    check_len("output", output, g.output_len)?;
    Ok(g)
}

/// `conv2d_backward_input(grad_output, weight, grad_input)`.
pub(crate) fn conv2d_backward_input(
    s: &Conv2dSpec,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &[f32],
) -> Result<ConvGeom, Error> {
    let g = s.geometry()?;
    check_len("grad_output", grad_output, g.output_len)?;
    check_len("weight", weight, g.weight_len)?;
    check_len("grad_input", grad_input, g.input_len)?;
    Ok(g)
}

/// `conv2d_backward_weight(input, grad_output, grad_weight, grad_bias)`.
pub(crate) fn conv2d_backward_weight(
    s: &Conv2dSpec,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &[f32],
    grad_bias: Option<&[f32]>,
) -> Result<ConvGeom, Error> {
    let g = s.geometry()?;
    check_len("input", input, g.input_len)?;
    check_len("grad_output", grad_output, g.output_len)?;
    check_len("grad_weight", grad_weight, g.weight_len)?;
    check_opt("grad_bias", grad_bias, s.out_channels)?;
    Ok(g)
}

/// `conv_transpose2d(input, weight, bias, output)`; the geometry is the adjoint
/// convolution's, so this op's input is its output and vice versa.
pub(crate) fn conv_transpose2d(
    s: &ConvTranspose2dSpec,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &[f32],
) -> Result<ConvGeom, Error> {
    let g = s.geometry()?;
    check_len("input", input, g.output_len)?;
    check_len("weight", weight, g.weight_len)?;
    check_opt("bias", bias, s.out_channels)?;
    check_len("output", output, g.input_len)?;
    Ok(g)
}

/// `conv_transpose2d_backward_input(grad_output, weight, grad_input)`.
pub(crate) fn conv_transpose2d_backward_input(
    s: &ConvTranspose2dSpec,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &[f32],
) -> Result<ConvGeom, Error> {
    let g = s.geometry()?;
    check_len("grad_output", grad_output, g.input_len)?;
    check_len("weight", weight, g.weight_len)?;
    check_len("grad_input", grad_input, g.output_len)?;
    Ok(g)
}

/// `conv_transpose2d_backward_weight(input, grad_output, grad_weight, grad_bias)`.
pub(crate) fn conv_transpose2d_backward_weight(
    s: &ConvTranspose2dSpec,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &[f32],
    grad_bias: Option<&[f32]>,
) -> Result<ConvGeom, Error> {
    let g = s.geometry()?;
    check_len("input", input, g.output_len)?;
    check_len("grad_output", grad_output, g.input_len)?;
    check_len("grad_weight", grad_weight, g.weight_len)?;
    check_opt("grad_bias", grad_bias, s.out_channels)?;
    Ok(g)
}

/// `max_pool2d(input, output, indices)` and `avg_pool2d(input, output)`.
pub(crate) fn pool2d(
    s: &Pool2dSpec,
    input: &[f32],
    output: &[f32],
    indices: Option<&[u32]>,
) -> Result<PoolGeom, Error> {
    let g = s.geometry()?;
    check_len("input", input, g.input_len)?;
    check_len("output", output, g.output_len)?;
    if let Some(ix) = indices {
        check_len("indices", ix, g.output_len)?;
    }
    Ok(g)
}

/// `max_pool2d_backward(grad_output, indices, grad_input)` and
/// `avg_pool2d_backward(grad_output, grad_input)`.
pub(crate) fn pool2d_backward(
    s: &Pool2dSpec,
    grad_output: &[f32],
    indices: Option<&[u32]>,
    grad_input: &[f32],
) -> Result<PoolGeom, Error> {
    let g = s.geometry()?;
    check_len("grad_output", grad_output, g.output_len)?;
    if let Some(ix) = indices {
        check_len("indices", ix, g.output_len)?;
        let plane = g.in_plane();
        if let Some(position) = ix.iter().position(|&i| i as usize >= plane) {
            return Err(Error::Index { position, index: ix[position], plane });
        }
    }
    check_len("grad_input", grad_input, g.input_len)?;
    Ok(g)
}

/// `batch_norm2d_train(input, gamma, beta, running_mean, running_var, output, saved_mean,
/// saved_invstd)`: `per_channel` lists the six per-channel buffers in that order.
pub(crate) fn batch_norm2d_train(
    s: &BatchNorm2dSpec,
    input: &[f32],
    per_channel: [(&'static str, &[f32]); 4],
    output: &[f32],
    saved: [(&'static str, &[f32]); 2],
) -> Result<ChannelGeom, Error> {
    let g = s.train_geometry()?;
    check_len("input", input, g.len)?;
    for (name, buf) in per_channel {
        check_len(name, buf, g.channels)?;
    }
    check_len("output", output, g.len)?;
    for (name, buf) in saved {
        check_len(name, buf, g.channels)?;
    }
    Ok(g)
}

/// `batch_norm2d_eval(input, gamma, beta, running_mean, running_var, output)`.
pub(crate) fn batch_norm2d_eval(
    s: &BatchNorm2dSpec,
    input: &[f32],
    per_channel: [(&'static str, &[f32]); 4],
    output: &[f32],
) -> Result<ChannelGeom, Error> {
    let g = s.geometry()?;
    check_len("input", input, g.len)?;
    for (name, buf) in per_channel {
        check_len(name, buf, g.channels)?;
    }
    check_len("output", output, g.len)?;
    Ok(g)
}

/// `batch_norm2d_backward(input, grad_output, gamma, saved_mean, saved_invstd, grad_input,
/// grad_gamma, grad_beta)`.
pub(crate) fn batch_norm2d_backward(
    s: &BatchNorm2dSpec,
    [input, grad_output]: [&[f32]; 2],
    per_channel: [(&'static str, &[f32]); 3],
    grad_input: &[f32],
    grads: [(&'static str, &[f32]); 2],
) -> Result<ChannelGeom, Error> {
    let g = s.geometry()?;
    check_len("input", input, g.len)?;
    check_len("grad_output", grad_output, g.len)?;
    for (name, buf) in per_channel {
        check_len(name, buf, g.channels)?;
    }
    check_len("grad_input", grad_input, g.len)?;
    for (name, buf) in grads {
        check_len(name, buf, g.channels)?;
    }
    Ok(g)
}

/// `dropout2d(input, output, channel_scale)` and
/// `dropout2d_backward(grad_output, channel_scale, grad_input)`: `x` is the tensor read,
/// `y` the tensor written.
pub(crate) fn dropout2d(
    s: &Dropout2dSpec,
    (x_name, x): (&'static str, &[f32]),
    channel_scale: &[f32],
    (y_name, y): (&'static str, &[f32]),
) -> Result<ChannelGeom, Error> {
    let g = s.geometry()?;
    check_len(x_name, x, g.len)?;
    check_len("channel_scale", channel_scale, g.batch * g.channels)?;
    check_len(y_name, y, g.len)?;
    Ok(g)
}
