//! Reference BatchNorm2d (PyTorch semantics: biased variance to normalise, unbiased
//! variance into the running estimate).

use crate::buffers;
use crate::error::Error;
use crate::spec::BatchNorm2dSpec;

/// Indices of the values of channel `c` of an NCHW tensor, in memory order.
fn channel(s: &BatchNorm2dSpec, c: usize) -> impl Iterator<Item = usize> + use<> {
    let plane = s.input[0] * s.input[1];
    let channels = s.channels;
    (0..s.batch).flat_map(move |n| {
        let start = (n * channels + c) * plane;
        start..start + plane
    })
}

/// Reference [`crate::batch_norm2d_train`].
///
/// Per channel: `mean`, biased `var` over batch and pixels; `y = (x - mean) * invstd *
/// gamma + beta` with `invstd = 1 / sqrt(var + eps)`; `running_mean = (1-m) *
/// running_mean + m * mean`; `running_var = (1-m) * running_var + m * var * M/(M-1)`
/// with `M = batch * h * w` (which must be at least 2).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_train(
    s: &BatchNorm2dSpec,
    input: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &mut [f32],
    running_var: &mut [f32],
    output: &mut [f32],
    saved_mean: &mut [f32],
    saved_invstd: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::batch_norm2d_train(
        s,
        input,
        [("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)],
        output,
        [("saved_mean", saved_mean), ("saved_invstd", saved_invstd)],
    )?;
    let count = (g.batch * g.plane) as f64;
    let m = s.momentum as f64;
    for c in 0..s.channels {
        let mean = channel(s, c).map(|i| input[i] as f64).sum::<f64>() / count;
        let var = channel(s, c).map(|i| (input[i] as f64 - mean).powi(2)).sum::<f64>() / count;
        let invstd = 1.0 / (var + s.eps as f64).sqrt();
        for i in channel(s, c) {
            output[i] = ((input[i] as f64 - mean) * invstd * gamma[c] as f64 + beta[c] as f64) as f32;
        }
        saved_mean[c] = mean as f32;
        saved_invstd[c] = invstd as f32;
        running_mean[c] = ((1.0 - m) * running_mean[c] as f64 + m * mean) as f32;
        running_var[c] = ((1.0 - m) * running_var[c] as f64 + m * var * count / (count - 1.0)) as f32;
    }
    Ok(())
}

/// Reference [`crate::batch_norm2d_eval`]: `y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta`.
pub fn batch_norm2d_eval(
    s: &BatchNorm2dSpec,
    input: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    output: &mut [f32],
) -> Result<(), Error> {
    buffers::batch_norm2d_eval(
        s,
        input,
        [("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)],
        output,
    )?;
    for c in 0..s.channels {
        let invstd = 1.0 / (running_var[c] as f64 + s.eps as f64).sqrt();
        for i in channel(s, c) {
            output[i] = ((input[i] as f64 - running_mean[c] as f64) * invstd * gamma[c] as f64 + beta[c] as f64) as f32;
        }
    }
    Ok(())
}

/// Reference [`crate::batch_norm2d_backward`] (training-mode gradient, through the batch
/// statistics): with `xhat = (x - mean) * invstd` and `M = batch * h * w`,
/// `grad_beta = sum dy`, `grad_gamma = sum dy * xhat`,
/// `grad_input = gamma * invstd / M * (M * dy - grad_beta - xhat * grad_gamma)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm2d_backward(
    s: &BatchNorm2dSpec,
    input: &[f32],
    grad_output: &[f32],
    gamma: &[f32],
    saved_mean: &[f32],
    saved_invstd: &[f32],
    grad_input: &mut [f32],
    grad_gamma: &mut [f32],
    grad_beta: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::batch_norm2d_backward(
        s,
        [input, grad_output],
        [("gamma", gamma), ("saved_mean", saved_mean), ("saved_invstd", saved_invstd)],
        grad_input,
        [("grad_gamma", grad_gamma), ("grad_beta", grad_beta)],
    )?;
    let count = (g.batch * g.plane) as f64;
    for c in 0..s.channels {
        let (mean, invstd) = (saved_mean[c] as f64, saved_invstd[c] as f64);
        let xhat = |i: usize| (input[i] as f64 - mean) * invstd;
        let sum_dy = channel(s, c).map(|i| grad_output[i] as f64).sum::<f64>();
        let sum_dy_xhat = channel(s, c).map(|i| grad_output[i] as f64 * xhat(i)).sum::<f64>();
        let k = gamma[c] as f64 * invstd / count;
        for i in channel(s, c) {
            grad_input[i] = (k * (count * grad_output[i] as f64 - sum_dy - xhat(i) * sum_dy_xhat)) as f32;
        }
        grad_gamma[c] = sum_dy_xhat as f32;
        grad_beta[c] = sum_dy as f32;
    }
    Ok(())
}
