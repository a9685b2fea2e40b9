//! Helpers shared by the `ops_*` integration tests: deterministic data, the error bound of
//! DESIGN §4, and proptest strategies that only produce valid specs.
//!
//! Each test binary includes this module with `mod common;` and uses only part of it.
#![allow(dead_code)]

use proptest::prelude::*;
use sverka::rng::SplitMix64;
use sverka::{BatchNorm2dSpec, Conv2dSpec, ConvTranspose2dSpec, Dropout2dSpec, Padding, Pool2dSpec};

/// `len` values uniform in `[-1, 1)`, reproducible from `seed`.
pub fn data(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// `len` pairwise distinct values (a shuffled ramp with spacing `step`, centred on 0):
/// max pooling over them has no ties, so the argmax is unique.
pub fn distinct(seed: u64, len: usize, step: f32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..len).map(|i| (i as f32 - len as f32 / 2.0) * step).collect();
    SplitMix64::new(seed).shuffle(&mut v);
    v
}

/// Element-wise absolute values.
pub fn abs(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| x.abs()).collect()
}

/// `sum_i a_i * b_i` in f64.
pub fn dot(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "dot of slices of different lengths");
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// First element where `|got - want| > rel * scale + abs_tol` (the per-element bound of
/// DESIGN §4 with `scale = sum|a_i * b_i|`), as `(index, got, want, bound)`; `None` if
/// all are within the bound. Non-finite values must match exactly (NaN matches NaN).
pub fn first_mismatch(
    got: &[f32],
    want: &[f32],
    scale: &[f32],
    rel: f64,
    abs_tol: f64,
) -> Option<(usize, f32, f32, f64)> {
    assert_eq!(got.len(), want.len());
    assert_eq!(got.len(), scale.len());
    for i in 0..got.len() {
        let (g, w) = (got[i], want[i]);
        let bound = rel * scale[i] as f64 + abs_tol;
        let ok = if w.is_finite() {
            g.is_finite() && (g as f64 - w as f64).abs() <= bound
        } else {
            (w.is_nan() && g.is_nan()) || g == w
        };
        if !ok {
            return Some((i, g, w, bound));
        }
    }
    None
}

/// Relative part of the convolution bound of DESIGN §4.
pub const REL: f64 = 1e-5;
/// Absolute part of the convolution bound of DESIGN §4.
pub const ABS: f64 = 1e-6;

/// Small spatial extents: 1x1 images, odd sizes.
fn side() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..=9, 1 => Just(1usize)]
}

/// Asymmetric padding, each side independent.
fn padding(max: usize) -> impl Strategy<Value = Padding> {
    (0..=max, 0..=max, 0..=max, 0..=max).prop_map(|(top, bottom, left, right)| Padding { top, bottom, left, right })
}

/// Channel structure `(in_channels, out_channels, groups)`: dense, grouped, depthwise
/// (with channel multiplier), and channel counts that are not multiples of 8 or 16
/// (plus a few just above them).
fn channels() -> impl Strategy<Value = (usize, usize, usize)> {
    prop_oneof![
        // dense, small odd counts
        3 => (1usize..=5, 1usize..=5).prop_map(|(i, o)| (i, o, 1)),
        // grouped
        2 => (1usize..=3, 1usize..=3, 2usize..=3).prop_map(|(ipg, opg, g)| (ipg * g, opg * g, g)),
        // depthwise (groups == in_channels), multiplier 1 or 2
        2 => (1usize..=9, 1usize..=2).prop_map(|(c, m)| (c, c * m, c)),
        // around SIMD widths
        1 => (prop::sample::select(vec![7usize, 9, 17]), prop::sample::select(vec![1usize, 8, 15, 17]))
            .prop_map(|(i, o)| (i, o, 1)),
    ]
}

/// Random valid convolution specs (stride > kernel, dilation > 1, asymmetric padding,
/// groups, depthwise, batch 1, 1x1 images), filtered on `output().is_ok()`.
pub fn conv_spec() -> impl Strategy<Value = Conv2dSpec> {
    (
        prop_oneof![2 => Just(1usize), 1 => 2usize..=3],
        channels(),
        (side(), side()),
        (1usize..=4, 1usize..=4),
        (1usize..=4, 1usize..=4),
        padding(3),
        (prop_oneof![3 => Just(1usize), 1 => 2usize..=3], prop_oneof![3 => Just(1usize), 1 => 2usize..=3]),
    )
        .prop_map(|(batch, (ic, oc, groups), (h, w), (kh, kw), (sh, sw), padding, (dh, dw))| Conv2dSpec {
            batch,
            in_channels: ic,
            out_channels: oc,
            input: [h, w],
            kernel: [kh, kw],
            stride: [sh, sw],
            padding,
            dilation: [dh, dw],
            groups,
        })
        .prop_filter("spec must be valid", |s| s.output().is_ok())
}

/// Random valid transposed-convolution specs, including output_padding.
pub fn conv_transpose_spec() -> impl Strategy<Value = ConvTranspose2dSpec> {
    (conv_spec(), (0usize..=3, 0usize..=3))
        .prop_map(|(c, (oph, opw))| ConvTranspose2dSpec {
            batch: c.batch,
            in_channels: c.in_channels,
            out_channels: c.out_channels,
            input: c.input,
            kernel: c.kernel,
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
            groups: c.groups,
            output_padding: [oph % c.stride[0].max(c.dilation[0]), opw % c.stride[1].max(c.dilation[1])],
        })
        .prop_filter("spec must be valid", |s| s.output().is_ok())
}

/// Random valid pooling specs (padding <= kernel/2, dilation, ceil_mode,
/// count_include_pad, stride > kernel), filtered on `output().is_ok()`.
pub fn pool_spec() -> impl Strategy<Value = Pool2dSpec> {
    (
        (1usize..=2, 1usize..=5),
        (side(), side()),
        (1usize..=4, 1usize..=4),
        (1usize..=4, 1usize..=4),
        padding(2),
        (prop_oneof![3 => Just(1usize), 1 => 2usize..=3], prop_oneof![3 => Just(1usize), 1 => 2usize..=3]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|((batch, channels), (h, w), (kh, kw), (sh, sw), p, (dh, dw), ceil_mode, count_include_pad)| {
            // Clamp the padding to PyTorch's limit kernel/2 (still asymmetric).
            let padding = Padding {
                top: p.top.min(kh / 2),
                bottom: p.bottom.min(kh / 2),
                left: p.left.min(kw / 2),
                right: p.right.min(kw / 2),
            };
            Pool2dSpec {
                batch,
                channels,
                input: [h, w],
                kernel: [kh, kw],
                stride: [sh, sw],
                padding,
                dilation: [dh, dw],
                ceil_mode,
                count_include_pad,
            }
        })
        .prop_filter("spec must be valid", |s| s.output().is_ok())
}

/// Random valid BatchNorm2d specs with at least 2 values per channel (training).
pub fn bn_spec() -> impl Strategy<Value = BatchNorm2dSpec> {
    (
        1usize..=3,
        prop_oneof![1usize..=5, Just(17usize)],
        (side(), side()),
        prop::sample::select(vec![1e-5f32, 1e-3, 0.0, 0.5]),
        prop::sample::select(vec![0.1f32, 0.0, 1.0, 0.37]),
    )
        .prop_map(|(batch, channels, (h, w), eps, momentum)| BatchNorm2dSpec {
            batch,
            channels,
            input: [h, w],
            eps,
            momentum,
        })
        .prop_filter("training needs >= 2 values per channel", |s| s.batch * s.input[0] * s.input[1] >= 2)
}

/// Random valid Dropout2d specs, p including the edges 0 and 1.
pub fn dropout_spec() -> impl Strategy<Value = Dropout2dSpec> {
    (1usize..=4, 1usize..=9, (side(), side()), prop_oneof![Just(0.0f32), Just(1.0f32), Just(0.5f32), 0.0f32..1.0])
        .prop_map(|(batch, channels, (h, w), p)| Dropout2dSpec { batch, channels, input: [h, w], p })
}

/// The conv2d spec whose adjoint is the transposed convolution `t`
/// (swap channels; conv input = `t`'s output, conv output = `t`'s input).
pub fn adjoint_conv(t: &ConvTranspose2dSpec) -> Conv2dSpec {
    let [oh, ow] = t.output().expect("valid transposed spec");
    Conv2dSpec {
        batch: t.batch,
        in_channels: t.out_channels,
        out_channels: t.in_channels,
        input: [oh, ow],
        kernel: t.kernel,
        stride: t.stride,
        padding: t.padding,
        dilation: t.dilation,
        groups: t.groups,
    }
}

/// The transposed convolution that is the adjoint of conv `c`: `output_padding` is the
/// remainder that conv's floor division dropped, so its output size is exactly `c.input`.
pub fn adjoint_transpose(c: &Conv2dSpec) -> ConvTranspose2dSpec {
    let [oh, ow] = c.output().expect("valid conv spec");
    let rem = |i: usize, o: usize, pb: usize, pe: usize| {
        c.input[i] + pb + pe - (c.dilation[i] * (c.kernel[i] - 1) + 1) - (o - 1) * c.stride[i]
    };
    ConvTranspose2dSpec {
        batch: c.batch,
        in_channels: c.out_channels,
        out_channels: c.in_channels,
        input: [oh, ow],
        kernel: c.kernel,
        stride: c.stride,
        padding: c.padding,
        dilation: c.dilation,
        groups: c.groups,
        output_padding: [rem(0, oh, c.padding.top, c.padding.bottom), rem(1, ow, c.padding.left, c.padding.right)],
    }
}

/// Medium convolution specs (channels up to ~40, images up to 20x20) so that blocked
/// layouts, SIMD tails (channels around 8/16/32 lanes) and several threads get exercised;
/// few cases each, because the reference costs `O(output * kernel * channels)`.
pub fn conv_spec_medium() -> impl Strategy<Value = Conv2dSpec> {
    (
        1usize..=2,
        prop_oneof![
            (1usize..=40, 1usize..=40).prop_map(|(i, o)| (i, o, 1)),
            (prop::sample::select(vec![8usize, 16, 24, 33]), 1usize..=2).prop_map(|(c, m)| (c, c * m, c)),
            (1usize..=10, 1usize..=10, 2usize..=4).prop_map(|(ipg, opg, g)| (ipg * g, opg * g, g)),
        ],
        (1usize..=20, 1usize..=20),
        prop::sample::select(vec![[1usize, 1], [3, 3], [5, 5], [1, 3], [7, 7], [2, 2]]),
        prop::sample::select(vec![[1usize, 1], [2, 2], [1, 2], [3, 3]]),
        padding(3),
        prop::sample::select(vec![[1usize, 1], [1, 1], [2, 2], [1, 3]]),
    )
        .prop_map(|(batch, (ic, oc, groups), (h, w), kernel, stride, padding, dilation)| Conv2dSpec {
            batch,
            in_channels: ic,
            out_channels: oc,
            input: [h, w],
            kernel,
            stride,
            padding,
            dilation,
            groups,
        })
        .prop_filter("spec must be valid", |s| s.output().is_ok())
}

/// Medium transposed-convolution specs (see [`conv_spec_medium`]).
pub fn conv_transpose_spec_medium() -> impl Strategy<Value = ConvTranspose2dSpec> {
    (conv_spec_medium(), (0usize..=2, 0usize..=2))
        .prop_map(|(c, (oph, opw))| ConvTranspose2dSpec {
            batch: c.batch,
            in_channels: c.in_channels,
            out_channels: c.out_channels,
            input: [c.input[0].div_ceil(2), c.input[1].div_ceil(2)],
            kernel: c.kernel,
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
            groups: c.groups,
            output_padding: [oph % c.stride[0].max(c.dilation[0]), opw % c.stride[1].max(c.dilation[1])],
        })
        .prop_filter("spec must be valid", |s| s.output().is_ok())
}

/// Medium pooling specs: many channels, larger images, the common 2x2/2 and 3x3/2 windows.
pub fn pool_spec_medium() -> impl Strategy<Value = Pool2dSpec> {
    (
        (1usize..=3, 1usize..=40),
        (1usize..=33, 1usize..=33),
        prop::sample::select(vec![
            ([2usize, 2], [2usize, 2]),
            ([3, 3], [2, 2]),
            ([3, 3], [1, 1]),
            ([5, 5], [3, 3]),
            ([2, 3], [1, 2]),
        ]),
        0usize..=1,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|((batch, channels), (h, w), (kernel, stride), pad, ceil_mode, count_include_pad)| Pool2dSpec {
            batch,
            channels,
            input: [h, w],
            kernel,
            stride,
            padding: Padding::uniform(pad),
            dilation: [1, 1],
            ceil_mode,
            count_include_pad,
        })
        .prop_filter("spec must be valid", |s| s.output().is_ok())
}

/// Medium BatchNorm2d specs: up to ~8k values per channel, so the statistics' f32
/// reductions are long.
pub fn bn_spec_medium() -> impl Strategy<Value = BatchNorm2dSpec> {
    (1usize..=8, 1usize..=40, (1usize..=32, 1usize..=32))
        .prop_map(|(batch, channels, (h, w))| BatchNorm2dSpec::new(batch, channels, [h, w]))
        .prop_filter("training needs >= 2 values per channel", |s| s.batch * s.input[0] * s.input[1] >= 2)
}
