//! Every public op, forward and backward, against the f64 oracle `sverka::reference` over
//! random valid specs.
//!
//! Bounds (per element):
//! - convolutions: `|fast - ref| <= 1e-5 * sum|a_i*b_i| + 1e-6` (DESIGN §4), where
//!   `sum|a_i*b_i|` is the reference run on `|input|` and `|weight|` (and `|bias|`): the
//!   same sum of products with every term made non-negative.
//! - average pooling and max-pool backward: the same bound with `sum|a_i*b_i|` replaced by
//!   the reference on `|input|` (resp. `|grad_output|`), i.e. relative to the sum of
//!   magnitudes that were averaged/added.
//! - max pooling forward, Dropout2d forward and backward: exact (a max and a product by a
//!   single scale have one correctly rounded result), indices exact.
//! - BatchNorm2d: relative `1e-4` of the magnitudes of the terms of each formula (see the
//!   comments there): the statistics are reductions over up to a few hundred values, whose
//!   f32 rounding is larger than one product's.
//!
//! Public outputs start as NaN, so an element the fast path forgets to write fails.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sverka::reference as r;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, max_shrink_iters: 2000, ..ProptestConfig::default() }
}

/// Fails the case with the spec descriptor, the buffer and the first bad element.
fn close(
    what: &str,
    desc: &str,
    got: &[f32],
    want: &[f32],
    scale: &[f32],
    rel: f64,
    abs_tol: f64,
) -> Result<(), TestCaseError> {
    let m = first_mismatch(got, want, scale, rel, abs_tol);
    prop_assert!(
        m.is_none(),
        "{desc}: {what}[{}]: fast {} vs reference {} exceeds bound {}",
        m.unwrap().0,
        m.unwrap().1,
        m.unwrap().2,
        m.unwrap().3
    );
    Ok(())
}

fn nan(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

fn check_conv2d_forward(s: &sverka::Conv2dSpec, seed: u64, with_bias: bool) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x = data(seed, s.input_len().unwrap());
    let w = data(seed ^ 1, s.weight_len().unwrap());
    let b = data(seed ^ 2, s.bias_len());
    let bias = with_bias.then_some(&b[..]);
    let mut fast = nan(s.output_len().unwrap());
    let mut want = vec![0.0; fast.len()];
    let mut scale = vec![0.0; fast.len()];
    sverka::conv2d(s, &x, &w, bias, &mut fast).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::conv2d(s, &x, &w, bias, &mut want).unwrap();
    let ab = abs(&b);
    r::conv2d(s, &abs(&x), &abs(&w), with_bias.then_some(&ab[..]), &mut scale).unwrap();
    close("output", &desc, &fast, &want, &scale, REL, ABS)?;
    Ok(())
}

fn check_conv2d_backward_input(s: &sverka::Conv2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let dy = data(seed, s.output_len().unwrap());
    let w = data(seed ^ 1, s.weight_len().unwrap());
    let mut fast = nan(s.input_len().unwrap());
    let mut want = vec![0.0; fast.len()];
    let mut scale = vec![0.0; fast.len()];
    sverka::conv2d_backward_input(s, &dy, &w, &mut fast).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::conv2d_backward_input(s, &dy, &w, &mut want).unwrap();
    r::conv2d_backward_input(s, &abs(&dy), &abs(&w), &mut scale).unwrap();
    close("grad_input", &desc, &fast, &want, &scale, REL, ABS)?;
    Ok(())
}

fn check_conv2d_backward_weight(s: &sverka::Conv2dSpec, seed: u64, with_bias: bool) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x = data(seed, s.input_len().unwrap());
    let dy = data(seed ^ 1, s.output_len().unwrap());
    let mut fast = nan(s.weight_len().unwrap());
    let mut fast_b = nan(s.bias_len());
    let (mut want, mut want_b) = (vec![0.0; fast.len()], vec![0.0; s.bias_len()]);
    let (mut scale, mut scale_b) = (vec![0.0; fast.len()], vec![0.0; s.bias_len()]);
    sverka::conv2d_backward_weight(s, &x, &dy, &mut fast, with_bias.then_some(&mut fast_b[..]))
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::conv2d_backward_weight(s, &x, &dy, &mut want, Some(&mut want_b)).unwrap();
    r::conv2d_backward_weight(s, &abs(&x), &abs(&dy), &mut scale, Some(&mut scale_b)).unwrap();
    close("grad_weight", &desc, &fast, &want, &scale, REL, ABS)?;
    if with_bias {
        close("grad_bias", &desc, &fast_b, &want_b, &scale_b, REL, ABS)?;
    }
    Ok(())
}

fn check_conv_transpose2d_forward(
    s: &sverka::ConvTranspose2dSpec,
    seed: u64,
    with_bias: bool,
) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x = data(seed, s.input_len().unwrap());
    let w = data(seed ^ 1, s.weight_len().unwrap());
    let b = data(seed ^ 2, s.bias_len());
    let bias = with_bias.then_some(&b[..]);
    let mut fast = nan(s.output_len().unwrap());
    let mut want = vec![0.0; fast.len()];
    let mut scale = vec![0.0; fast.len()];
    sverka::conv_transpose2d(s, &x, &w, bias, &mut fast).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::conv_transpose2d(s, &x, &w, bias, &mut want).unwrap();
    let ab = abs(&b);
    r::conv_transpose2d(s, &abs(&x), &abs(&w), with_bias.then_some(&ab[..]), &mut scale).unwrap();
    close("output", &desc, &fast, &want, &scale, REL, ABS)?;
    Ok(())
}

fn check_conv_transpose2d_backward_input(s: &sverka::ConvTranspose2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let dy = data(seed, s.output_len().unwrap());
    let w = data(seed ^ 1, s.weight_len().unwrap());
    let mut fast = nan(s.input_len().unwrap());
    let mut want = vec![0.0; fast.len()];
    let mut scale = vec![0.0; fast.len()];
    sverka::conv_transpose2d_backward_input(s, &dy, &w, &mut fast)
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::conv_transpose2d_backward_input(s, &dy, &w, &mut want).unwrap();
    r::conv_transpose2d_backward_input(s, &abs(&dy), &abs(&w), &mut scale).unwrap();
    close("grad_input", &desc, &fast, &want, &scale, REL, ABS)?;
    Ok(())
}

fn check_conv_transpose2d_backward_weight(
    s: &sverka::ConvTranspose2dSpec,
    seed: u64,
    with_bias: bool,
) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x = data(seed, s.input_len().unwrap());
    let dy = data(seed ^ 1, s.output_len().unwrap());
    let mut fast = nan(s.weight_len().unwrap());
    let mut fast_b = nan(s.bias_len());
    let (mut want, mut want_b) = (vec![0.0; fast.len()], vec![0.0; s.bias_len()]);
    let (mut scale, mut scale_b) = (vec![0.0; fast.len()], vec![0.0; s.bias_len()]);
    sverka::conv_transpose2d_backward_weight(s, &x, &dy, &mut fast, with_bias.then_some(&mut fast_b[..]))
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::conv_transpose2d_backward_weight(s, &x, &dy, &mut want, Some(&mut want_b)).unwrap();
    r::conv_transpose2d_backward_weight(s, &abs(&x), &abs(&dy), &mut scale, Some(&mut scale_b)).unwrap();
    close("grad_weight", &desc, &fast, &want, &scale, REL, ABS)?;
    if with_bias {
        close("grad_bias", &desc, &fast_b, &want_b, &scale_b, REL, ABS)?;
    }
    Ok(())
}

/// Max pooling over pairwise distinct inputs: outputs and indices exactly equal to the
/// reference, with and without the indices buffer.
fn check_max_pool2d_forward(s: &sverka::Pool2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x = distinct(seed, s.input_len().unwrap(), 0.25);
    let n = s.output_len().unwrap();
    let (mut fast, mut fast_ix) = (nan(n), vec![u32::MAX; n]);
    let (mut want, mut want_ix) = (vec![0.0; n], vec![0u32; n]);
    sverka::max_pool2d(s, &x, &mut fast, Some(&mut fast_ix))
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::max_pool2d(s, &x, &mut want, Some(&mut want_ix)).unwrap();
    prop_assert_eq!(&fast, &want, "{}: output", desc);
    prop_assert_eq!(&fast_ix, &want_ix, "{}: indices", desc);
    let mut no_ix = nan(n);
    sverka::max_pool2d(s, &x, &mut no_ix, None).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    prop_assert_eq!(&no_ix, &want, "{}: output without indices", desc);
    Ok(())
}

/// Max pooling with many ties (values from {-1, 0, 1}): same outputs and the same
/// (first maximal, in window row order) indices as the reference.
fn check_max_pool2d_forward_ties(s: &sverka::Pool2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x: Vec<f32> = data(seed, s.input_len().unwrap()).iter().map(|v| (v * 1.5).round()).collect();
    let n = s.output_len().unwrap();
    let (mut fast, mut fast_ix) = (nan(n), vec![u32::MAX; n]);
    let (mut want, mut want_ix) = (vec![0.0; n], vec![0u32; n]);
    sverka::max_pool2d(s, &x, &mut fast, Some(&mut fast_ix))
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::max_pool2d(s, &x, &mut want, Some(&mut want_ix)).unwrap();
    prop_assert_eq!(&fast, &want, "{}: output", desc);
    prop_assert_eq!(&fast_ix, &want_ix, "{}: indices (first maximal element)", desc);
    Ok(())
}

fn check_max_pool2d_backward(s: &sverka::Pool2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x = distinct(seed, s.input_len().unwrap(), 0.25);
    let n = s.output_len().unwrap();
    let (mut y, mut ix) = (vec![0.0; n], vec![0u32; n]);
    r::max_pool2d(s, &x, &mut y, Some(&mut ix)).unwrap();
    let dy = data(seed ^ 1, n);
    let mut fast = nan(x.len());
    let (mut want, mut scale) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    sverka::max_pool2d_backward(s, &dy, &ix, &mut fast).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::max_pool2d_backward(s, &dy, &ix, &mut want).unwrap();
    r::max_pool2d_backward(s, &abs(&dy), &ix, &mut scale).unwrap();
    close("grad_input", &desc, &fast, &want, &scale, REL, ABS)?;
    Ok(())
}

fn check_avg_pool2d_forward(s: &sverka::Pool2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let x = data(seed, s.input_len().unwrap());
    let n = s.output_len().unwrap();
    let (mut fast, mut want, mut scale) = (nan(n), vec![0.0; n], vec![0.0; n]);
    sverka::avg_pool2d(s, &x, &mut fast).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::avg_pool2d(s, &x, &mut want).unwrap();
    r::avg_pool2d(s, &abs(&x), &mut scale).unwrap();
    close("output", &desc, &fast, &want, &scale, REL, ABS)?;
    Ok(())
}

fn check_avg_pool2d_backward(s: &sverka::Pool2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = s.to_string();
    let dy = data(seed, s.output_len().unwrap());
    let n = s.input_len().unwrap();
    let (mut fast, mut want, mut scale) = (nan(n), vec![0.0; n], vec![0.0; n]);
    sverka::avg_pool2d_backward(s, &dy, &mut fast).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::avg_pool2d_backward(s, &dy, &mut want).unwrap();
    r::avg_pool2d_backward(s, &abs(&dy), &mut scale).unwrap();
    close("grad_input", &desc, &fast, &want, &scale, REL, ABS)?;
    Ok(())
}

/// Training forward: output, saved statistics and the running-statistics update.
/// Inputs get a per-channel offset in [-3, 3] so that a mean is really subtracted.
fn check_batch_norm2d_train(s: &sverka::BatchNorm2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = format!("{s:?}");
    let c = s.channels;
    let plane = s.input[0] * s.input[1];
    let offsets: Vec<f32> = data(seed ^ 7, c).iter().map(|v| v * 3.0).collect();
    let x: Vec<f32> =
        data(seed, s.input_len().unwrap()).iter().enumerate().map(|(i, v)| v + offsets[(i / plane) % c]).collect();
    let gamma = data(seed ^ 1, c);
    let beta = data(seed ^ 2, c);
    let rm0 = data(seed ^ 3, c);
    let rv0: Vec<f32> = data(seed ^ 4, c).iter().map(|v| v.abs() + 0.5).collect();
    let n = x.len();
    let (mut y, mut rm, mut rv, mut sm, mut si) = (nan(n), rm0.clone(), rv0.clone(), nan(c), nan(c));
    sverka::batch_norm2d_train(s, &x, &gamma, &beta, &mut rm, &mut rv, &mut y, &mut sm, &mut si)
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    let (mut wy, mut wrm, mut wrv, mut wsm, mut wsi) =
        (vec![0.0; n], rm0.clone(), rv0.clone(), vec![0.0; c], vec![0.0; c]);
    r::batch_norm2d_train(s, &x, &gamma, &beta, &mut wrm, &mut wrv, &mut wy, &mut wsm, &mut wsi).unwrap();
    // Mean: relative to the mean of |x|. invstd, running var: relative to themselves.
    let mut mean_abs = vec![0f32; c];
    for (i, v) in x.iter().enumerate() {
        mean_abs[(i / plane) % c] += v.abs() / (n / c) as f32;
    }
    close("saved_mean", &desc, &sm, &wsm, &mean_abs, 1e-5, ABS)?;
    close("saved_invstd", &desc, &si, &wsi, &abs(&wsi), 1e-4, ABS)?;
    let rm_scale: Vec<f32> = (0..c).map(|k| rm0[k].abs() + mean_abs[k]).collect();
    close("running_mean", &desc, &rm, &wrm, &rm_scale, 1e-5, ABS)?;
    close("running_var", &desc, &rv, &wrv, &abs(&wrv), 1e-4, ABS)?;
    // y = xhat * gamma + beta: relative to |xhat * gamma| + |gamma| + |beta| (the
    // |gamma| term covers the rounding of the mean, which shifts xhat by ~1e-6).
    let scale: Vec<f32> = (0..n)
        .map(|i| {
            let k = (i / plane) % c;
            let xhat = (x[i] as f64 - wsm[k] as f64) * wsi[k] as f64;
            ((xhat.abs() + 1.0) * gamma[k].abs() as f64 + beta[k].abs() as f64) as f32
        })
        .collect();
    close("output", &desc, &y, &wy, &scale, 1e-4, 1e-5)?;
    Ok(())
}

fn check_batch_norm2d_eval(s: &sverka::BatchNorm2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = format!("{s:?}");
    let c = s.channels;
    let plane = s.input[0] * s.input[1];
    let x = data(seed, s.input_len().unwrap());
    let (gamma, beta, rm) = (data(seed ^ 1, c), data(seed ^ 2, c), data(seed ^ 3, c));
    let rv: Vec<f32> = data(seed ^ 4, c).iter().map(|v| v.abs() * 2.0).collect();
    let n = x.len();
    let (mut y, mut want) = (nan(n), vec![0.0; n]);
    sverka::batch_norm2d_eval(s, &x, &gamma, &beta, &rm, &rv, &mut y)
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::batch_norm2d_eval(s, &x, &gamma, &beta, &rm, &rv, &mut want).unwrap();
    // Relative 1e-5 of (|x| + |mean|) * invstd * |gamma| + |beta|, the magnitudes of the terms.
    let scale: Vec<f32> = (0..n)
        .map(|i| {
            let k = (i / plane) % c;
            let invstd = 1.0 / (rv[k] as f64 + s.eps as f64).sqrt();
            ((x[i].abs() as f64 + rm[k].abs() as f64) * invstd * gamma[k].abs() as f64 + beta[k].abs() as f64) as f32
        })
        .collect();
    close("output", &desc, &y, &want, &scale, 1e-5, ABS)?;
    Ok(())
}

fn check_batch_norm2d_backward(s: &sverka::BatchNorm2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = format!("{s:?}");
    let c = s.channels;
    let plane = s.input[0] * s.input[1];
    let x = data(seed, s.input_len().unwrap());
    let dy = data(seed ^ 5, x.len());
    let (gamma, beta) = (data(seed ^ 1, c), data(seed ^ 2, c));
    let n = x.len();
    let m = (n / c) as f64;
    // Saved statistics from the reference training forward, fed to both.
    let (mut y, mut rm, mut rv, mut sm, mut si) =
        (vec![0.0; n], vec![0.0; c], vec![1.0; c], vec![0.0; c], vec![0.0; c]);
    r::batch_norm2d_train(s, &x, &gamma, &beta, &mut rm, &mut rv, &mut y, &mut sm, &mut si).unwrap();
    let (mut dx, mut dg, mut db) = (nan(n), nan(c), nan(c));
    sverka::batch_norm2d_backward(s, &x, &dy, &gamma, &sm, &si, &mut dx, &mut dg, &mut db)
        .map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    let (mut wdx, mut wdg, mut wdb) = (vec![0.0; n], vec![0.0; c], vec![0.0; c]);
    r::batch_norm2d_backward(s, &x, &dy, &gamma, &sm, &si, &mut wdx, &mut wdg, &mut wdb).unwrap();
    // grad_beta = sum dy, grad_gamma = sum dy*xhat: relative to sum|dy|, sum|dy*xhat|.
    let xhat = |i: usize| (x[i] as f64 - sm[(i / plane) % c] as f64) * si[(i / plane) % c] as f64;
    let (mut sum_abs_dy, mut sum_abs_dyx) = (vec![0f64; c], vec![0f64; c]);
    for i in 0..n {
        sum_abs_dy[(i / plane) % c] += dy[i].abs() as f64;
        sum_abs_dyx[(i / plane) % c] += (dy[i] as f64 * xhat(i)).abs();
    }
    let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
    close("grad_beta", &desc, &db, &wdb, &f32s(&sum_abs_dy), REL, ABS)?;
    close("grad_gamma", &desc, &dg, &wdg, &f32s(&sum_abs_dyx), 1e-4, ABS)?;
    // grad_input = gamma*invstd/M * (M*dy - sum dy - xhat * sum dy*xhat): relative 1e-4
    // of the same expression with every term's magnitude.
    let scale: Vec<f32> = (0..n)
        .map(|i| {
            let k = (i / plane) % c;
            (gamma[k].abs() as f64 * si[k] as f64 / m
                * (m * dy[i].abs() as f64 + sum_abs_dy[k] + xhat(i).abs() * sum_abs_dyx[k])) as f32
        })
        .collect();
    close("grad_input", &desc, &dx, &wdx, &scale, 1e-4, 1e-5)?;
    Ok(())
}

/// Same seed, same mask: exact equality with the reference.
fn check_dropout2d_forward_backward(s: &sverka::Dropout2dSpec, seed: u64) -> Result<(), TestCaseError> {
    let desc = format!("{s:?}");
    let x = data(seed ^ 9, s.input_len().unwrap());
    let planes = s.scale_len().unwrap();
    let (mut y, mut sc) = (nan(x.len()), nan(planes));
    let (mut wy, mut wsc) = (vec![0.0; x.len()], vec![0.0; planes]);
    sverka::dropout2d(s, seed, &x, &mut y, &mut sc).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::dropout2d(s, seed, &x, &mut wy, &mut wsc).unwrap();
    prop_assert_eq!(&sc, &wsc, "{}: channel_scale", desc);
    prop_assert_eq!(&y, &wy, "{}: output", desc);
    let dy = data(seed ^ 10, x.len());
    let (mut dx, mut wdx) = (nan(x.len()), vec![0.0; x.len()]);
    sverka::dropout2d_backward(s, &dy, &sc, &mut dx).map_err(|e| TestCaseError::fail(format!("{desc}: {e}")))?;
    r::dropout2d_backward(s, &dy, &wsc, &mut wdx).unwrap();
    prop_assert_eq!(&dx, &wdx, "{}: grad_input", desc);
    Ok(())
}

/// Shapes whose column buffer exceeds the unfolded driver's 4 MiB band budget: 48x48
/// outputs over 64 channels (bands of 37 + 11 rows), 700-pixel rows of a 5x5 kernel (one
/// row a band) and a grouped stride-2 case (6 bands). Both backward products and the three
/// transposed-convolution products (on the adjoint geometry) match the reference.
#[test]
fn unfolded_ops_in_bands() {
    let conv = |batch, in_channels, out_channels, input, kernel, stride, pad, groups| sverka::Conv2dSpec {
        batch,
        in_channels,
        out_channels,
        input,
        kernel: [kernel, kernel],
        stride: [stride, stride],
        padding: sverka::Padding::uniform(pad),
        dilation: [1, 1],
        groups,
    };
    let specs = [
        conv(2, 64, 2, [48, 48], 3, 1, 1, 1),
        conv(1, 64, 3, [7, 704], 5, 1, 0, 1),
        conv(1, 128, 4, [200, 200], 3, 2, 1, 2),
    ];
    for (seed, s) in (1..).zip(&specs) {
        check_conv2d_backward_input(s, seed).unwrap();
        check_conv2d_backward_weight(s, seed, true).unwrap();
        let t = adjoint_transpose(s);
        check_conv_transpose2d_forward(&t, seed, true).unwrap();
        check_conv_transpose2d_backward_input(&t, seed).unwrap();
        check_conv_transpose2d_backward_weight(&t, seed, true).unwrap();
    }
}

/// A batch of many weight-gradient partials (8 images each; 259 images: 33 partials, added
/// in waves of one per thread, the last wave partial): matches the reference, and is
/// bitwise the same on 1 and 3 threads (waves of 1 and 3).
#[test]
fn conv2d_backward_weight_over_several_waves() {
    let s = sverka::Conv2dSpec {
        batch: 259,
        in_channels: 2,
        out_channels: 3,
        input: [5, 4],
        kernel: [3, 3],
        stride: [1, 1],
        padding: sverka::Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
    };
    check_conv2d_backward_weight(&s, 7, true).unwrap();
    let (x, dy) = (data(1, s.input_len().unwrap()), data(2, s.output_len().unwrap()));
    let grad = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut dw = vec![0.0; s.weight_len().unwrap()];
        pool.install(|| sverka::conv2d_backward_weight(&s, &x, &dy, &mut dw, None)).unwrap();
        dw.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(grad(1), grad(3));
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn conv2d_forward(s in common::conv_spec(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv2d_forward(&s, seed, with_bias)?;
    }

    #[test]
    fn conv2d_backward_input(s in common::conv_spec(), seed in any::<u64>()) {
        check_conv2d_backward_input(&s, seed)?;
    }

    #[test]
    fn conv2d_backward_weight(s in common::conv_spec(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv2d_backward_weight(&s, seed, with_bias)?;
    }

    #[test]
    fn conv_transpose2d_forward(s in common::conv_transpose_spec(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv_transpose2d_forward(&s, seed, with_bias)?;
    }

    #[test]
    fn conv_transpose2d_backward_input(s in common::conv_transpose_spec(), seed in any::<u64>()) {
        check_conv_transpose2d_backward_input(&s, seed)?;
    }

    #[test]
    fn conv_transpose2d_backward_weight(s in common::conv_transpose_spec(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv_transpose2d_backward_weight(&s, seed, with_bias)?;
    }

    #[test]
    fn max_pool2d_forward(s in common::pool_spec(), seed in any::<u64>()) {
        check_max_pool2d_forward(&s, seed)?;
    }

    #[test]
    fn max_pool2d_forward_ties(s in common::pool_spec(), seed in any::<u64>()) {
        check_max_pool2d_forward_ties(&s, seed)?;
    }

    #[test]
    fn max_pool2d_backward(s in common::pool_spec(), seed in any::<u64>()) {
        check_max_pool2d_backward(&s, seed)?;
    }

    #[test]
    fn avg_pool2d_forward(s in common::pool_spec(), seed in any::<u64>()) {
        check_avg_pool2d_forward(&s, seed)?;
    }

    #[test]
    fn avg_pool2d_backward(s in common::pool_spec(), seed in any::<u64>()) {
        check_avg_pool2d_backward(&s, seed)?;
    }

    #[test]
    fn batch_norm2d_train(s in common::bn_spec(), seed in any::<u64>()) {
        check_batch_norm2d_train(&s, seed)?;
    }

    #[test]
    fn batch_norm2d_eval(s in common::bn_spec(), seed in any::<u64>()) {
        check_batch_norm2d_eval(&s, seed)?;
    }

    #[test]
    fn batch_norm2d_backward(s in common::bn_spec(), seed in any::<u64>()) {
        check_batch_norm2d_backward(&s, seed)?;
    }

    #[test]
    fn dropout2d_forward_backward(s in common::dropout_spec(), seed in any::<u64>()) {
        check_dropout2d_forward_backward(&s, seed)?;
    }
}

// Medium shapes: channels up to ~40 and images up to 33x33, so blocked layouts, SIMD
// tails and several threads are exercised; fewer cases because the reference is slow.
proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn conv2d_forward_medium(s in common::conv_spec_medium(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv2d_forward(&s, seed, with_bias)?;
    }

    #[test]
    fn conv2d_backward_input_medium(s in common::conv_spec_medium(), seed in any::<u64>()) {
        check_conv2d_backward_input(&s, seed)?;
    }

    #[test]
    fn conv2d_backward_weight_medium(s in common::conv_spec_medium(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv2d_backward_weight(&s, seed, with_bias)?;
    }

    #[test]
    fn conv_transpose2d_forward_medium(s in common::conv_transpose_spec_medium(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv_transpose2d_forward(&s, seed, with_bias)?;
    }

    #[test]
    fn conv_transpose2d_backward_input_medium(s in common::conv_transpose_spec_medium(), seed in any::<u64>()) {
        check_conv_transpose2d_backward_input(&s, seed)?;
    }

    #[test]
    fn conv_transpose2d_backward_weight_medium(s in common::conv_transpose_spec_medium(), seed in any::<u64>(), with_bias in any::<bool>()) {
        check_conv_transpose2d_backward_weight(&s, seed, with_bias)?;
    }

    #[test]
    fn max_pool2d_forward_medium(s in common::pool_spec_medium(), seed in any::<u64>()) {
        check_max_pool2d_forward(&s, seed)?;
    }

    #[test]
    fn max_pool2d_forward_ties_medium(s in common::pool_spec_medium(), seed in any::<u64>()) {
        check_max_pool2d_forward_ties(&s, seed)?;
    }

    #[test]
    fn max_pool2d_backward_medium(s in common::pool_spec_medium(), seed in any::<u64>()) {
        check_max_pool2d_backward(&s, seed)?;
    }

    #[test]
    fn avg_pool2d_forward_medium(s in common::pool_spec_medium(), seed in any::<u64>()) {
        check_avg_pool2d_forward(&s, seed)?;
    }

    #[test]
    fn batch_norm2d_train_medium(s in common::bn_spec_medium(), seed in any::<u64>()) {
        check_batch_norm2d_train(&s, seed)?;
    }

    #[test]
    fn batch_norm2d_backward_medium(s in common::bn_spec_medium(), seed in any::<u64>()) {
        check_batch_norm2d_backward(&s, seed)?;
    }

    #[test]
    fn avg_pool2d_backward_medium(s in common::pool_spec_medium(), seed in any::<u64>()) {
        check_avg_pool2d_backward(&s, seed)?;
    }
}

/// NaN propagates through max pooling and the index names the first NaN of the window,
/// exactly as the reference (and PyTorch) do; windows without NaN are unaffected.
#[test]
fn max_pool2d_nan() {
    let s = sverka::Pool2dSpec {
        batch: 1,
        channels: 2,
        input: [4, 4],
        kernel: [2, 2],
        stride: [2, 2],
        padding: sverka::Padding::ZERO,
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    let mut x: Vec<f32> = (0..32).map(|i| i as f32).collect();
    x[0] = f32::NAN; // window (0,0) of plane 0: NaN first, larger values after it
    x[7] = f32::NAN; // window (0,1) of plane 0: NaN last (row 1, col 3)
    x[16 + 10] = f32::NAN; // window (1,1) of plane 1
    x[16 + 11] = f32::NAN; // same window, a second NaN: the first one wins
    let (mut y, mut ix) = (vec![0.0; 8], vec![0u32; 8]);
    let (mut wy, mut wix) = (vec![0.0; 8], vec![0u32; 8]);
    sverka::max_pool2d(&s, &x, &mut y, Some(&mut ix)).unwrap();
    r::max_pool2d(&s, &x, &mut wy, Some(&mut wix)).unwrap();
    assert_eq!(wix, [0, 7, 13, 15, 5, 7, 13, 10], "reference indices");
    assert_eq!(ix, wix, "indices");
    for (i, (a, b)) in y.iter().zip(&wy).enumerate() {
        assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "output[{i}]: {a} vs {b}");
    }
    assert!(y[0].is_nan() && y[1].is_nan() && y[7].is_nan());
    assert_eq!(y[2], 13.0);
}

/// Windows whose only in-input values are -inf: the output is -inf and the index is the
/// first tap inside the input (PyTorch initialises the argmax to the window start); with
/// padding, the padding never wins.
#[test]
fn max_pool2d_all_neg_inf() {
    let s = sverka::Pool2dSpec {
        batch: 1,
        channels: 1,
        input: [3, 3],
        kernel: [3, 3],
        stride: [2, 2],
        padding: sverka::Padding::uniform(1),
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: false,
    };
    let x = vec![f32::NEG_INFINITY; 9];
    let (mut y, mut ix) = (vec![0.0; 4], vec![u32::MAX; 4]);
    let (mut wy, mut wix) = (vec![0.0; 4], vec![0u32; 4]);
    sverka::max_pool2d(&s, &x, &mut y, Some(&mut ix)).unwrap();
    r::max_pool2d(&s, &x, &mut wy, Some(&mut wix)).unwrap();
    assert_eq!(wy, [f32::NEG_INFINITY; 4]);
    assert_eq!(wix, [0, 1, 3, 4], "reference: first in-input tap of each window");
    assert_eq!(y, wy);
    assert_eq!(ix, wix);
}
