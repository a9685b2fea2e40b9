//! Every `Error` variant reachable from the public ops: bad input gives `Err` (never a
//! panic, never a write into the outputs), the variant carries the parameter and the
//! numbers, and `to_string()` names them. Every check runs on the public function AND on
//! the reference (same signatures, same validation).
//!
//! Not reachable from the ops: `Alloc` (only when a workspace allocation fails, which a
//! test cannot provoke deterministically), `Format` and `Io` (files and checkpoints).

// Tables of the API's function pointers are the point of this file.
#![allow(clippy::type_complexity)]

use sverka::reference as r;
use sverka::{BatchNorm2dSpec, Conv2dSpec, ConvTranspose2dSpec, Dropout2dSpec, Error, Padding, Pool2dSpec};

type Res = Result<(), Error>;

/// The whole functional API as function pointers, so one test body checks both
/// implementations.
struct Api {
    name: &'static str,
    conv2d: fn(&Conv2dSpec, &[f32], &[f32], Option<&[f32]>, &mut [f32]) -> Res,
    conv2d_backward_input: fn(&Conv2dSpec, &[f32], &[f32], &mut [f32]) -> Res,
    conv2d_backward_weight: fn(&Conv2dSpec, &[f32], &[f32], &mut [f32], Option<&mut [f32]>) -> Res,
    conv_transpose2d: fn(&ConvTranspose2dSpec, &[f32], &[f32], Option<&[f32]>, &mut [f32]) -> Res,
    conv_transpose2d_backward_input: fn(&ConvTranspose2dSpec, &[f32], &[f32], &mut [f32]) -> Res,
    conv_transpose2d_backward_weight: fn(&ConvTranspose2dSpec, &[f32], &[f32], &mut [f32], Option<&mut [f32]>) -> Res,
    max_pool2d: fn(&Pool2dSpec, &[f32], &mut [f32], Option<&mut [u32]>) -> Res,
    max_pool2d_backward: fn(&Pool2dSpec, &[f32], &[u32], &mut [f32]) -> Res,
    avg_pool2d: fn(&Pool2dSpec, &[f32], &mut [f32]) -> Res,
    avg_pool2d_backward: fn(&Pool2dSpec, &[f32], &mut [f32]) -> Res,
    batch_norm2d_train:
        fn(&BatchNorm2dSpec, &[f32], &[f32], &[f32], &mut [f32], &mut [f32], &mut [f32], &mut [f32], &mut [f32]) -> Res,
    batch_norm2d_eval: fn(&BatchNorm2dSpec, &[f32], &[f32], &[f32], &[f32], &[f32], &mut [f32]) -> Res,
    batch_norm2d_backward:
        fn(&BatchNorm2dSpec, &[f32], &[f32], &[f32], &[f32], &[f32], &mut [f32], &mut [f32], &mut [f32]) -> Res,
    dropout2d: fn(&Dropout2dSpec, u64, &[f32], &mut [f32], &mut [f32]) -> Res,
    dropout2d_backward: fn(&Dropout2dSpec, &[f32], &[f32], &mut [f32]) -> Res,
}

const APIS: [Api; 2] = [
    Api {
        name: "public",
        conv2d: sverka::conv2d,
        conv2d_backward_input: sverka::conv2d_backward_input,
        conv2d_backward_weight: sverka::conv2d_backward_weight,
        conv_transpose2d: sverka::conv_transpose2d,
        conv_transpose2d_backward_input: sverka::conv_transpose2d_backward_input,
        conv_transpose2d_backward_weight: sverka::conv_transpose2d_backward_weight,
        max_pool2d: sverka::max_pool2d,
        max_pool2d_backward: sverka::max_pool2d_backward,
        avg_pool2d: sverka::avg_pool2d,
        avg_pool2d_backward: sverka::avg_pool2d_backward,
        batch_norm2d_train: sverka::batch_norm2d_train,
        batch_norm2d_eval: sverka::batch_norm2d_eval,
        batch_norm2d_backward: sverka::batch_norm2d_backward,
        dropout2d: sverka::dropout2d,
        dropout2d_backward: sverka::dropout2d_backward,
    },
    Api {
        name: "reference",
        conv2d: r::conv2d,
        conv2d_backward_input: r::conv2d_backward_input,
        conv2d_backward_weight: r::conv2d_backward_weight,
        conv_transpose2d: r::conv_transpose2d,
        conv_transpose2d_backward_input: r::conv_transpose2d_backward_input,
        conv_transpose2d_backward_weight: r::conv_transpose2d_backward_weight,
        max_pool2d: r::max_pool2d,
        max_pool2d_backward: r::max_pool2d_backward,
        avg_pool2d: r::avg_pool2d,
        avg_pool2d_backward: r::avg_pool2d_backward,
        batch_norm2d_train: r::batch_norm2d_train,
        batch_norm2d_eval: r::batch_norm2d_eval,
        batch_norm2d_backward: r::batch_norm2d_backward,
        dropout2d: r::dropout2d,
        dropout2d_backward: r::dropout2d_backward,
    },
];

/// Calls all three conv2d entry points of `api` with empty buffers (the spec is invalid,
/// so no buffer length can be right); returns `(function, result)`.
fn conv_calls(api: &Api, s: &Conv2dSpec) -> Vec<(String, Res)> {
    let mut out = [];
    vec![
        (format!("{} conv2d", api.name), (api.conv2d)(s, &[], &[], None, &mut out)),
        (format!("{} conv2d_backward_input", api.name), (api.conv2d_backward_input)(s, &[], &[], &mut out)),
        (format!("{} conv2d_backward_weight", api.name), (api.conv2d_backward_weight)(s, &[], &[], &mut out, None)),
    ]
}

fn conv_t_calls(api: &Api, s: &ConvTranspose2dSpec) -> Vec<(String, Res)> {
    let mut out = [];
    vec![
        (format!("{} conv_transpose2d", api.name), (api.conv_transpose2d)(s, &[], &[], None, &mut out)),
        (
            format!("{} conv_transpose2d_backward_input", api.name),
            (api.conv_transpose2d_backward_input)(s, &[], &[], &mut out),
        ),
        (
            format!("{} conv_transpose2d_backward_weight", api.name),
            (api.conv_transpose2d_backward_weight)(s, &[], &[], &mut out, None),
        ),
    ]
}

fn pool_calls(api: &Api, s: &Pool2dSpec) -> Vec<(String, Res)> {
    let mut out = [];
    vec![
        (format!("{} max_pool2d", api.name), (api.max_pool2d)(s, &[], &mut out, None)),
        (format!("{} max_pool2d_backward", api.name), (api.max_pool2d_backward)(s, &[], &[], &mut out)),
        (format!("{} avg_pool2d", api.name), (api.avg_pool2d)(s, &[], &mut out)),
        (format!("{} avg_pool2d_backward", api.name), (api.avg_pool2d_backward)(s, &[], &mut out)),
    ]
}

/// BatchNorm calls with correctly sized per-channel buffers (when the channel count is
/// small) and empty activations.
fn bn_calls(api: &Api, s: &BatchNorm2dSpec) -> Vec<(String, Res)> {
    let c = if s.channels <= 64 { s.channels } else { 0 };
    let (p, mut q, mut t, mut u, mut v) = (vec![1.0; c], vec![0.0; c], vec![1.0; c], vec![0.0; c], vec![0.0; c]);
    let mut out = [];
    let mut out2 = [];
    vec![
        (
            format!("{} batch_norm2d_train", api.name),
            (api.batch_norm2d_train)(s, &[], &p, &p, &mut q, &mut t, &mut out, &mut u, &mut v),
        ),
        (format!("{} batch_norm2d_eval", api.name), (api.batch_norm2d_eval)(s, &[], &p, &p, &p, &p, &mut out)),
        (
            format!("{} batch_norm2d_backward", api.name),
            (api.batch_norm2d_backward)(s, &[], &[], &p, &p, &p, &mut out2, &mut u, &mut v),
        ),
    ]
}

fn dropout_calls(api: &Api, s: &Dropout2dSpec) -> Vec<(String, Res)> {
    let (mut out, mut sc) = ([], []);
    vec![
        (format!("{} dropout2d", api.name), (api.dropout2d)(s, 1, &[], &mut out, &mut sc)),
        (format!("{} dropout2d_backward", api.name), (api.dropout2d_backward)(s, &[], &[], &mut out)),
    ]
}

/// Asserts every call failed with an error accepted by `ok`, whose message contains every
/// string of `words`.
fn expect_all(calls: Vec<(String, Res)>, ctx: &str, ok: impl Fn(&Error) -> bool, words: &[&str]) {
    assert!(!calls.is_empty());
    for (f, res) in calls {
        let e = match res {
            Ok(()) => panic!("{f} on {ctx}: expected an error, got Ok"),
            Err(e) => e,
        };
        assert!(ok(&e), "{f} on {ctx}: unexpected error {e:?}");
        let msg = e.to_string();
        for w in words {
            assert!(msg.contains(w), "{f} on {ctx}: message {msg:?} does not contain {w:?}");
        }
    }
}

fn conv() -> Conv2dSpec {
    Conv2dSpec {
        batch: 2,
        in_channels: 4,
        out_channels: 6,
        input: [5, 6],
        kernel: [3, 3],
        stride: [1, 1],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 2,
    }
}

fn conv_t() -> ConvTranspose2dSpec {
    ConvTranspose2dSpec {
        batch: 2,
        in_channels: 4,
        out_channels: 6,
        input: [5, 6],
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 2,
        output_padding: [1, 0],
    }
}

fn pool() -> Pool2dSpec {
    Pool2dSpec {
        batch: 2,
        channels: 3,
        input: [6, 5],
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    }
}

fn bn() -> BatchNorm2dSpec {
    BatchNorm2dSpec::new(2, 3, [4, 5])
}

fn drop() -> Dropout2dSpec {
    Dropout2dSpec { batch: 2, channels: 3, input: [4, 5], p: 0.5 }
}

#[test]
fn valid_base_specs_are_accepted() {
    // Guards the tests below: each error comes from the one field they change.
    assert!(conv().output().is_ok() && conv_t().output().is_ok() && pool().output().is_ok());
    assert!(bn().input_len().is_ok() && drop().input_len().is_ok());
}

#[test]
fn zero_sizes() {
    let conv_fields: [(&str, fn(&mut Conv2dSpec)); 12] = [
        ("batch", |s| s.batch = 0),
        ("in_channels", |s| s.in_channels = 0),
        ("out_channels", |s| s.out_channels = 0),
        ("input[0]", |s| s.input[0] = 0),
        ("input[1]", |s| s.input[1] = 0),
        ("kernel[0]", |s| s.kernel[0] = 0),
        ("kernel[1]", |s| s.kernel[1] = 0),
        ("stride[0]", |s| s.stride[0] = 0),
        ("stride[1]", |s| s.stride[1] = 0),
        ("dilation[0]", |s| s.dilation[0] = 0),
        ("dilation[1]", |s| s.dilation[1] = 0),
        ("groups", |s| s.groups = 0),
    ];
    for api in &APIS {
        for (param, set) in conv_fields {
            let mut s = conv();
            set(&mut s);
            assert!(matches!(s.output(), Err(Error::Zero { param: p }) if p == param), "{s}: output()");
            expect_all(
                conv_calls(api, &s),
                &s.to_string(),
                |e| matches!(e, Error::Zero { param: p } if *p == param),
                &[param],
            );
            let mut t = conv_t();
            t.batch = s.batch;
            t.in_channels = s.in_channels;
            t.out_channels = s.out_channels;
            t.input = s.input;
            t.kernel = s.kernel;
            t.stride = if s.stride[0] == 0 || s.stride[1] == 0 { s.stride } else { t.stride };
            t.dilation = s.dilation;
            t.groups = s.groups;
            expect_all(
                conv_t_calls(api, &t),
                &t.to_string(),
                |e| matches!(e, Error::Zero { param: p } if *p == param),
                &[param],
            );
        }
        let pool_fields: [(&str, fn(&mut Pool2dSpec)); 10] = [
            ("batch", |s| s.batch = 0),
            ("channels", |s| s.channels = 0),
            ("input[0]", |s| s.input[0] = 0),
            ("input[1]", |s| s.input[1] = 0),
            ("kernel[0]", |s| s.kernel[0] = 0),
            ("kernel[1]", |s| s.kernel[1] = 0),
            ("stride[0]", |s| s.stride[0] = 0),
            ("stride[1]", |s| s.stride[1] = 0),
            ("dilation[0]", |s| s.dilation[0] = 0),
            ("dilation[1]", |s| s.dilation[1] = 0),
        ];
        for (param, set) in pool_fields {
            let mut s = pool();
            if param.starts_with("kernel") {
                s.padding = Padding::ZERO; // padding <= kernel/2 is checked per axis
            }
            set(&mut s);
            expect_all(
                pool_calls(api, &s),
                &s.to_string(),
                |e| matches!(e, Error::Zero { param: p } if *p == param),
                &[param],
            );
        }
        let chan_fields: [(&str, fn(&mut usize, &mut usize, &mut [usize; 2])); 4] = [
            ("batch", |b, _, _| *b = 0),
            ("channels", |_, c, _| *c = 0),
            ("input[0]", |_, _, i| i[0] = 0),
            ("input[1]", |_, _, i| i[1] = 0),
        ];
        for (param, set) in chan_fields {
            let mut b = bn();
            set(&mut b.batch, &mut b.channels, &mut b.input);
            expect_all(
                bn_calls(api, &b),
                &format!("{b:?}"),
                |e| matches!(e, Error::Zero { param: p } if *p == param),
                &[param],
            );
            let mut d = drop();
            set(&mut d.batch, &mut d.channels, &mut d.input);
            expect_all(
                dropout_calls(api, &d),
                &format!("{d:?}"),
                |e| matches!(e, Error::Zero { param: p } if *p == param),
                &[param],
            );
        }
    }
}

#[test]
fn groups_not_dividing_channels() {
    for api in &APIS {
        let s = Conv2dSpec { in_channels: 5, groups: 2, out_channels: 4, ..conv() };
        let want = |e: &Error| matches!(e, Error::Groups { param: "in_channels", channels: 5, groups: 2 });
        assert!(matches!(s.output(), Err(ref e) if want(e)));
        expect_all(conv_calls(api, &s), &s.to_string(), want, &["in_channels", "5", "groups = 2"]);
        let s = Conv2dSpec { in_channels: 6, out_channels: 4, groups: 3, ..conv() };
        expect_all(
            conv_calls(api, &s),
            &s.to_string(),
            |e| matches!(e, Error::Groups { param: "out_channels", channels: 4, groups: 3 }),
            &["out_channels", "4", "3"],
        );
        let t = ConvTranspose2dSpec { in_channels: 6, out_channels: 9, groups: 4, ..conv_t() };
        expect_all(
            conv_t_calls(api, &t),
            &t.to_string(),
            |e| matches!(e, Error::Groups { param: "in_channels", channels: 6, groups: 4 }),
            &["in_channels", "6", "4"],
        );
        let t = ConvTranspose2dSpec { in_channels: 6, out_channels: 9, groups: 6, ..conv_t() };
        expect_all(
            conv_t_calls(api, &t),
            &t.to_string(),
            |e| matches!(e, Error::Groups { param: "out_channels", channels: 9, groups: 6 }),
            &["out_channels", "9", "6"],
        );
    }
}

#[test]
fn empty_output() {
    for api in &APIS {
        // height: 2 rows, no padding, 3-row kernel
        let s = Conv2dSpec { input: [2, 6], padding: Padding::ZERO, ..conv() };
        let want = |e: &Error| matches!(e, Error::EmptyOutput { axis: "height", padded_input: 2, kernel_extent: 3 });
        assert!(matches!(s.output(), Err(ref e) if want(e)));
        expect_all(conv_calls(api, &s), &s.to_string(), want, &["height", "2", "3"]);
        // width: 6 + 1 + 0 padded columns, dilated extent 3*(3-1)+1 = 7 fits; 4 does not
        let s = Conv2dSpec {
            input: [5, 4],
            padding: Padding { top: 1, bottom: 1, left: 1, right: 0 },
            dilation: [1, 3],
            ..conv()
        };
        expect_all(
            conv_calls(api, &s),
            &s.to_string(),
            |e| matches!(e, Error::EmptyOutput { axis: "width", padded_input: 5, kernel_extent: 7 }),
            &["width", "5", "7"],
        );
        // transposed: full output (1-1)*1 + 1 + 0 = 1 row, padding 1 + 1 removes more than that
        let t = ConvTranspose2dSpec {
            input: [1, 3],
            kernel: [1, 1],
            stride: [1, 1],
            padding: Padding::symmetric(1, 0),
            output_padding: [0, 0],
            ..conv_t()
        };
        expect_all(
            conv_t_calls(api, &t),
            &t.to_string(),
            |e| matches!(e, Error::EmptyOutput { axis: "height", .. }),
            &["height"],
        );
        // transposed: padding usize::MAX (found in review: `pads + 1` in the error
        // overflowed, a panic in debug builds; the extent saturates)
        let t = ConvTranspose2dSpec { padding: Padding { top: usize::MAX, ..Padding::ZERO }, ..t };
        expect_all(
            conv_t_calls(api, &t),
            &t.to_string(),
            |e| matches!(e, Error::EmptyOutput { axis: "height", kernel_extent: usize::MAX, .. }),
            &["height"],
        );
        // pooling: 1 column + 2 padding < kernel 5
        let p = Pool2dSpec { input: [6, 1], kernel: [3, 5], padding: Padding::uniform(1), ..pool() };
        expect_all(
            pool_calls(api, &p),
            &p.to_string(),
            |e| matches!(e, Error::EmptyOutput { axis: "width", padded_input: 3, kernel_extent: 5 }),
            &["width", "3", "5"],
        );
    }
}

#[test]
fn pool_padding_over_half_kernel() {
    for api in &APIS {
        for (side, set) in [
            ("padding.top", (|p: &mut Padding| p.top = 2) as fn(&mut Padding)),
            ("padding.bottom", |p| p.bottom = 2),
            ("padding.left", |p| p.left = 2),
            ("padding.right", |p| p.right = 2),
        ] {
            let mut s = pool();
            set(&mut s.padding);
            let want = |e: &Error| matches!(e, Error::PoolPadding { param, padding: 2, kernel: 3 } if *param == side);
            assert!(matches!(s.output(), Err(ref e) if want(e)), "{s}");
            expect_all(pool_calls(api, &s), &s.to_string(), want, &[side, "2", "3"]);
        }
    }
}

/// Dilation 3 over a 2-row input with padding 1: window 0 taps rows -1 and 2, both
/// outside the input, so the max/avg of that window is undefined.
#[test]
fn pool_empty_window() {
    for api in &APIS {
        let s = Pool2dSpec {
            input: [2, 5],
            kernel: [2, 3],
            stride: [1, 1],
            padding: Padding::uniform(1),
            dilation: [3, 1],
            ..pool()
        };
        let want = |e: &Error| matches!(e, Error::EmptyWindow { axis: "height", index: 0 });
        assert!(matches!(s.output(), Err(ref e) if want(e)), "{s}: {:?}", s.output());
        expect_all(pool_calls(api, &s), &s.to_string(), want, &["height", "0"]);
    }
}

#[test]
fn output_padding_too_large() {
    for api in &APIS {
        let t = ConvTranspose2dSpec { stride: [2, 2], dilation: [1, 1], output_padding: [2, 0], ..conv_t() };
        let want =
            |e: &Error| matches!(e, Error::OutputPadding { param: "output_padding[0]", output_padding: 2, limit: 2 });
        assert!(matches!(t.output(), Err(ref e) if want(e)));
        expect_all(conv_t_calls(api, &t), &t.to_string(), want, &["output_padding[0]", "2"]);
        // dilation raises the limit to max(stride, dilation) = 3; 3 itself is rejected
        let t = ConvTranspose2dSpec { stride: [2, 1], dilation: [1, 3], output_padding: [1, 3], ..conv_t() };
        expect_all(
            conv_t_calls(api, &t),
            &t.to_string(),
            |e| matches!(e, Error::OutputPadding { param: "output_padding[1]", output_padding: 3, limit: 3 }),
            &["output_padding[1]", "3"],
        );
        let ok = ConvTranspose2dSpec { output_padding: [1, 2], ..t };
        assert!(ok.output().is_ok(), "{ok}: output_padding below max(stride, dilation) is valid");
    }
}

#[test]
fn dropout_p_outside_unit_interval() {
    for api in &APIS {
        for p in [-0.1f32, 1.5, f32::NAN, f32::INFINITY, -0.0 - 1e-7] {
            let d = Dropout2dSpec { p, ..drop() };
            expect_all(
                dropout_calls(api, &d),
                &format!("{d:?}"),
                |e| matches!(e, Error::Value { param: "p", value, .. } if value.to_bits() == (p as f64).to_bits() || (value.is_nan() && p.is_nan())),
                &["p = ", "[0, 1]"],
            );
        }
        for p in [0.0f32, 1.0] {
            let d = Dropout2dSpec { p, ..drop() };
            assert!(d.input_len().is_ok(), "p = {p} is valid");
        }
    }
}

#[test]
fn batch_norm_bad_eps_momentum_and_single_value() {
    for api in &APIS {
        for eps in [f32::NAN, -1e-5, f32::INFINITY] {
            let b = BatchNorm2dSpec { eps, ..bn() };
            expect_all(
                bn_calls(api, &b),
                &format!("{b:?}"),
                |e| matches!(e, Error::Value { param: "eps", .. }),
                &["eps"],
            );
        }
        for momentum in [f32::NAN, -0.1, 1.5] {
            let b = BatchNorm2dSpec { momentum, ..bn() };
            expect_all(
                bn_calls(api, &b),
                &format!("{b:?}"),
                |e| matches!(e, Error::Value { param: "momentum", .. }),
                &["momentum"],
            );
        }
        // Training needs at least 2 values per channel (unbiased variance), as in PyTorch.
        let b = BatchNorm2dSpec::new(1, 3, [1, 1]);
        let c = vec![0.0; 3];
        let (mut q, mut t, mut u, mut v, mut y) = (c.clone(), vec![1.0; 3], c.clone(), c.clone(), c.clone());
        let res = (api.batch_norm2d_train)(&b, &c, &c, &c, &mut q, &mut t, &mut y, &mut u, &mut v);
        assert!(matches!(res, Err(Error::Value { value: 1.0, .. })), "{} {b:?}: {res:?}", api.name);
        assert!(res.unwrap_err().to_string().contains('1'));
        assert_eq!((q, t, y), (c.clone(), vec![1.0; 3], c.clone()), "{}: nothing written on error", api.name);
        // ...while eval on a single value is fine.
        let mut y = vec![0.0; 3];
        (api.batch_norm2d_eval)(&b, &c, &c, &c, &c, &[1.0; 3], &mut y).unwrap();
    }
}

#[test]
fn max_pool_backward_index_outside_plane() {
    let s = pool();
    let [oh, ow] = s.output().unwrap();
    let plane = s.input[0] * s.input[1];
    let n = s.output_len().unwrap();
    let dy = vec![1.0; n];
    for api in &APIS {
        for (pos, bad) in [(0, plane as u32), (n - 1, u32::MAX), (oh * ow + 1, plane as u32 + 7)] {
            let mut ix = vec![0u32; n];
            ix[pos] = bad;
            let mut dx = vec![-1.0; s.input_len().unwrap()];
            let res = (api.max_pool2d_backward)(&s, &dy, &ix, &mut dx);
            assert!(
                matches!(res, Err(Error::Index { position, index, plane: p }) if position == pos && index == bad && p == plane),
                "{} {s}: {res:?}",
                api.name
            );
            let msg = res.unwrap_err().to_string();
            for w in [pos.to_string(), bad.to_string(), plane.to_string()] {
                assert!(msg.contains(&w), "{}: {msg:?} lacks {w}", api.name);
            }
        }
    }
}

/// Sizes whose products overflow `usize` (or pass `isize::MAX` bytes): `Err(Overflow)`
/// from the spec helpers and from every function, with empty buffers (nothing allocated).
#[test]
fn overflowing_sizes() {
    let half = usize::MAX / 2;
    let convs = [
        Conv2dSpec { batch: half, input: [1 << 20, 1 << 20], ..conv() },
        Conv2dSpec { batch: 1 << 62, in_channels: 2, out_channels: 2, groups: 1, input: [3, 3], ..conv() },
        Conv2dSpec { in_channels: half, out_channels: half, groups: 1, ..conv() },
        Conv2dSpec { dilation: [usize::MAX, 1], ..conv() },
        Conv2dSpec { padding: Padding { top: usize::MAX, ..Padding::ZERO }, ..conv() },
        Conv2dSpec { kernel: [1, half], padding: Padding { left: half, right: half, ..Padding::ZERO }, ..conv() },
    ];
    let transposed = [
        ConvTranspose2dSpec { stride: [half, 1], output_padding: [0, 0], ..conv_t() },
        ConvTranspose2dSpec { batch: half, input: [1 << 20, 1 << 20], ..conv_t() },
        ConvTranspose2dSpec { dilation: [usize::MAX, 1], output_padding: [0, 0], ..conv_t() },
        ConvTranspose2dSpec { padding: Padding { top: usize::MAX, bottom: 1, ..Padding::ZERO }, ..conv_t() },
    ];
    let pools = [
        Pool2dSpec { batch: half, channels: 4, ..pool() },
        Pool2dSpec { input: [1 << 40, 1 << 40], ..pool() },
        Pool2dSpec { dilation: [usize::MAX, 1], padding: Padding::ZERO, ..pool() },
    ];
    let bns = [BatchNorm2dSpec { batch: half, ..bn() }, BatchNorm2dSpec::new(1, 1, [1 << 40, 1 << 40])];
    let drops =
        [Dropout2dSpec { batch: half, channels: 3, ..drop() }, Dropout2dSpec { input: [usize::MAX, 2], ..drop() }];
    let is_overflow = |e: &Error| matches!(e, Error::Overflow { .. });
    for api in &APIS {
        for s in &convs {
            assert!(matches!(s.output_len(), Err(Error::Overflow { .. })), "{s}: {:?}", s.output_len());
            expect_all(conv_calls(api, s), &s.to_string(), is_overflow, &["overflow"]);
        }
        for t in &transposed {
            assert!(matches!(t.output_len(), Err(Error::Overflow { .. })), "{t}: {:?}", t.output_len());
            expect_all(conv_t_calls(api, t), &t.to_string(), is_overflow, &["overflow"]);
        }
        for p in &pools {
            assert!(matches!(p.output_len(), Err(Error::Overflow { .. })), "{p}: {:?}", p.output_len());
            expect_all(pool_calls(api, p), &p.to_string(), is_overflow, &["overflow"]);
        }
        for b in &bns {
            assert!(matches!(b.input_len(), Err(Error::Overflow { .. })), "{b:?}");
            expect_all(bn_calls(api, b), &format!("{b:?}"), is_overflow, &["overflow"]);
        }
        for d in &drops {
            assert!(matches!(d.input_len(), Err(Error::Overflow { .. })), "{d:?}");
            expect_all(dropout_calls(api, d), &format!("{d:?}"), is_overflow, &["overflow"]);
        }
    }
}

/// Asserts `res` is `Length { buffer, expected, actual }` and the message has all three.
fn expect_length(res: Res, ctx: &str, buffer: &str, expected: usize, actual: usize) {
    match res {
        Err(Error::Length { buffer: b, expected: e, actual: a }) if b == buffer && e == expected && a == actual => {
            let msg = Error::Length { buffer: b, expected: e, actual: a }.to_string();
            assert!(
                msg.contains(buffer) && msg.contains(&expected.to_string()) && msg.contains(&actual.to_string()),
                "{ctx}: {msg}"
            );
        }
        other => panic!(
            "{ctx}: expected Length {{ buffer: {buffer:?}, expected: {expected}, actual: {actual} }}, got {other:?}"
        ),
    }
}

/// Returns `v` with one element more (`grow`, a copy of the last one, so a sentinel-filled
/// output stays sentinel-filled) or fewer.
fn resized(v: &[f32], grow: bool) -> Vec<f32> {
    if grow { [v, &v[v.len() - 1..]].concat() } else { v[..v.len() - 1].to_vec() }
}

const SENTINEL: f32 = 12345.0;

/// Every buffer argument of every function, one at a time one element too long or too
/// short: `Err(Length)` naming that buffer, and the output buffers untouched.
#[test]
fn mismatched_slice_lengths() {
    let s = conv();
    let (xl, wl, yl, bl) = (s.input_len().unwrap(), s.weight_len().unwrap(), s.output_len().unwrap(), s.bias_len());
    let t = conv_t();
    let (txl, twl, tyl, tbl) = (t.input_len().unwrap(), t.weight_len().unwrap(), t.output_len().unwrap(), t.bias_len());
    let p = pool();
    let (pxl, pyl) = (p.input_len().unwrap(), p.output_len().unwrap());
    let b = bn();
    let (bxl, c) = (b.input_len().unwrap(), b.channels);
    let d = drop();
    let (dxl, dsl) = (d.input_len().unwrap(), d.scale_len().unwrap());
    for api in &APIS {
        for grow in [true, false] {
            let ctx = |f: &str, buf: &str| {
                format!("{} {f} with {buf} {}", api.name, if grow { "too long" } else { "too short" })
            };
            // conv2d(input, weight, bias, output)
            for (k, name) in ["input", "weight", "bias", "output"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; xl], vec![0.5; wl], vec![0.5; bl], vec![SENTINEL; yl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, w, bb, mut y] = bufs;
                expect_length((api.conv2d)(&s, &x, &w, Some(&bb), &mut y), &ctx("conv2d", name), name, want, actual);
                assert!(y.iter().all(|&v| v == SENTINEL), "{}: output written", ctx("conv2d", name));
            }
            // conv2d_backward_input(grad_output, weight, grad_input)
            for (k, name) in ["grad_output", "weight", "grad_input"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; yl], vec![0.5; wl], vec![SENTINEL; xl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [dy, w, mut dx] = bufs;
                expect_length(
                    (api.conv2d_backward_input)(&s, &dy, &w, &mut dx),
                    &ctx("conv2d_backward_input", name),
                    name,
                    want,
                    actual,
                );
                assert!(
                    dx.iter().all(|&v| v == SENTINEL),
                    "{}: grad_input written",
                    ctx("conv2d_backward_input", name)
                );
            }
            // conv2d_backward_weight(input, grad_output, grad_weight, grad_bias)
            for (k, name) in ["input", "grad_output", "grad_weight", "grad_bias"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; xl], vec![0.5; yl], vec![SENTINEL; wl], vec![SENTINEL; bl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, dy, mut dw, mut db] = bufs;
                expect_length(
                    (api.conv2d_backward_weight)(&s, &x, &dy, &mut dw, Some(&mut db)),
                    &ctx("conv2d_backward_weight", name),
                    name,
                    want,
                    actual,
                );
                assert!(
                    dw.iter().chain(&db).all(|&v| v == SENTINEL),
                    "{}: gradients written",
                    ctx("conv2d_backward_weight", name)
                );
            }
            // conv_transpose2d(input, weight, bias, output)
            for (k, name) in ["input", "weight", "bias", "output"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; txl], vec![0.5; twl], vec![0.5; tbl], vec![SENTINEL; tyl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, w, bb, mut y] = bufs;
                expect_length(
                    (api.conv_transpose2d)(&t, &x, &w, Some(&bb), &mut y),
                    &ctx("conv_transpose2d", name),
                    name,
                    want,
                    actual,
                );
                assert!(y.iter().all(|&v| v == SENTINEL), "{}: output written", ctx("conv_transpose2d", name));
            }
            // conv_transpose2d_backward_input(grad_output, weight, grad_input)
            for (k, name) in ["grad_output", "weight", "grad_input"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; tyl], vec![0.5; twl], vec![SENTINEL; txl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [dy, w, mut dx] = bufs;
                expect_length(
                    (api.conv_transpose2d_backward_input)(&t, &dy, &w, &mut dx),
                    &ctx("conv_transpose2d_backward_input", name),
                    name,
                    want,
                    actual,
                );
                assert!(dx.iter().all(|&v| v == SENTINEL));
            }
            // conv_transpose2d_backward_weight(input, grad_output, grad_weight, grad_bias)
            for (k, name) in ["input", "grad_output", "grad_weight", "grad_bias"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; txl], vec![0.5; tyl], vec![SENTINEL; twl], vec![SENTINEL; tbl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, dy, mut dw, mut db] = bufs;
                expect_length(
                    (api.conv_transpose2d_backward_weight)(&t, &x, &dy, &mut dw, Some(&mut db)),
                    &ctx("conv_transpose2d_backward_weight", name),
                    name,
                    want,
                    actual,
                );
                assert!(dw.iter().chain(&db).all(|&v| v == SENTINEL));
            }
            // max_pool2d(input, output, indices)
            for (k, name) in ["input", "output", "indices"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; pxl], vec![SENTINEL; pyl]];
                let mut ix = vec![7u32; pyl];
                let want = if k < 2 { bufs[k].len() } else { ix.len() };
                let actual = if k < 2 {
                    bufs[k] = resized(&bufs[k], grow);
                    bufs[k].len()
                } else {
                    if grow {
                        ix.push(7)
                    } else {
                        ix.pop();
                    }
                    ix.len()
                };
                let [x, mut y] = bufs;
                expect_length(
                    (api.max_pool2d)(&p, &x, &mut y, Some(&mut ix)),
                    &ctx("max_pool2d", name),
                    name,
                    want,
                    actual,
                );
                assert!(
                    y.iter().all(|&v| v == SENTINEL) && ix.iter().all(|&i| i == 7),
                    "{}: outputs written",
                    ctx("max_pool2d", name)
                );
            }
            // max_pool2d_backward(grad_output, indices, grad_input)
            for (k, name) in ["grad_output", "indices", "grad_input"].into_iter().enumerate() {
                let (mut dy, mut ix, mut dx) = (vec![0.5; pyl], vec![0u32; pyl], vec![SENTINEL; pxl]);
                let (want, actual) = match k {
                    0 => (dy.len(), {
                        dy = resized(&dy, grow);
                        dy.len()
                    }),
                    1 => (ix.len(), {
                        if grow {
                            ix.push(0)
                        } else {
                            ix.pop();
                        }
                        ix.len()
                    }),
                    _ => (dx.len(), {
                        dx = resized(&dx, grow);
                        dx.len()
                    }),
                };
                expect_length(
                    (api.max_pool2d_backward)(&p, &dy, &ix, &mut dx),
                    &ctx("max_pool2d_backward", name),
                    name,
                    want,
                    actual,
                );
                assert!(dx.iter().all(|&v| v == SENTINEL));
            }
            // avg_pool2d(input, output) and avg_pool2d_backward(grad_output, grad_input)
            for (k, name) in ["input", "output"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; pxl], vec![SENTINEL; pyl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, mut y] = bufs;
                expect_length((api.avg_pool2d)(&p, &x, &mut y), &ctx("avg_pool2d", name), name, want, actual);
                assert!(y.iter().all(|&v| v == SENTINEL));
            }
            for (k, name) in ["grad_output", "grad_input"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; pyl], vec![SENTINEL; pxl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [dy, mut dx] = bufs;
                expect_length(
                    (api.avg_pool2d_backward)(&p, &dy, &mut dx),
                    &ctx("avg_pool2d_backward", name),
                    name,
                    want,
                    actual,
                );
                assert!(dx.iter().all(|&v| v == SENTINEL));
            }
            // batch_norm2d_train(input, gamma, beta, running_mean, running_var, output, saved_mean, saved_invstd)
            let names =
                ["input", "gamma", "beta", "running_mean", "running_var", "output", "saved_mean", "saved_invstd"];
            for (k, name) in names.into_iter().enumerate() {
                let mut bufs = [
                    vec![0.5; bxl],
                    vec![1.0; c],
                    vec![0.0; c],
                    vec![SENTINEL; c],
                    vec![SENTINEL; c],
                    vec![SENTINEL; bxl],
                    vec![SENTINEL; c],
                    vec![SENTINEL; c],
                ];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, g, be, mut rm, mut rv, mut y, mut sm, mut si] = bufs;
                expect_length(
                    (api.batch_norm2d_train)(&b, &x, &g, &be, &mut rm, &mut rv, &mut y, &mut sm, &mut si),
                    &ctx("batch_norm2d_train", name),
                    name,
                    want,
                    actual,
                );
                assert!(
                    [rm, rv, y, sm, si].iter().flatten().all(|&v| v == SENTINEL),
                    "{}: outputs written",
                    ctx("batch_norm2d_train", name)
                );
            }
            // batch_norm2d_eval(input, gamma, beta, running_mean, running_var, output)
            for (k, name) in ["input", "gamma", "beta", "running_mean", "running_var", "output"].into_iter().enumerate()
            {
                let mut bufs =
                    [vec![0.5; bxl], vec![1.0; c], vec![0.0; c], vec![0.0; c], vec![1.0; c], vec![SENTINEL; bxl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, g, be, rm, rv, mut y] = bufs;
                expect_length(
                    (api.batch_norm2d_eval)(&b, &x, &g, &be, &rm, &rv, &mut y),
                    &ctx("batch_norm2d_eval", name),
                    name,
                    want,
                    actual,
                );
                assert!(y.iter().all(|&v| v == SENTINEL));
            }
            // batch_norm2d_backward(input, grad_output, gamma, saved_mean, saved_invstd, grad_input, grad_gamma, grad_beta)
            let names = [
                "input",
                "grad_output",
                "gamma",
                "saved_mean",
                "saved_invstd",
                "grad_input",
                "grad_gamma",
                "grad_beta",
            ];
            for (k, name) in names.into_iter().enumerate() {
                let mut bufs = [
                    vec![0.5; bxl],
                    vec![0.5; bxl],
                    vec![1.0; c],
                    vec![0.0; c],
                    vec![1.0; c],
                    vec![SENTINEL; bxl],
                    vec![SENTINEL; c],
                    vec![SENTINEL; c],
                ];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, dy, g, sm, si, mut dx, mut dg, mut db] = bufs;
                expect_length(
                    (api.batch_norm2d_backward)(&b, &x, &dy, &g, &sm, &si, &mut dx, &mut dg, &mut db),
                    &ctx("batch_norm2d_backward", name),
                    name,
                    want,
                    actual,
                );
                assert!([dx, dg, db].iter().flatten().all(|&v| v == SENTINEL));
            }
            // dropout2d(input, output, channel_scale)
            for (k, name) in ["input", "output", "channel_scale"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; dxl], vec![SENTINEL; dxl], vec![SENTINEL; dsl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [x, mut y, mut sc] = bufs;
                expect_length((api.dropout2d)(&d, 3, &x, &mut y, &mut sc), &ctx("dropout2d", name), name, want, actual);
                assert!(y.iter().chain(&sc).all(|&v| v == SENTINEL));
            }
            // dropout2d_backward(grad_output, channel_scale, grad_input)
            for (k, name) in ["grad_output", "channel_scale", "grad_input"].into_iter().enumerate() {
                let mut bufs = [vec![0.5; dxl], vec![2.0; dsl], vec![SENTINEL; dxl]];
                let want = bufs[k].len();
                bufs[k] = resized(&bufs[k], grow);
                let actual = bufs[k].len();
                let [dy, sc, mut dx] = bufs;
                expect_length(
                    (api.dropout2d_backward)(&d, &dy, &sc, &mut dx),
                    &ctx("dropout2d_backward", name),
                    name,
                    want,
                    actual,
                );
                assert!(dx.iter().all(|&v| v == SENTINEL));
            }
        }
    }
}

/// A huge but valid spec with tiny buffers: `Err(Length)` without allocating or touching
/// the (absent) data. The expected lengths are far beyond memory.
#[test]
fn huge_valid_spec_with_small_buffers() {
    let s = Conv2dSpec {
        batch: 1 << 20,
        in_channels: 1 << 10,
        out_channels: 1 << 10,
        groups: 1,
        input: [1 << 10, 1 << 10],
        kernel: [1, 1],
        padding: Padding::ZERO,
        ..conv()
    };
    let want_in = s.input_len().expect("fits in isize");
    for api in &APIS {
        let mut y = [0.0f32; 4];
        expect_length((api.conv2d)(&s, &[0.0; 4], &[0.0; 4], None, &mut y), api.name, "input", want_in, 4);
        let p = Pool2dSpec { batch: 1 << 20, channels: 1 << 10, input: [1 << 10, 1 << 10], ..pool() };
        expect_length((api.avg_pool2d)(&p, &[0.0; 4], &mut y), api.name, "input", p.input_len().unwrap(), 4);
    }
}
