//! BatchNorm2d: per-channel statistics (one reduction pass over batch and pixels, f32 lanes
//! flushed into f64 totals), then one elementwise pass over the planes. rayon over channels for
//! the reductions and over planes for the elementwise passes; the sums have a fixed order,
//! so the result does not depend on the thread count.

use rayon::prelude::*;

use crate::buffers;
use crate::error::Error;
use crate::spec::{BatchNorm2dSpec, ChannelGeom};

/// The planes of channel `c` of an NCHW buffer.
fn planes_of<'a>(buf: &'a [f32], g: &ChannelGeom, c: usize) -> impl Iterator<Item = &'a [f32]> + use<'a> {
    buf.chunks_exact(g.plane).skip(c).step_by(g.channels)
}

/// Elements per f32 partial sum before it is flushed into the f64 total: 32 per lane, so
/// an f32 partial carries at most ~32 roundings (relative error ~2e-6 worst case).
const BLOCK: usize = 256;

/// `(sum f(a_i, b_i).0, sum f(a_i, b_i).1)` over two equally long slices: 8 f32 lanes the
/// compiler vectorises, flushed to f64 every [`BLOCK`] elements.
#[inline(always)]
fn pair_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut t0, mut t1) = (0f64, 0f64);
    for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let (mut s0, mut s1) = ([0f32; 8], [0f32; 8]);
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (a, b) in ca.zip(cb) {
            for j in 0..8 {
                let (u, v) = f(a[j], b[j]);
                s0[j] += u;
                s1[j] += v;
            }
        }
        for (&a, &b) in ra.iter().zip(rb) {
            let (u, v) = f(a, b);
            s0[0] += u;
            s1[0] += v;
        }
        t0 += s0.iter().map(|&v| v as f64).sum::<f64>();
        t1 += s1.iter().map(|&v| v as f64).sum::<f64>();
    }
    (t0, t1)
}

/// `out[plane] = x[plane] * a[c] + b[c]` with `c` the plane's channel.
fn affine_planes(x: &[f32], g: &ChannelGeom, a: &[f32], b: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(g.plane).zip(x.par_chunks(g.plane)).enumerate().for_each(|(i, (o, x))| {
        let (a, b) = (a[i % g.channels], b[i % g.channels]);
        o.iter_mut().zip(x).for_each(|(o, &x)| *o = x * a + b);
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
    let g = buffers::batch_norm2d_train(
        s,
        input,
        [("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)],
        output,
        [("saved_mean", saved_mean), ("saved_invstd", saved_invstd)],
    )?;
    let count = (g.batch * g.plane) as f64;
    let stats: Vec<(f64, f64)> = (0..g.channels)
        .into_par_iter()
        .map(|c| {
            // One pass over data shifted by one of its values, so the variance does not
            // cancel catastrophically when |mean| >> std.
            let shift = input[c * g.plane];
            let (s1, s2) = planes_of(input, &g, c)
                .map(|p| pair_sums(p, p, |v, _| (v - shift, (v - shift) * (v - shift))))
                .fold((0.0, 0.0), |(a, b), (u, v)| (a + u, b + v));
            let mean_shifted = s1 / count;
            (shift as f64 + mean_shifted, (s2 / count - mean_shifted * mean_shifted).max(0.0))
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
    let g = buffers::batch_norm2d_eval(
        s,
        input,
        [("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)],
        output,
    )?;
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
    let g = buffers::batch_norm2d_backward(
        s,
        [input, grad_output],
        [("gamma", gamma), ("saved_mean", saved_mean), ("saved_invstd", saved_invstd)],
        grad_input,
        [("grad_gamma", grad_gamma), ("grad_beta", grad_beta)],
    )?;
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
