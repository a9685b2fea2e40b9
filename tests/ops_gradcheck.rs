//! Every backward op (public and reference) against central finite differences of a scalar
//! loss `L = <forward(x), r>` (r random), computed in f64.
//!
//! Tolerances, and why:
//! - conv2d, conv_transpose2d, avg_pool2d, dropout2d (for a fixed seed) are linear in each
//!   argument, and max_pool2d is linear near inputs without ties. So a central difference
//!   has no truncation error at all, and we can take a large step (h = 0.5, resp. 0.01 for
//!   max pooling on inputs spaced 0.1 apart, so the argmax never changes). What remains is
//!   the f32 rounding of the forward outputs, ~1e-7 relative, divided by 2h: far below the
//!   tolerance `1e-3 * |g| + 1e-3`, while a wrong index or a missing term is an O(1) error.
//! - BatchNorm2d (training) is non-linear. We check its backward twice:
//!   (a) against finite differences of a tiny f64 mirror of the training forward
//!   (`bn_forward_f64`, written from PyTorch's definition), h = 1e-4: truncation O(h²) ≈
//!   1e-8, rounding ≈ 1e-12, so the FD is exact to ~1e-7 and the tolerance 1e-3 relative
//!   (+ 1e-4 absolute) only has to absorb the f32 rounding of the backward itself;
//!   (b) against finite differences through the public f32 forward, h = 1e-2: rounding of
//!   L (~1e-6) / 2h ≈ 5e-5 plus truncation O(h²) ≈ 1e-4 relative, so tolerance 1e-2
//!   relative + 2e-3 absolute. (b) ties the public forward and backward together.

mod common;

use common::*;
use sverka::reference as r;
use sverka::{BatchNorm2dSpec, Conv2dSpec, ConvTranspose2dSpec, Dropout2dSpec, Padding, Pool2dSpec};

/// Central differences of `loss` at `x`, one coordinate at a time, with step `h`
/// (the step actually taken after rounding `x ± h` to f32 is used as the divisor).
fn fd(x: &[f32], h: f32, loss: impl Fn(&[f32]) -> f64) -> Vec<f64> {
    let mut xs = x.to_vec();
    (0..x.len())
        .map(|i| {
            let (plus, minus) = (x[i] + h, x[i] - h);
            xs[i] = plus;
            let lp = loss(&xs);
            xs[i] = minus;
            let lm = loss(&xs);
            xs[i] = x[i];
            (lp - lm) / (plus as f64 - minus as f64)
        })
        .collect()
}

fn fd64(x: &[f64], h: f64, loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut xs = x.to_vec();
    (0..x.len())
        .map(|i| {
            xs[i] = x[i] + h;
            let lp = loss(&xs);
            xs[i] = x[i] - h;
            let lm = loss(&xs);
            xs[i] = x[i];
            (lp - lm) / (2.0 * h)
        })
        .collect()
}

/// Asserts `|analytic - fd| <= rtol * |fd| + atol` element-wise.
fn assert_grad(what: &str, desc: &str, analytic: &[f32], numeric: &[f64], rtol: f64, atol: f64) {
    assert_eq!(analytic.len(), numeric.len(), "{desc}: {what}: length");
    for (i, (&a, &n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a as f64 - n).abs() <= rtol * n.abs() + atol,
            "{desc}: {what}[{i}]: backward gives {a}, finite differences {n} (tolerance {rtol} rel + {atol} abs)"
        );
    }
}

const LIN_H: f32 = 0.5;
const LIN_RTOL: f64 = 1e-3;
const LIN_ATOL: f64 = 1e-3;

fn conv_specs() -> Vec<Conv2dSpec> {
    let c = |batch, ic, oc, input, kernel, stride, padding, dilation, groups| Conv2dSpec {
        batch,
        in_channels: ic,
        out_channels: oc,
        input,
        kernel,
        stride,
        padding,
        dilation,
        groups,
    };
    vec![
        c(2, 3, 2, [4, 5], [3, 3], [1, 1], Padding::uniform(1), [1, 1], 1),
        c(1, 4, 6, [5, 4], [3, 2], [2, 1], Padding { top: 1, bottom: 0, left: 2, right: 1 }, [1, 2], 2),
        c(2, 3, 3, [5, 5], [3, 3], [2, 2], Padding::uniform(1), [2, 2], 3),
        c(1, 2, 2, [6, 6], [2, 2], [3, 3], Padding::ZERO, [1, 1], 1),
        c(1, 1, 3, [1, 1], [1, 1], [1, 1], Padding::ZERO, [1, 1], 1),
    ]
}

#[test]
fn conv2d_backward_matches_finite_differences() {
    for (k, s) in conv_specs().iter().enumerate() {
        let desc = s.to_string();
        let seed = 10 + k as u64;
        let x = data(seed, s.input_len().unwrap());
        let w = data(seed ^ 1, s.weight_len().unwrap());
        let b = data(seed ^ 2, s.bias_len());
        let rr = data(seed ^ 3, s.output_len().unwrap());
        let loss = |x: &[f32], w: &[f32], b: &[f32]| {
            let mut y = vec![0.0; rr.len()];
            sverka::conv2d(s, x, w, Some(b), &mut y).unwrap();
            dot(&y, &rr)
        };
        let fdx = fd(&x, LIN_H, |x| loss(x, &w, &b));
        let fdw = fd(&w, LIN_H, |w| loss(&x, w, &b));
        let fdb = fd(&b, LIN_H, |b| loss(&x, &w, b));
        for (name, bi, bw) in [
            (
                "public",
                sverka::conv2d_backward_input as fn(&Conv2dSpec, &[f32], &[f32], &mut [f32]) -> _,
                sverka::conv2d_backward_weight as fn(&Conv2dSpec, &[f32], &[f32], &mut [f32], Option<&mut [f32]>) -> _,
            ),
            ("reference", r::conv2d_backward_input, r::conv2d_backward_weight),
        ] {
            let mut dx = vec![f32::NAN; x.len()];
            let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; b.len()]);
            bi(s, &rr, &w, &mut dx).unwrap();
            bw(s, &x, &rr, &mut dw, Some(&mut db)).unwrap();
            assert_grad(&format!("{name} grad_input"), &desc, &dx, &fdx, LIN_RTOL, LIN_ATOL);
            assert_grad(&format!("{name} grad_weight"), &desc, &dw, &fdw, LIN_RTOL, LIN_ATOL);
            assert_grad(&format!("{name} grad_bias"), &desc, &db, &fdb, LIN_RTOL, LIN_ATOL);
        }
    }
}

#[test]
fn conv_transpose2d_backward_matches_finite_differences() {
    let t = |batch, ic, oc, input, kernel, stride, padding, dilation, groups, output_padding| ConvTranspose2dSpec {
        batch,
        in_channels: ic,
        out_channels: oc,
        input,
        kernel,
        stride,
        padding,
        dilation,
        groups,
        output_padding,
    };
    let specs = [
        t(2, 3, 2, [3, 4], [3, 3], [2, 2], Padding::uniform(1), [1, 1], 1, [1, 0]),
        t(1, 4, 6, [3, 3], [4, 3], [2, 1], Padding { top: 1, bottom: 2, left: 0, right: 1 }, [1, 2], 2, [1, 1]),
        t(1, 3, 3, [2, 3], [3, 3], [3, 3], Padding::ZERO, [1, 1], 3, [2, 0]),
        t(2, 1, 1, [1, 1], [2, 2], [1, 1], Padding::ZERO, [1, 1], 1, [0, 0]),
    ];
    for (k, s) in specs.iter().enumerate() {
        let desc = s.to_string();
        let seed = 20 + k as u64;
        let x = data(seed, s.input_len().unwrap());
        let w = data(seed ^ 1, s.weight_len().unwrap());
        let b = data(seed ^ 2, s.bias_len());
        let rr = data(seed ^ 3, s.output_len().unwrap());
        let loss = |x: &[f32], w: &[f32], b: &[f32]| {
            let mut y = vec![0.0; rr.len()];
            sverka::conv_transpose2d(s, x, w, Some(b), &mut y).unwrap();
            dot(&y, &rr)
        };
        let fdx = fd(&x, LIN_H, |x| loss(x, &w, &b));
        let fdw = fd(&w, LIN_H, |w| loss(&x, w, &b));
        let fdb = fd(&b, LIN_H, |b| loss(&x, &w, b));
        for (name, bi, bw) in [
            (
                "public",
                sverka::conv_transpose2d_backward_input as fn(&ConvTranspose2dSpec, &[f32], &[f32], &mut [f32]) -> _,
                sverka::conv_transpose2d_backward_weight
                    as fn(&ConvTranspose2dSpec, &[f32], &[f32], &mut [f32], Option<&mut [f32]>) -> _,
            ),
            ("reference", r::conv_transpose2d_backward_input, r::conv_transpose2d_backward_weight),
        ] {
            let mut dx = vec![f32::NAN; x.len()];
            let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; b.len()]);
            bi(s, &rr, &w, &mut dx).unwrap();
            bw(s, &x, &rr, &mut dw, Some(&mut db)).unwrap();
            assert_grad(&format!("{name} grad_input"), &desc, &dx, &fdx, LIN_RTOL, LIN_ATOL);
            assert_grad(&format!("{name} grad_weight"), &desc, &dw, &fdw, LIN_RTOL, LIN_ATOL);
            assert_grad(&format!("{name} grad_bias"), &desc, &db, &fdb, LIN_RTOL, LIN_ATOL);
        }
    }
}

fn pool_specs() -> Vec<Pool2dSpec> {
    let p = |batch, channels, input, kernel, stride, padding, dilation, ceil_mode, count_include_pad| Pool2dSpec {
        batch,
        channels,
        input,
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        count_include_pad,
    };
    vec![
        p(2, 2, [4, 4], [2, 2], [2, 2], Padding::ZERO, [1, 1], false, false),
        p(1, 3, [5, 6], [3, 3], [2, 2], Padding::uniform(1), [1, 1], false, true),
        p(1, 2, [5, 5], [3, 2], [2, 2], Padding { top: 1, bottom: 0, left: 0, right: 1 }, [1, 1], true, false),
        p(1, 2, [5, 5], [2, 2], [2, 2], Padding::uniform(1), [1, 1], true, true),
        p(2, 1, [7, 6], [3, 2], [1, 3], Padding::symmetric(1, 1), [2, 2], false, true),
        p(1, 1, [1, 1], [1, 1], [1, 1], Padding::ZERO, [1, 1], false, false),
    ]
}

#[test]
fn max_pool2d_backward_matches_finite_differences() {
    for (k, s) in pool_specs().iter().enumerate() {
        let desc = s.to_string();
        // Distinct values 0.1 apart and h = 0.01: no perturbation changes an argmax.
        let x = distinct(30 + k as u64, s.input_len().unwrap(), 0.1);
        let rr = data(40 + k as u64, s.output_len().unwrap());
        let fdx = fd(&x, 0.01, |x| {
            let mut y = vec![0.0; rr.len()];
            sverka::max_pool2d(s, x, &mut y, None).unwrap();
            dot(&y, &rr)
        });
        let mut ix = vec![0u32; rr.len()];
        let mut y = vec![0.0; rr.len()];
        sverka::max_pool2d(s, &x, &mut y, Some(&mut ix)).unwrap();
        for (name, back) in [
            ("public", sverka::max_pool2d_backward as fn(&Pool2dSpec, &[f32], &[u32], &mut [f32]) -> _),
            ("reference", r::max_pool2d_backward),
        ] {
            let mut dx = vec![f32::NAN; x.len()];
            back(s, &rr, &ix, &mut dx).unwrap();
            assert_grad(&format!("{name} grad_input"), &desc, &dx, &fdx, LIN_RTOL, LIN_ATOL);
        }
    }
}

#[test]
fn avg_pool2d_backward_matches_finite_differences() {
    for (k, s) in pool_specs().iter().enumerate() {
        let desc = s.to_string();
        let x = data(50 + k as u64, s.input_len().unwrap());
        let rr = data(60 + k as u64, s.output_len().unwrap());
        let fdx = fd(&x, LIN_H, |x| {
            let mut y = vec![0.0; rr.len()];
            sverka::avg_pool2d(s, x, &mut y).unwrap();
            dot(&y, &rr)
        });
        for (name, back) in [
            ("public", sverka::avg_pool2d_backward as fn(&Pool2dSpec, &[f32], &mut [f32]) -> _),
            ("reference", r::avg_pool2d_backward),
        ] {
            let mut dx = vec![f32::NAN; x.len()];
            back(s, &rr, &mut dx).unwrap();
            assert_grad(&format!("{name} grad_input"), &desc, &dx, &fdx, LIN_RTOL, LIN_ATOL);
        }
    }
}

#[test]
fn dropout2d_backward_matches_finite_differences() {
    for (k, p) in [0.0f32, 0.3, 0.5, 1.0].into_iter().enumerate() {
        let s = Dropout2dSpec { batch: 3, channels: 4, input: [2, 3], p };
        let desc = format!("{s:?}");
        let seed = 70 + k as u64;
        let x = data(seed, s.input_len().unwrap());
        let rr = data(seed ^ 1, x.len());
        let mut scale = vec![0.0; s.scale_len().unwrap()];
        let fdx = fd(&x, LIN_H, |x| {
            let mut y = vec![0.0; x.len()];
            sverka::dropout2d(&s, seed, x, &mut y, &mut scale.clone()).unwrap();
            dot(&y, &rr)
        });
        let mut y = vec![0.0; x.len()];
        sverka::dropout2d(&s, seed, &x, &mut y, &mut scale).unwrap();
        for (name, back) in [
            ("public", sverka::dropout2d_backward as fn(&Dropout2dSpec, &[f32], &[f32], &mut [f32]) -> _),
            ("reference", r::dropout2d_backward),
        ] {
            let mut dx = vec![f32::NAN; x.len()];
            back(&s, &rr, &scale, &mut dx).unwrap();
            assert_grad(&format!("{name} grad_input"), &desc, &dx, &fdx, LIN_RTOL, LIN_ATOL);
        }
    }
}

/// BatchNorm2d training forward in f64, straight from the definition (biased variance).
fn bn_forward_f64(s: &BatchNorm2dSpec, x: &[f64], gamma: &[f64], beta: &[f64]) -> Vec<f64> {
    let plane = s.input[0] * s.input[1];
    let c = s.channels;
    let m = (s.batch * plane) as f64;
    let ch = |i: usize| (i / plane) % c;
    let mut mean = vec![0.0; c];
    for (i, v) in x.iter().enumerate() {
        mean[ch(i)] += v / m;
    }
    let mut var = vec![0.0; c];
    for (i, v) in x.iter().enumerate() {
        var[ch(i)] += (v - mean[ch(i)]).powi(2) / m;
    }
    x.iter()
        .enumerate()
        .map(|(i, v)| (v - mean[ch(i)]) / (var[ch(i)] + s.eps as f64).sqrt() * gamma[ch(i)] + beta[ch(i)])
        .collect()
}

#[test]
fn batch_norm2d_backward_matches_finite_differences() {
    let specs = [
        BatchNorm2dSpec::new(2, 3, [2, 3]),
        BatchNorm2dSpec::new(1, 2, [3, 3]),
        BatchNorm2dSpec::new(4, 1, [1, 1]),
        BatchNorm2dSpec { batch: 2, channels: 2, input: [1, 2], eps: 1e-3, momentum: 0.1 },
    ];
    for (k, s) in specs.iter().enumerate() {
        let desc = format!("{s:?}");
        let seed = 80 + k as u64;
        let c = s.channels;
        let x: Vec<f32> = data(seed, s.input_len().unwrap()).iter().map(|v| v * 2.0 + 0.5).collect();
        let gamma: Vec<f32> = data(seed ^ 1, c).iter().map(|v| v + 1.5).collect();
        let beta = data(seed ^ 2, c);
        let rr = data(seed ^ 3, x.len());
        let n = x.len();

        // Analytic gradients, from the saved statistics of the public training forward.
        let (mut y, mut rm, mut rv, mut sm, mut si) =
            (vec![0.0; n], vec![0.0; c], vec![1.0; c], vec![0.0; c], vec![0.0; c]);
        sverka::batch_norm2d_train(s, &x, &gamma, &beta, &mut rm, &mut rv, &mut y, &mut sm, &mut si).unwrap();

        // (a) finite differences of the f64 mirror, h = 1e-4.
        let to64 = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
        let (x64, g64, b64, r64) = (to64(&x), to64(&gamma), to64(&beta), to64(&rr));
        let l64 = |x: &[f64], g: &[f64], b: &[f64]| {
            bn_forward_f64(s, x, g, b).iter().zip(&r64).map(|(p, q)| p * q).sum::<f64>()
        };
        let fdx = fd64(&x64, 1e-4, |x| l64(x, &g64, &b64));
        let fdg = fd64(&g64, 1e-4, |g| l64(&x64, g, &b64));
        let fdb = fd64(&b64, 1e-4, |b| l64(&x64, &g64, b));

        // (b) finite differences through the public f32 forward, h = 1e-2.
        let l32 = |x: &[f32], g: &[f32], b: &[f32]| {
            let (mut y, mut rm, mut rv, mut sm, mut si) =
                (vec![0.0; n], vec![0.0; c], vec![1.0; c], vec![0.0; c], vec![0.0; c]);
            sverka::batch_norm2d_train(s, x, g, b, &mut rm, &mut rv, &mut y, &mut sm, &mut si).unwrap();
            dot(&y, &rr)
        };
        let fdx32 = fd(&x, 1e-2, |x| l32(x, &gamma, &beta));
        let fdg32 = fd(&gamma, 1e-2, |g| l32(&x, g, &beta));
        let fdb32 = fd(&beta, 1e-2, |b| l32(&x, &gamma, b));

        type Back = fn(
            &BatchNorm2dSpec,
            &[f32],
            &[f32],
            &[f32],
            &[f32],
            &[f32],
            &mut [f32],
            &mut [f32],
            &mut [f32],
        ) -> Result<(), sverka::Error>;
        for (name, back) in
            [("public", sverka::batch_norm2d_backward as Back), ("reference", r::batch_norm2d_backward as Back)]
        {
            let (mut dx, mut dg, mut db) = (vec![f32::NAN; n], vec![f32::NAN; c], vec![f32::NAN; c]);
            back(s, &x, &rr, &gamma, &sm, &si, &mut dx, &mut dg, &mut db).unwrap();
            assert_grad(&format!("{name} grad_input (f64 FD)"), &desc, &dx, &fdx, 1e-3, 1e-4);
            assert_grad(&format!("{name} grad_gamma (f64 FD)"), &desc, &dg, &fdg, 1e-3, 1e-4);
            assert_grad(&format!("{name} grad_beta (f64 FD)"), &desc, &db, &fdb, 1e-3, 1e-4);
            assert_grad(&format!("{name} grad_input (f32 FD)"), &desc, &dx, &fdx32, 1e-2, 2e-3);
            assert_grad(&format!("{name} grad_gamma (f32 FD)"), &desc, &dg, &fdg32, 1e-2, 2e-3);
            assert_grad(&format!("{name} grad_beta (f32 FD)"), &desc, &db, &fdb32, 1e-2, 2e-3);
        }
    }
}
