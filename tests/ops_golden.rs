//! PyTorch-parity golden cases, every expected number computed by hand from PyTorch's
//! definitions (cross-correlation, its output-size formulas, its pooling divisor rules,
//! its BatchNorm running-statistics update and Dropout2d's per-channel scaling).
//! Each case runs on the public op and on the reference.

use sverka::reference as r;
use sverka::{BatchNorm2dSpec, Conv2dSpec, ConvTranspose2dSpec, Dropout2dSpec, Padding, Pool2dSpec};

const IMAGE: [f32; 25] = [
    0., 1., 2., 1., 0., //
    4., 1., 0., 1., 0., //
    2., 0., 1., 1., 1., //
    1., 2., 3., 1., 0., //
    0., 4., 3., 2., 0.,
];
const KERNEL: [f32; 9] = [
    0., 1., 0., //
    1., 0., 1., //
    2., 1., 0.,
];

fn conv_5x5(stride: usize, pad: usize) -> Conv2dSpec {
    Conv2dSpec {
        batch: 1,
        in_channels: 1,
        out_channels: 1,
        input: [5, 5],
        kernel: [3, 3],
        stride: [stride, stride],
        padding: Padding::uniform(pad),
        dilation: [1, 1],
        groups: 1,
    }
}

fn run_conv(s: &Conv2dSpec, x: &[f32], w: &[f32], b: Option<&[f32]>) -> [Vec<f32>; 2] {
    let mut fast = vec![f32::NAN; s.output_len().unwrap()];
    let mut oracle = vec![f32::NAN; fast.len()];
    sverka::conv2d(s, x, w, b, &mut fast).unwrap();
    r::conv2d(s, x, w, b, &mut oracle).unwrap();
    [fast, oracle]
}

/// The classic 5x5 * 3x3 example. By hand: the 3x3 block 9 5 4 / 8 8 10 / 8 15 12 is the
/// *valid* cross-correlation (stride 1, padding 0); e.g. the top-left window
/// [0 1 2; 4 1 0; 2 0 1] . [0 1 0; 1 0 1; 2 1 0] = 1 + 4 + 0 + 4 = 9.
#[test]
fn conv2d_5x5_stride1_pad0() {
    let s = conv_5x5(1, 0);
    assert_eq!(s.output().unwrap(), [3, 3]);
    for y in run_conv(&s, &IMAGE, &KERNEL, None) {
        assert_eq!(y, [9., 5., 4., 8., 8., 10., 8., 15., 12.], "{s}");
    }
}

/// Stride 2, padding 1: windows centred on rows/cols 0, 2, 4. By hand, top-left:
/// rows -1..1, cols -1..1 = [0 0 0; 0 0 1; 0 4 1] . kernel = 1 (row 1: 0+0+1) + 4 (row 2: 0+4+0) = 5.
#[test]
fn conv2d_5x5_stride2_pad1() {
    let s = conv_5x5(2, 1);
    assert_eq!(s.output().unwrap(), [3, 3]);
    for y in run_conv(&s, &IMAGE, &KERNEL, None) {
        assert_eq!(y, [5., 4., 3., 5., 8., 3., 5., 9., 2.], "{s}");
    }
}

/// Stride 1, padding 1 ("same"): the centre 3x3 equals the valid result.
#[test]
fn conv2d_5x5_stride1_pad1_with_bias() {
    let s = conv_5x5(1, 1);
    assert_eq!(s.output().unwrap(), [5, 5]);
    let want: Vec<f32> = [
        5., 11., 4., 3., 3., //
        3., 9., 5., 4., 4., //
        5., 8., 8., 10., 3., //
        4., 8., 15., 12., 6., //
        5., 5., 9., 4., 2.,
    ]
    .iter()
    .map(|v| v + 0.5)
    .collect();
    for y in run_conv(&s, &IMAGE, &KERNEL, Some(&[0.5])) {
        assert_eq!(y, want, "{s}");
    }
}

/// Transposed convolution of a 2x2 input by the 3x3 kernel, stride 2, padding 1,
/// output_padding 1 (out = (2-1)*2 - 2 + 2 + 1 + 1 = 4): each input pixel scatters
/// `x * kernel` centred at (2*iy, 2*ix), then one row/column is cropped at the top/left.
#[test]
fn conv_transpose2d_scatter_by_hand() {
    let s = ConvTranspose2dSpec {
        batch: 1,
        in_channels: 1,
        out_channels: 1,
        input: [2, 2],
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
        output_padding: [1, 1],
    };
    assert_eq!(s.output().unwrap(), [4, 4]);
    let x = [1., 2., 3., 4.];
    // Full (uncropped) 6x6 canvas: pixel (iy, ix) adds x*K at rows 2iy..2iy+2, cols 2ix..2ix+2.
    let mut canvas = [[0f32; 6]; 6];
    for iy in 0..2 {
        for ix in 0..2 {
            for ky in 0..3 {
                for kx in 0..3 {
                    canvas[2 * iy + ky][2 * ix + kx] += x[iy * 2 + ix] * KERNEL[ky * 3 + kx];
                }
            }
        }
    }
    let want: Vec<f32> = (1..5).flat_map(|r| (1..5).map(move |c| (r, c))).map(|(r, c)| canvas[r][c]).collect();
    // Written out: rows 1..4, cols 1..4 of the canvas; e.g. out(0,1) = canvas(1,2) =
    // x00*K[1][2] + x01*K[1][0] = 1 + 2 = 3, out(1,0) = x00*K[2][1] + x10*K[0][1] = 1 + 3 = 4.
    assert_eq!(want, [0., 3., 0., 2., 4., 4., 6., 0., 0., 7., 0., 4., 3., 8., 4., 0.]);
    let mut fast = vec![f32::NAN; 16];
    let mut oracle = vec![f32::NAN; 16];
    sverka::conv_transpose2d(&s, &x, &KERNEL, None, &mut fast).unwrap();
    r::conv_transpose2d(&s, &x, &KERNEL, None, &mut oracle).unwrap();
    assert_eq!(fast, want, "{s}");
    assert_eq!(oracle, want, "{s}");
}

fn cspec(
    input: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    dilation: [usize; 2],
) -> Conv2dSpec {
    Conv2dSpec { batch: 2, in_channels: 3, out_channels: 4, input, kernel, stride, padding, dilation, groups: 1 }
}

/// `out = floor((in + pb + pe - d*(k-1) - 1) / s) + 1`, evaluated by hand in the comments.
#[test]
fn conv2d_output_sizes() {
    let cases = [
        // (7+2-2-1)/2+1 = 4, (9+2-2-1)/2+1 = 5
        (cspec([7, 9], [3, 3], [2, 2], Padding::uniform(1), [1, 1]), [4, 5]),
        // dilation 2 and padding 2 keep the size: (10+4-4-1)/1+1 = 10
        (cspec([10, 10], [3, 3], [1, 1], Padding::uniform(2), [2, 2]), [10, 10]),
        // asymmetric: H (8+0+1-2-1)/2+1 = 4; W (8+2+0-4-1)/3+1 = 2 (5/3 floors to 1)
        (cspec([8, 8], [3, 3], [2, 3], Padding { top: 0, bottom: 1, left: 2, right: 0 }, [1, 2]), [4, 2]),
        // stride > kernel: (6-1)/4+1 = 2, (7-2)/5+1 = 2
        (cspec([6, 7], [1, 2], [4, 5], Padding::ZERO, [1, 1]), [2, 2]),
        // 1x1 image, 3x3 kernel, padding 1: (1+2-2-1)/1+1 = 1
        (cspec([1, 1], [3, 3], [1, 1], Padding::uniform(1), [1, 1]), [1, 1]),
        // dilated extent 4*(2-1)+1 = 5 fills the 5x5 input exactly
        (cspec([5, 5], [2, 2], [1, 1], Padding::ZERO, [4, 4]), [1, 1]),
        // ResNet stem: (224+6-6-1)/2+1 = 112
        (cspec([224, 224], [7, 7], [2, 2], Padding::uniform(3), [1, 1]), [112, 112]),
    ];
    for (s, want) in cases {
        assert_eq!(s.output().unwrap(), want, "{s}");
        let [oh, ow] = want;
        assert_eq!(s.output_len().unwrap(), 2 * 4 * oh * ow, "{s}");
        assert_eq!(s.input_len().unwrap(), 2 * 3 * s.input[0] * s.input[1], "{s}");
        assert_eq!(s.weight_len().unwrap(), 4 * 3 * s.kernel[0] * s.kernel[1], "{s}");
    }
}

/// `out = (in-1)*s - pb - pe + d*(k-1) + output_padding + 1`, evaluated by hand.
#[test]
fn conv_transpose2d_output_sizes() {
    let t = |input: [usize; 2],
             kernel: [usize; 2],
             stride: [usize; 2],
             padding: Padding,
             dilation: [usize; 2],
             output_padding: [usize; 2]| ConvTranspose2dSpec {
        batch: 1,
        in_channels: 4,
        out_channels: 6,
        input,
        kernel,
        stride,
        padding,
        dilation,
        groups: 2,
        output_padding,
    };
    let cases = [
        // 6*2 - 2 + 2 + 1 + 1 = 14 (DESIGN's T2)
        (t([7, 7], [3, 3], [2, 2], Padding::uniform(1), [1, 1], [1, 1]), [14, 14]),
        // 13*2 - 2 + 3 + 0 + 1 = 28 (T1)
        (t([14, 14], [4, 4], [2, 2], Padding::uniform(1), [1, 1], [0, 0]), [28, 28]),
        // H: 2*3 - 1 - 0 + 2 + 2 + 1 = 10; W: 3*2 - 0 - 2 + 2*1 + 1 + 1 = 8
        (t([3, 4], [3, 2], [3, 2], Padding { top: 1, bottom: 0, left: 0, right: 2 }, [1, 2], [2, 1]), [10, 8]),
        // output_padding 1 allowed by dilation 2 > stride 1: 4 - 0 + 4 + 1 + 1 = 10
        (t([5, 5], [3, 3], [1, 1], Padding::ZERO, [2, 2], [1, 0]), [10, 9]),
        // 1x1 input, 1x1 kernel: 1
        (t([1, 1], [1, 1], [1, 1], Padding::ZERO, [1, 1], [0, 0]), [1, 1]),
        // stride 3 > kernel 2: 3*3 + 1 + 1 = 11
        (t([4, 4], [2, 2], [3, 3], Padding::ZERO, [1, 1], [0, 0]), [11, 11]),
    ];
    for (s, want) in cases {
        assert_eq!(s.output().unwrap(), want, "{s}");
        assert_eq!(s.output_len().unwrap(), 6 * want[0] * want[1], "{s}");
        assert_eq!(s.weight_len().unwrap(), 4 * 3 * s.kernel[0] * s.kernel[1], "{s}");
    }
}

fn pspec(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: (usize, usize),
    dilation: usize,
    ceil_mode: bool,
) -> Pool2dSpec {
    Pool2dSpec {
        batch: 1,
        channels: 1,
        input: [input, input],
        kernel: [kernel, kernel],
        stride: [stride, stride],
        padding: Padding { top: pad.0, bottom: pad.1, left: pad.0, right: pad.1 },
        dilation: [dilation, dilation],
        ceil_mode,
        count_include_pad: true,
    }
}

/// Pooling sizes: floor mode, ceil mode `ceil((in + pb + pe - d*(k-1) - 1) / s) + 1`, and
/// PyTorch's rule that drops a last window starting at or beyond `in + pb`.
#[test]
fn pool_output_sizes_ceil_mode() {
    let cases = [
        // in 5, k 2, s 2: floor (3/2)+1 = 2; ceil ceil(3/2)+1 = 3 (last start 4 < 5, kept)
        (5, 2, 2, (0, 0), 1, 2, 3),
        // in 6, k 3, s 3, pad 1: floor (5/3)+1 = 2; ceil ceil(5/3)+1 = 3, last start 6 < 6+1 kept
        (6, 3, 3, (1, 1), 1, 2, 3),
        // in 5, k 2, s 2, pad 1: floor (5/2)+1 = 3; ceil ceil(5/2)+1 = 4, but the last
        // window would start at 3*2 = 6 >= 5+1: dropped, 3
        (5, 2, 2, (1, 1), 1, 3, 3),
        // in 2, k 1, s 2: ceil ceil(1/2)+1 = 2, last start 2 >= 2: dropped, 1
        (2, 1, 2, (0, 0), 1, 1, 1),
        // in 4, k 3, s 2, pad 1: floor (3/2)+1 = 2; ceil 3 (last start 4 < 5)
        (4, 3, 2, (1, 1), 1, 2, 3),
        // in 8, k 3, s 2: floor (5/2)+1 = 3; ceil 4 (last start 6 < 8)
        (8, 3, 2, (0, 0), 1, 3, 4),
        // dilation 2, k 3 (extent 5), in 7, s 1: 3 either way
        (7, 3, 1, (0, 0), 2, 3, 3),
        // asymmetric padding 1/0, in 5, k 3, s 2: floor (3/2)+1 = 2; ceil 3 (start 4 < 6)
        (5, 3, 2, (1, 0), 1, 2, 3),
        // the DESIGN's P2: in 112, k 3, s 2, pad 1: (111/2)+1 = 56; ceil 57 (start 112 < 113)
        (112, 3, 2, (1, 1), 1, 56, 57),
    ];
    for (input, k, s, pad, d, floor_out, ceil_out) in cases {
        let f = pspec(input, k, s, pad, d, false);
        let c = pspec(input, k, s, pad, d, true);
        assert_eq!(f.output().unwrap(), [floor_out, floor_out], "{f}");
        assert_eq!(c.output().unwrap(), [ceil_out, ceil_out], "{c}");
        assert_eq!(c.output_len().unwrap(), ceil_out * ceil_out, "{c}");
    }
}

fn avg(s: &Pool2dSpec, x: &[f32]) -> [Vec<f32>; 2] {
    let mut fast = vec![f32::NAN; s.output_len().unwrap()];
    let mut oracle = vec![f32::NAN; fast.len()];
    sverka::avg_pool2d(s, x, &mut fast).unwrap();
    r::avg_pool2d(s, x, &mut oracle).unwrap();
    [fast, oracle]
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * w.abs().max(1.0), "{what}[{i}]: got {g}, expected {w}");
    }
}

/// 3x3 input 1..9, k 2, s 2, padding 1 -> 2x2. Windows: (0,0) sees only x[0,0] = 1;
/// (0,1) sees 2 + 3; (1,0) sees 4 + 7; (1,1) sees 5 + 6 + 8 + 9. count_include_pad divides
/// by 4 always; otherwise by the number of real elements.
#[test]
fn avg_pool_count_include_pad_padded_corner() {
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut s = pspec(3, 2, 2, (1, 1), 1, false);
    s.count_include_pad = true;
    for y in avg(&s, &x) {
        assert_close(&y, &[0.25, 1.25, 2.75, 7.0], 1e-6, &s.to_string());
    }
    s.count_include_pad = false;
    for y in avg(&s, &x) {
        assert_close(&y, &[1.0, 2.5, 5.5, 7.0], 1e-6, &s.to_string());
    }
}

/// ceil_mode windows that hang past the padded input: PyTorch's divisor with
/// count_include_pad is clipped to the padded input (`min(start + k, in + pad)`), not k*k.
/// 4x4 ones, k 3, s 2, pad 1, ceil -> 3x3 (window starts -1, 1, 3). Per axis, real
/// elements [2, 3, 1] and elements inside the padded input [3, 3, 2].
#[test]
fn avg_pool_ceil_mode_divisors() {
    let x = vec![1.0f32; 16];
    let mut s = pspec(4, 3, 2, (1, 1), 1, true);
    assert_eq!(s.output().unwrap(), [3, 3]);
    let (real, padded) = ([2.0f32, 3.0, 1.0], [3.0f32, 3.0, 2.0]);
    let want: Vec<f32> = (0..9).map(|i| real[i / 3] * real[i % 3] / (padded[i / 3] * padded[i % 3])).collect();
    assert_close(
        &want,
        &[4. / 9., 6. / 9., 2. / 6., 6. / 9., 1.0, 3. / 6., 2. / 6., 3. / 6., 1. / 4.],
        1e-7,
        "hand values",
    );
    for y in avg(&s, &x) {
        assert_close(&y, &want, 1e-6, &s.to_string());
    }
    s.count_include_pad = false;
    for y in avg(&s, &x) {
        assert_close(&y, &[1.0; 9], 1e-6, &s.to_string());
    }
    // No padding: 5x5 ramp, k 2, s 2, ceil -> 3x3; the last window sees one column/row
    // and is divided by what it sees in both modes: (0,2) = (4 + 9) / 2, (2,2) = 24 / 1.
    let ramp: Vec<f32> = (0..25).map(|v| v as f32).collect();
    for include in [true, false] {
        let mut s = pspec(5, 2, 2, (0, 0), 1, true);
        s.count_include_pad = include;
        for y in avg(&s, &ramp) {
            assert_close(&y, &[3.0, 5.0, 6.5, 13.0, 15.0, 16.5, 20.5, 22.5, 24.0], 1e-6, &s.to_string());
        }
    }
}

/// Max pool 2x2/2 on a 4x4 ramp with a twist: outputs and PyTorch-style indices `h*W + w`.
#[test]
fn max_pool_values_and_indices() {
    let s = pspec(4, 2, 2, (0, 0), 1, false);
    let x = [
        1., 9., 2., 3., //
        4., 5., 8., 7., //
        6., 0., 1., 1., //
        2., 3., 4., 5.,
    ];
    for f in [sverka::max_pool2d as fn(&Pool2dSpec, &[f32], &mut [f32], Option<&mut [u32]>) -> _, r::max_pool2d] {
        let (mut y, mut ix) = (vec![0.0; 4], vec![0u32; 4]);
        f(&s, &x, &mut y, Some(&mut ix)).unwrap();
        assert_eq!(y, [9., 8., 6., 5.]);
        assert_eq!(ix, [1, 6, 8, 15]);
    }
    // Backward scatters into exactly those positions.
    let mut dx = vec![f32::NAN; 16];
    sverka::max_pool2d_backward(&s, &[1., 2., 3., 4.], &[1, 6, 8, 15], &mut dx).unwrap();
    let mut want = [0f32; 16];
    want[1] = 1.;
    want[6] = 2.;
    want[8] = 3.;
    want[15] = 4.;
    assert_eq!(dx, want);
}

/// Two images, two channels, 1x2 planes (4 values per channel). Layout NCHW:
/// channel 0 = {1, 2, 3, 4}: mean 2.5, biased var 1.25, unbiased 5/3;
/// channel 1 = {0, 0, 2, -2}: mean 0, biased var 2, unbiased 8/3.
/// Running stats start at mean [0, 1], var [1, 2]; momentum 0.1:
/// mean -> [0.9*0 + 0.1*2.5, 0.9*1 + 0.1*0] = [0.25, 0.9];
/// var  -> [0.9*1 + 0.1*5/3, 0.9*2 + 0.1*8/3] = [1.0666667, 2.0666667].
#[test]
fn batch_norm_train_running_stats() {
    let s = BatchNorm2dSpec::new(2, 2, [1, 2]);
    assert_eq!((s.eps, s.momentum), (1e-5, 0.1));
    let x = [1., 2., 0., 0., 3., 4., 2., -2.];
    let (gamma, beta) = ([1.0f32, 2.0], [0.0f32, 0.5]);
    type Train = fn(
        &BatchNorm2dSpec,
        &[f32],
        &[f32],
        &[f32],
        &mut [f32],
        &mut [f32],
        &mut [f32],
        &mut [f32],
        &mut [f32],
    ) -> Result<(), sverka::Error>;
    for (name, train) in
        [("public", sverka::batch_norm2d_train as Train), ("reference", r::batch_norm2d_train as Train)]
    {
        let (mut rm, mut rv) = (vec![0.0f32, 1.0], vec![1.0f32, 2.0]);
        let (mut y, mut sm, mut si) = (vec![f32::NAN; 8], vec![f32::NAN; 2], vec![f32::NAN; 2]);
        train(&s, &x, &gamma, &beta, &mut rm, &mut rv, &mut y, &mut sm, &mut si).unwrap();
        assert_close(&rm, &[0.25, 0.9], 1e-6, &format!("{name} running_mean"));
        assert_close(&rv, &[0.9 + 0.1 * 5.0 / 3.0, 1.8 + 0.1 * 8.0 / 3.0], 1e-6, &format!("{name} running_var"));
        assert_close(&sm, &[2.5, 0.0], 1e-6, &format!("{name} saved_mean"));
        let (i0, i1) = (1.0 / (1.25f64 + 1e-5).sqrt(), 1.0 / (2.0f64 + 1e-5).sqrt());
        assert_close(&si, &[i0 as f32, i1 as f32], 1e-6, &format!("{name} saved_invstd"));
        let want: Vec<f32> = [
            (1.0 - 2.5) * i0,
            (2.0 - 2.5) * i0,
            0.5,
            0.5,
            (3.0 - 2.5) * i0,
            (4.0 - 2.5) * i0,
            2.0 * 2.0 * i1 + 0.5,
            -2.0 * 2.0 * i1 + 0.5,
        ]
        .iter()
        .map(|&v| v as f32)
        .collect();
        assert_close(&y, &want, 1e-6, &format!("{name} output"));
        // A second step on the same batch compounds: mean 0.9*0.25 + 0.25 = 0.475,
        // var 0.9*1.0666667 + 0.1*5/3 = 1.1266667.
        train(&s, &x, &gamma, &beta, &mut rm, &mut rv, &mut y, &mut sm, &mut si).unwrap();
        assert_close(&rm, &[0.475, 0.81], 1e-6, &format!("{name} running_mean after 2 steps"));
        assert_close(
            &rv,
            &[0.9 * 1.0666667 + 0.1 * 5.0 / 3.0, 0.9 * 2.0666667 + 0.1 * 8.0 / 3.0],
            1e-6,
            &format!("{name} running_var after 2 steps"),
        );
    }
}

/// Eval: `y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta`, with
/// eps = 0 so every number is exact: channel 0 (mean 1, var 4): (x-1)/2*3 + 1;
/// channel 1 (mean -1, var 0.25): (x+1)*2*(-1) + 0.5.
#[test]
fn batch_norm_eval_formula() {
    let s = BatchNorm2dSpec { batch: 1, channels: 2, input: [1, 2], eps: 0.0, momentum: 0.1 };
    let x = [3., 5., 1., -1.];
    for f in [
        sverka::batch_norm2d_eval as fn(&BatchNorm2dSpec, &[f32], &[f32], &[f32], &[f32], &[f32], &mut [f32]) -> _,
        r::batch_norm2d_eval,
    ] {
        let mut y = vec![f32::NAN; 4];
        f(&s, &x, &[3., -1.], &[1., 0.5], &[1., -1.], &[4., 0.25], &mut y).unwrap();
        assert_close(&y, &[4., 7., -3.5, 0.5], 1e-6, "eval output");
    }
    // With the default eps the divisor is sqrt(4 + 1e-5).
    let s = BatchNorm2dSpec { eps: 1e-5, ..s };
    let mut y = vec![f32::NAN; 4];
    sverka::batch_norm2d_eval(&s, &x, &[1., 1.], &[0., 0.], &[1., -1.], &[4., 0.25], &mut y).unwrap();
    let want = [2.0 / (4.00001f64).sqrt(), 4.0 / (4.00001f64).sqrt(), 2.0 / (0.25001f64).sqrt(), 0.0];
    assert_close(&y, &want.map(|v| v as f32), 1e-6, "eval output, eps 1e-5");
}

fn dropout(s: &Dropout2dSpec, seed: u64, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut y = vec![f32::NAN; x.len()];
    let mut scale = vec![f32::NAN; s.scale_len().unwrap()];
    sverka::dropout2d(s, seed, x, &mut y, &mut scale).unwrap();
    (y, scale)
}

/// Dropout2d drops whole (n, c) planes: each plane is all zero or all `x / (1 - p)`;
/// over 2048 planes the dropped fraction is within 4 sigma of p; same seed, same mask;
/// another seed, another mask.
#[test]
fn dropout2d_drops_whole_channels() {
    let plane = 6;
    for p in [0.25f32, 0.5, 0.8] {
        let s = Dropout2dSpec { batch: 16, channels: 128, input: [2, 3], p };
        let x: Vec<f32> = (0..s.input_len().unwrap()).map(|i| 0.5 + (i % 7) as f32).collect();
        let (y, scale) = dropout(&s, 1234, &x);
        let keep = 1.0 / (1.0 - p);
        let mut dropped = 0;
        for k in 0..s.batch * s.channels {
            let ys = &y[k * plane..(k + 1) * plane];
            let xs = &x[k * plane..(k + 1) * plane];
            if scale[k] == 0.0 {
                dropped += 1;
                assert!(ys.iter().all(|&v| v == 0.0), "p {p}: plane {k} dropped but not all zero: {ys:?}");
            } else {
                assert!(
                    (scale[k] - keep).abs() <= 1e-6 * keep,
                    "p {p}: plane {k} scale {} != 1/(1-p) = {keep}",
                    scale[k]
                );
                for (a, b) in ys.iter().zip(xs) {
                    assert!((a - b * keep).abs() <= 1e-6 * (b * keep).abs(), "p {p}: plane {k}: {a} != {b} / (1 - p)");
                }
            }
        }
        let n = (s.batch * s.channels) as f64;
        let frac = dropped as f64 / n;
        let sigma = (p as f64 * (1.0 - p as f64) / n).sqrt();
        assert!((frac - p as f64).abs() <= 4.0 * sigma, "p {p}: dropped fraction {frac} (sigma {sigma})");
        let (y2, scale2) = dropout(&s, 1234, &x);
        assert_eq!((y2, scale2), (y.clone(), scale.clone()), "p {p}: same seed must give the same mask");
        let (_, scale3) = dropout(&s, 4321, &x);
        assert_ne!(scale3, scale, "p {p}: another seed should give another mask");
        // The reference draws the same mask.
        let (mut wy, mut wscale) = (vec![0.0; x.len()], vec![0.0; scale.len()]);
        r::dropout2d(&s, 1234, &x, &mut wy, &mut wscale).unwrap();
        assert_eq!(wscale, scale, "p {p}: reference mask");
    }
}

/// p = 0 is the identity (scale 1), p = 1 zeroes everything (scale 0, no division by 0).
#[test]
fn dropout2d_edge_probabilities() {
    let s = Dropout2dSpec { batch: 3, channels: 5, input: [4, 4], p: 0.0 };
    let x: Vec<f32> = (0..s.input_len().unwrap()).map(|i| i as f32 - 100.0).collect();
    let (y, scale) = dropout(&s, 7, &x);
    assert_eq!(y, x, "p = 0 is the identity");
    assert!(scale.iter().all(|&v| v == 1.0), "p = 0: scales {scale:?}");
    let s = Dropout2dSpec { p: 1.0, ..s };
    let (y, scale) = dropout(&s, 7, &x);
    assert!(y.iter().all(|&v| v == 0.0), "p = 1 zeroes everything");
    assert!(scale.iter().all(|&v| v == 0.0), "p = 1: scales {scale:?}");
    let mut dx = vec![f32::NAN; x.len()];
    sverka::dropout2d_backward(&s, &x, &scale, &mut dx).unwrap();
    assert!(dx.iter().all(|&v| v == 0.0), "p = 1: gradient is zero");
}

/// PyTorch's ceil_mode lets the window be larger than the whole (padded) input:
/// in 3, k 4, s 3: ceil: div_rtn(3 - 3 - 1 + 2, 3) + 1 = 1 (start 0 < 3 kept); floor:
/// div_rtn(3 - 3 - 1, 3) + 1 = 0, an empty output. The single window covers all 9 values;
/// with count_include_pad the divisor is clipped to the padded input (min(0 + 4, 3) = 3
/// per axis), so both modes divide by 9.
#[test]
fn pool_kernel_larger_than_input_in_ceil_mode() {
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let floor = pspec(3, 4, 3, (0, 0), 1, false);
    assert!(matches!(floor.output(), Err(sverka::Error::EmptyOutput { .. })), "{floor}: {:?}", floor.output());
    for include in [true, false] {
        let s = Pool2dSpec { count_include_pad: include, ..pspec(3, 4, 3, (0, 0), 1, true) };
        assert_eq!(s.output().unwrap(), [1, 1], "{s}");
        for y in avg(&s, &x) {
            assert_close(&y, &[5.0], 1e-6, &s.to_string());
        }
        let (mut y, mut ix) = (vec![0.0; 1], vec![0u32; 1]);
        sverka::max_pool2d(&s, &x, &mut y, Some(&mut ix)).unwrap();
        assert_eq!((y[0], ix[0]), (9.0, 8), "{s}");
    }
}
