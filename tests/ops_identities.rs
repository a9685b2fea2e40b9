//! Algebraic identities of the public convolutions, independent of the reference:
//! - conv_transpose2d is the adjoint of conv2d: `<conv(x), y> == <x, convT(y)>`;
//! - conv2d_backward_input is the same linear map as conv_transpose2d with the same weight;
//! - conv with a centred one-hot 3x3 kernel (pad 1) is the identity;
//! - linearity in the input and in the weight.
//!
//! Tolerances: the bound of DESIGN §4 (`1e-5 * sum|a_i*b_i| + 1e-6`) applied to the
//! quantity compared, with `sum|a_i*b_i|` obtained by running the same computation on
//! absolute values.

mod common;

use common::*;
use proptest::prelude::*;
use sverka::{Conv2dSpec, ConvTranspose2dSpec, Padding};

fn conv(s: &Conv2dSpec, x: &[f32], w: &[f32]) -> Vec<f32> {
    let mut y = vec![f32::NAN; s.output_len().unwrap()];
    sverka::conv2d(s, x, w, None, &mut y).unwrap_or_else(|e| panic!("{s}: {e}"));
    y
}

fn conv_t(t: &ConvTranspose2dSpec, x: &[f32], w: &[f32]) -> Vec<f32> {
    let mut y = vec![f32::NAN; t.output_len().unwrap()];
    sverka::conv_transpose2d(t, x, w, None, &mut y).unwrap_or_else(|e| panic!("{t}: {e}"));
    y
}

/// `<conv(x), y>` vs `<x, convT(y)>` in f64, for the transposed spec `t` and its adjoint conv.
/// Returns `(lhs, rhs, bound)`. Needs `output_padding < stride`: a larger output padding
/// (allowed when dilation > stride) adds output rows that the plain conv of that size
/// would map to extra outputs, so the adjoint would be a cropped conv.
fn adjoint_gap(t: &ConvTranspose2dSpec, seed: u64) -> (f64, f64, f64) {
    let c = adjoint_conv(t);
    assert_eq!(c.input_len().unwrap(), t.output_len().unwrap(), "{c} vs {t}: adjoint sizes");
    assert_eq!(c.output_len().unwrap(), t.input_len().unwrap(), "{c} vs {t}: adjoint sizes");
    assert_eq!(c.weight_len().unwrap(), t.weight_len().unwrap(), "{c} vs {t}: same weight layout");
    let x = data(seed, c.input_len().unwrap());
    let y = data(seed ^ 1, c.output_len().unwrap());
    let w = data(seed ^ 2, c.weight_len().unwrap());
    let lhs = dot(&conv(&c, &x, &w), &y);
    let rhs = dot(&x, &conv_t(t, &y, &w));
    // Both sides are sums of the same products x_i * w_k * y_o; each f32 output element
    // is within 1e-5 * (its sum of |products|) + 1e-6, so the dot products are within that
    // many times the dot of the absolute values (plus 1e-6 * sum |y| / sum |x|).
    let scale = dot(&conv(&c, &abs(&x), &abs(&w)), &abs(&y));
    let abs_terms =
        1e-6 * (abs(&y).iter().map(|&v| v as f64).sum::<f64>() + abs(&x).iter().map(|&v| v as f64).sum::<f64>());
    (lhs, rhs, 2e-5 * scale + abs_terms)
}

fn tspec(
    c: [usize; 3],
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    dilation: [usize; 2],
    op: [usize; 2],
) -> ConvTranspose2dSpec {
    ConvTranspose2dSpec {
        batch: 2,
        in_channels: c[0],
        out_channels: c[1],
        input,
        kernel,
        stride,
        padding,
        dilation,
        groups: c[2],
        output_padding: op,
    }
}

#[test]
fn conv_transpose_is_adjoint_of_conv_fixed_specs() {
    let specs = [
        tspec([3, 2, 1], [4, 5], [3, 3], [1, 1], Padding::uniform(1), [1, 1], [0, 0]),
        tspec([4, 6, 2], [3, 3], [4, 4], [2, 2], Padding::uniform(1), [1, 1], [1, 0]),
        tspec([5, 5, 5], [4, 3], [3, 3], [2, 3], Padding { top: 0, bottom: 2, left: 1, right: 0 }, [1, 1], [1, 2]),
        tspec([2, 3, 1], [3, 4], [3, 2], [1, 2], Padding::symmetric(2, 1), [2, 3], [0, 1]),
        tspec([3, 3, 3], [5, 4], [3, 3], [3, 2], Padding { top: 1, bottom: 3, left: 0, right: 2 }, [2, 3], [2, 1]),
        tspec([6, 4, 2], [2, 2], [2, 3], [3, 1], Padding::ZERO, [1, 2], [2, 0]),
        tspec([16, 8, 1], [7, 7], [3, 3], [2, 2], Padding::uniform(1), [1, 1], [1, 1]),
        tspec([1, 1, 1], [1, 1], [1, 1], [4, 4], Padding::ZERO, [1, 1], [3, 0]),
    ];
    for (i, t) in specs.iter().enumerate() {
        let (lhs, rhs, bound) = adjoint_gap(t, 100 + i as u64);
        assert!((lhs - rhs).abs() <= bound, "{t}: <conv(x), y> = {lhs} but <x, convT(y)> = {rhs} (bound {bound})");
    }
}

/// `conv2d_backward_input(dy, w)` and `conv_transpose2d(dy, w)` are the same linear map
/// (the adjoint of conv2d); compared element by element.
fn backward_input_vs_transpose(c: &Conv2dSpec, seed: u64) -> Result<(), String> {
    let t = adjoint_transpose(c);
    if t.output().map_err(|e| format!("{t}: {e}"))? != c.input {
        return Err(format!("{c}: adjoint transpose {t} has output {:?}, expected {:?}", t.output(), c.input));
    }
    let dy = data(seed, c.output_len().unwrap());
    let w = data(seed ^ 1, c.weight_len().unwrap());
    let mut dx = vec![f32::NAN; c.input_len().unwrap()];
    sverka::conv2d_backward_input(c, &dy, &w, &mut dx).map_err(|e| format!("{c}: {e}"))?;
    let ty = conv_t(&t, &dy, &w);
    let scale = conv_t(&t, &abs(&dy), &abs(&w));
    match first_mismatch(&dx, &ty, &scale, 2.0 * REL, 2.0 * ABS) {
        None => Ok(()),
        Some((i, a, b, bound)) => {
            Err(format!("{c} / {t}: element {i}: conv2d_backward_input {a} vs conv_transpose2d {b} (bound {bound})"))
        }
    }
}

fn cspec(
    c: [usize; 3],
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    dilation: [usize; 2],
) -> Conv2dSpec {
    Conv2dSpec {
        batch: 2,
        in_channels: c[0],
        out_channels: c[1],
        input,
        kernel,
        stride,
        padding,
        dilation,
        groups: c[2],
    }
}

#[test]
fn conv2d_backward_input_equals_conv_transpose_fixed_specs() {
    let specs = [
        cspec([3, 4, 1], [6, 5], [3, 3], [1, 1], Padding::uniform(1), [1, 1]),
        cspec([4, 6, 2], [7, 8], [3, 3], [2, 2], Padding::uniform(1), [1, 1]),
        cspec([6, 6, 6], [9, 7], [5, 3], [3, 2], Padding { top: 2, bottom: 0, left: 0, right: 1 }, [1, 2]),
        cspec([2, 2, 1], [5, 5], [2, 2], [3, 3], Padding::ZERO, [1, 1]),
    ];
    for (i, c) in specs.iter().enumerate() {
        backward_input_vs_transpose(c, 200 + i as u64).unwrap();
    }
}

/// A centred one-hot 3x3 kernel with padding 1 and `w[oc, ic] = [oc == ic]` copies the
/// input (up to the Winograd bound 1e-4 of DESIGN §4 where a fast path transforms it);
/// the depthwise form too.
#[test]
fn centred_one_hot_kernel_is_identity() {
    for (channels, groups, hw) in
        [(1, 1, [5, 5]), (3, 1, [4, 7]), (16, 1, [12, 12]), (64, 1, [8, 8]), (17, 17, [6, 5]), (8, 8, [1, 1])]
    {
        let s = Conv2dSpec {
            batch: 2,
            in_channels: channels,
            out_channels: channels,
            input: hw,
            kernel: [3, 3],
            stride: [1, 1],
            padding: Padding::uniform(1),
            dilation: [1, 1],
            groups,
        };
        let icpg = channels / groups;
        let mut w = vec![0.0f32; s.weight_len().unwrap()];
        for oc in 0..channels {
            let ic_in_group = if groups == 1 { oc } else { 0 };
            w[(oc * icpg + ic_in_group) * 9 + 4] = 1.0;
        }
        let x = data(channels as u64, s.input_len().unwrap());
        let y = conv(&s, &x, &w);
        let m = first_mismatch(&y, &x, &abs(&x), 1e-4, ABS);
        assert!(m.is_none(), "{s}: identity kernel: element {:?}", m);
    }
}

/// `conv(a*x1 + b*x2, w) == a*conv(x1, w) + b*conv(x2, w)` and the same in `w`.
fn linearity(s: &Conv2dSpec, seed: u64) -> Result<(), String> {
    let (a, b) = (1.75f32, -0.5f32);
    let x1 = data(seed, s.input_len().unwrap());
    let x2 = data(seed ^ 1, x1.len());
    let w1 = data(seed ^ 2, s.weight_len().unwrap());
    let w2 = data(seed ^ 3, w1.len());
    let comb = |u: &[f32], v: &[f32]| u.iter().zip(v).map(|(p, q)| a * p + b * q).collect::<Vec<f32>>();
    let comb_abs = |u: &[f32], v: &[f32]| u.iter().zip(v).map(|(p, q)| a.abs() * p + b.abs() * q).collect::<Vec<f32>>();
    // in the input
    let lhs = conv(s, &comb(&x1, &x2), &w1);
    let rhs = comb(&conv(s, &x1, &w1), &conv(s, &x2, &w1));
    let scale = comb_abs(&conv(s, &abs(&x1), &abs(&w1)), &conv(s, &abs(&x2), &abs(&w1)));
    if let Some((i, p, q, bound)) = first_mismatch(&lhs, &rhs, &scale, 3.0 * REL, 3.0 * ABS) {
        return Err(format!("{s}: linearity in input, element {i}: {p} vs {q} (bound {bound})"));
    }
    // in the weight
    let lhs = conv(s, &x1, &comb(&w1, &w2));
    let rhs = comb(&conv(s, &x1, &w1), &conv(s, &x1, &w2));
    let scale = comb_abs(&conv(s, &abs(&x1), &abs(&w1)), &conv(s, &abs(&x1), &abs(&w2)));
    if let Some((i, p, q, bound)) = first_mismatch(&lhs, &rhs, &scale, 3.0 * REL, 3.0 * ABS) {
        return Err(format!("{s}: linearity in weight, element {i}: {p} vs {q} (bound {bound})"));
    }
    Ok(())
}

#[test]
fn conv2d_is_linear_fixed_specs() {
    let specs = [
        cspec([3, 4, 1], [6, 5], [3, 3], [1, 1], Padding::uniform(1), [1, 1]),
        cspec([8, 8, 8], [7, 9], [3, 3], [2, 1], Padding { top: 1, bottom: 0, left: 2, right: 1 }, [2, 1]),
        cspec([32, 16, 1], [10, 10], [3, 3], [1, 1], Padding::uniform(1), [1, 1]),
    ];
    for (i, s) in specs.iter().enumerate() {
        linearity(s, 300 + i as u64).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn conv_transpose_is_adjoint_of_conv(
        t in common::conv_transpose_spec().prop_filter("output_padding < stride", |t| t.output_padding[0] < t.stride[0] && t.output_padding[1] < t.stride[1]),
        seed in any::<u64>(),
    ) {
        let (lhs, rhs, bound) = adjoint_gap(&t, seed);
        prop_assert!((lhs - rhs).abs() <= bound, "{}: <conv(x), y> = {} but <x, convT(y)> = {} (bound {})", t, lhs, rhs, bound);
    }

    #[test]
    fn conv2d_backward_input_equals_conv_transpose(c in common::conv_spec(), seed in any::<u64>()) {
        let r = backward_input_vs_transpose(&c, seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn conv2d_is_linear(c in common::conv_spec(), seed in any::<u64>()) {
        let r = linearity(&c, seed);
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

/// DESIGN §2: results are bitwise identical for any thread count (rayon's current pool).
#[test]
fn results_independent_of_thread_count() {
    let conv_s = Conv2dSpec {
        batch: 3,
        in_channels: 24,
        out_channels: 40,
        input: [19, 17],
        kernel: [3, 3],
        stride: [1, 2],
        padding: Padding { top: 1, bottom: 2, left: 1, right: 0 },
        dilation: [1, 1],
        groups: 2,
    };
    let t = adjoint_transpose(&conv_s);
    let pool = sverka::Pool2dSpec {
        batch: 3,
        channels: 37,
        input: [21, 18],
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        ceil_mode: true,
        count_include_pad: false,
    };
    let bn = sverka::BatchNorm2dSpec::new(5, 19, [13, 11]);
    let drop = sverka::Dropout2dSpec { batch: 5, channels: 19, input: [13, 11], p: 0.3 };
    let x = data(1, conv_s.input_len().unwrap());
    let w = data(2, conv_s.weight_len().unwrap());
    let b = data(3, conv_s.bias_len());
    let dy = data(4, conv_s.output_len().unwrap());
    let px = data(5, pool.input_len().unwrap());
    let bx = data(6, bn.input_len().unwrap());
    let (g, be) = (data(7, 19), data(8, 19));
    let run_all = || {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let mut out: Vec<Vec<u32>> = Vec::new();
        let mut y = vec![0.0; conv_s.output_len().unwrap()];
        sverka::conv2d(&conv_s, &x, &w, Some(&b), &mut y).unwrap();
        out.push(bits(&y));
        let mut dx = vec![0.0; x.len()];
        sverka::conv2d_backward_input(&conv_s, &dy, &w, &mut dx).unwrap();
        out.push(bits(&dx));
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; b.len()]);
        sverka::conv2d_backward_weight(&conv_s, &x, &dy, &mut dw, Some(&mut db)).unwrap();
        out.push(bits(&dw));
        out.push(bits(&db));
        let mut ty = vec![0.0; t.output_len().unwrap()];
        sverka::conv_transpose2d(&t, &dy, &w, None, &mut ty).unwrap();
        out.push(bits(&ty));
        let mut tdx = vec![0.0; dy.len()];
        sverka::conv_transpose2d_backward_input(&t, &x, &w, &mut tdx).unwrap();
        out.push(bits(&tdx));
        let mut tdw = vec![0.0; w.len()];
        sverka::conv_transpose2d_backward_weight(&t, &dy, &x, &mut tdw, None).unwrap();
        out.push(bits(&tdw));
        let (mut py, mut pix) = (vec![0.0; pool.output_len().unwrap()], vec![0u32; pool.output_len().unwrap()]);
        sverka::max_pool2d(&pool, &px, &mut py, Some(&mut pix)).unwrap();
        out.push(bits(&py));
        out.push(pix.clone());
        let mut pdx = vec![0.0; px.len()];
        sverka::max_pool2d_backward(&pool, &py, &pix, &mut pdx).unwrap();
        out.push(bits(&pdx));
        sverka::avg_pool2d(&pool, &px, &mut py).unwrap();
        out.push(bits(&py));
        sverka::avg_pool2d_backward(&pool, &py, &mut pdx).unwrap();
        out.push(bits(&pdx));
        let (mut by, mut rm, mut rv, mut sm, mut si) =
            (vec![0.0; bx.len()], vec![0.0; 19], vec![1.0; 19], vec![0.0; 19], vec![0.0; 19]);
        sverka::batch_norm2d_train(&bn, &bx, &g, &be, &mut rm, &mut rv, &mut by, &mut sm, &mut si).unwrap();
        for v in [&by, &rm, &rv, &sm, &si] {
            out.push(bits(v));
        }
        let (mut bdx, mut dg, mut dbe) = (vec![0.0; bx.len()], vec![0.0; 19], vec![0.0; 19]);
        sverka::batch_norm2d_backward(&bn, &bx, &by, &g, &sm, &si, &mut bdx, &mut dg, &mut dbe).unwrap();
        for v in [&bdx, &dg, &dbe] {
            out.push(bits(v));
        }
        sverka::batch_norm2d_eval(&bn, &bx, &g, &be, &rm, &rv, &mut by).unwrap();
        out.push(bits(&by));
        let (mut dy2, mut sc) = (vec![0.0; bx.len()], vec![0.0; 95]);
        sverka::dropout2d(&drop, 99, &bx, &mut dy2, &mut sc).unwrap();
        out.push(bits(&dy2));
        out.push(bits(&sc));
        out
    };
    let pool_of = |n: usize| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let one = pool_of(1).install(run_all);
    for n in [2, 3, 4] {
        let many = pool_of(n).install(run_all);
        for (k, (a, b)) in one.iter().zip(&many).enumerate() {
            assert!(a == b, "result #{k} differs between 1 and {n} threads");
        }
    }
}
