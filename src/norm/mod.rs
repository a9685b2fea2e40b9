//! BatchNorm2d: per-channel statistics (a reduction over batch and pixels, accumulated in
//! f64 for accuracy), then one elementwise pass over the planes. rayon over channels for
//! the reductions and over planes for the elementwise passes; the sums have a fixed order,
//! so the result does not depend on the thread count.

use rayon::prelude::*;

use crate::error::{Error, check_len};
use crate::spec::{BatchNorm2dSpec, ChannelGeom};

/// The planes of channel `c` of an NCHW buffer.
fn planes_of<'a>(buf: &'a [f32], g: &ChannelGeom, c: usize) -> impl Iterator<Item = &'a [f32]> + use<'a> {
    buf.chunks_exact(g.plane).skip(c).step_by(g.channels)
}

/// `out[plane] = x[plane] * a[c] + b[c]` with `c` the plane's channel.
fn affine_planes(x: &[f32], g: &ChannelGeom, a: &[f32], b: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(g.plane).zip(x.par_chunks(g.plane)).enumerate().for_each(|(i, (o, x))| {
        let (a, b) = (a[i % g.channels], b[i % g.channels]);
        o.iter_mut().zip(x).for_each(|(o, &x)| *o = x.mul_add(a, b));
    });
}

/// Training-mode BatchNorm2d (PyTorch's `nn.BatchNorm2d` in `train()`).
///
/// Normalises each channel with its batch mean and biased variance:
/// `output = (input - mean) / sqrt(var + eps) * gamma + beta`; updates
/// `running_mean = (1 - momentum) * running_mean + momentum * mean` and `running_var`
/// likewise with the unbiased variance; stores `mean` and `1 / sqrt(var + eps)` in
/// `saved_mean` / `saved_invstd` for [`batch_norm2d_backward`]. Every per-channel buffer
/// has `channels` elements; each channel needs at least 2 values (`batch * h * w >= 2`).
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
    let g = s.train_geometry()?;
    check_len("input", input, g.len)?;
    check_len("gamma", gamma, g.channels)?;
    check_len("beta", beta, g.channels)?;
    check_len("running_mean", running_mean, g.channels)?;
    check_len("running_var", running_var, g.channels)?;
    check_len("output", output, g.len)?;
    check_len("saved_mean", saved_mean, g.channels)?;
    check_len("saved_invstd", saved_invstd, g.channels)?;
    let count = (g.batch * g.plane) as f64;
    let stats: Vec<(f64, f64)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            let mean = planes_of(input, &g, c).flatten().map(|&v| v as f64).sum::<f64>() / count;
            let var = planes_of(input, &g, c).flatten().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / count;
            (mean, var)
        })
        .collect();
    let m = s.momentum as f64;
    let mut scale = vec![0f32; g.channels];
    let mut shift = vec![0f32; g.channels];
    for (c, &(mean, var)) in stats.iter().enumerate() {
        let invstd = 1.0 / (var + s.eps as f64).sqrt();
        saved_mean[c] = mean as f32;
        saved_invstd[c] = invstd as f32;
        running_mean[c] = ((1.0 - m) * running_mean[c] as f64 + m * mean) as f32;
        running_var[c] = ((1.0 - m) * running_var[c] as f64 + m * var * count / (count - 1.0)) as f32;
        scale[c] = (invstd * gamma[c] as f64) as f32;
        shift[c] = (beta[c] as f64 - mean * invstd * gamma[c] as f64) as f32;
    }
    affine_planes(input, &g, &scale, &shift, output);
    Ok(())
}

/// Evaluation-mode BatchNorm2d: `output = (input - running_mean) / sqrt(running_var +
/// eps) * gamma + beta`, per channel.
pub fn batch_norm2d_eval(
    s: &BatchNorm2dSpec,
    input: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    output: &mut [f32],
) -> Result<(), Error> {
    let g = s.geometry()?;
    check_len("input", input, g.len)?;
    check_len("gamma", gamma, g.channels)?;
    check_len("beta", beta, g.channels)?;
    check_len("running_mean", running_mean, g.channels)?;
    check_len("running_var", running_var, g.channels)?;
    check_len("output", output, g.len)?;
    let mut scale = vec![0f32; g.channels];
    let mut shift = vec![0f32; g.channels];
    for c in 0..g.channels {
        let invstd = 1.0 / (running_var[c] as f64 + s.eps as f64).sqrt();
        scale[c] = (invstd * gamma[c] as f64) as f32;
        shift[c] = (beta[c] as f64 - running_mean[c] as f64 * invstd * gamma[c] as f64) as f32;
    }
    affine_planes(input, &g, &scale, &shift, output);
    Ok(())
}

/// Gradient of [`batch_norm2d_train`] (through the batch statistics) with respect to its
/// input, `gamma` and `beta`, from the `saved_mean` / `saved_invstd` of the forward pass.
///
/// With `xhat = (x - mean) * invstd` and `M = batch * h * w` values per channel:
/// `grad_beta = sum dy`, `grad_gamma = sum dy * xhat`, and
/// `grad_input = gamma * invstd * (dy - grad_beta / M - xhat * grad_gamma / M)`.
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
    let g = s.geometry()?;
    check_len("input", input, g.len)?;
    check_len("grad_output", grad_output, g.len)?;
    check_len("gamma", gamma, g.channels)?;
    check_len("saved_mean", saved_mean, g.channels)?;
    check_len("saved_invstd", saved_invstd, g.channels)?;
    check_len("grad_input", grad_input, g.len)?;
    check_len("grad_gamma", grad_gamma, g.channels)?;
    check_len("grad_beta", grad_beta, g.channels)?;
    let sums: Vec<(f64, f64)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            let mean = saved_mean[c] as f64;
            planes_of(input, &g, c).zip(planes_of(grad_output, &g, c)).fold((0.0, 0.0), |acc, (x, dy)| {
                x.iter()
                    .zip(dy)
                    .fold(acc, |(sdy, sdyx), (&x, &dy)| (sdy + dy as f64, sdyx + dy as f64 * (x as f64 - mean)))
            })
        })
        .collect();
    let count = (g.batch * g.plane) as f64;
    // grad_input = a * dy + b * (x - mean) + c per channel.
    let mut coef = vec![[0f32; 4]; g.channels];
    for (c, &(sum_dy, sum_dy_xmu)) in sums.iter().enumerate() {
        let (mean, invstd) = (saved_mean[c] as f64, saved_invstd[c] as f64);
        let sum_dy_xhat = sum_dy_xmu * invstd;
        grad_beta[c] = sum_dy as f32;
        grad_gamma[c] = sum_dy_xhat as f32;
        let k = gamma[c] as f64 * invstd;
        let slope = k * invstd * sum_dy_xhat / count; // coefficient of (x - mean)
        coef[c] = [k as f32, (-slope) as f32, mean as f32, (-k * sum_dy / count) as f32];
    }
    grad_input
        .par_chunks_mut(g.plane)
        .zip(grad_output.par_chunks(g.plane).zip(input.par_chunks(g.plane)))
        .enumerate()
        .for_each(|(i, (dx, (dy, x)))| {
            let [a, b, mean, c] = coef[i % g.channels];
            for ((dx, &dy), &x) in dx.iter_mut().zip(dy).zip(x) {
                *dx = a * dy + b * (x - mean) + c;
            }
        });
    Ok(())
}
