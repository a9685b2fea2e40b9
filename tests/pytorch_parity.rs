//! Parity with PyTorch itself: `tests/data/pytorch_golden.txt` holds random small
//! problems of every op with the outputs and gradients PyTorch 2.15 computed for them
//! (written by `scripts/pytorch_golden.py`). Dropout2d is absent: its mask comes from a
//! different random stream by design.
//!
//! Tolerance per element: `|sverka - torch| <= 1e-4 * (1 + |torch|)`, far below any
//! semantic difference (a wrong tap, divisor or statistic moves results by O(1)) and above
//! the f32 rounding of both sides' different summation orders. Max pooling outputs and
//! indices must match exactly.

use std::collections::HashMap;

use sverka::*;

/// One case of the golden file: its op, spec fields and named tensors.
struct Case {
    op: String,
    fields: HashMap<String, String>,
    tensors: HashMap<String, Vec<f32>>,
}

impl Case {
    fn usize(&self, key: &str) -> usize {
        self.fields[key].parse().unwrap_or_else(|_| panic!("field {key}"))
    }
    fn pair(&self, key: &str) -> [usize; 2] {
        let v: Vec<usize> = self.fields[key].split(',').map(|v| v.parse().expect("number")).collect();
        [v[0], v[1]]
    }
    fn padding(&self) -> Padding {
        let p: Vec<usize> = self.fields["pad"].split(',').map(|v| v.parse().expect("number")).collect();
        Padding { top: p[0], bottom: p[1], left: p[2], right: p[3] }
    }
    fn t(&self, name: &str) -> &[f32] {
        &self.tensors[name]
    }
    fn describe(&self) -> String {
        let mut f: Vec<_> = self.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        f.sort();
        format!("{} {}", self.op, f.join(" "))
    }
}

fn load() -> Vec<Case> {
    let text = include_str!("data/pytorch_golden.txt");
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("case") => {
                let op = words.next().expect("op").to_string();
                let fields = words.map(|w| w.split_once('=').expect("key=value")).map(|(k, v)| (k.into(), v.into()));
                current = Some(Case { op, fields: fields.collect(), tensors: HashMap::new() });
            }
            Some("end") => cases.push(current.take().expect("case before end")),
            Some(name) => {
                let len: usize = words.next().expect("length").parse().expect("length");
                let values: Vec<f32> = words.map(|v| v.parse().expect("float")).collect();
                assert_eq!(values.len(), len, "{name}");
                current.as_mut().expect("case").tensors.insert(name.into(), values);
            }
            None => {}
        }
    }
    cases
}

fn assert_close(case: &Case, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{}: {what} length", case.describe());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{}: {what}[{i}] sverka {g} vs torch {w}", case.describe());
    }
}

/// The case's convolution spec fields (shared by both convolution ops).
fn conv_spec(c: &Case) -> Conv2dSpec {
    Conv2dSpec {
        batch: c.usize("n"),
        in_channels: c.usize("ci"),
        out_channels: c.usize("co"),
        input: [c.usize("ih"), c.usize("iw")],
        kernel: [c.usize("kh"), c.usize("kw")],
        stride: [c.usize("sh"), c.usize("sw")],
        padding: c.padding(),
        dilation: [c.usize("dh"), c.usize("dw")],
        groups: c.usize("g"),
    }
}

/// Runs one convolution family (forward, input gradient, weight and bias gradients) on the
/// case's tensors and compares every result with PyTorch's.
fn check_conv_family(
    c: &Case,
    output_len: usize,
    forward: impl Fn(&[f32], &[f32], Option<&[f32]>, &mut [f32]) -> Result<(), Error>,
    backward_input: impl Fn(&[f32], &[f32], &mut [f32]) -> Result<(), Error>,
    backward_weight: impl Fn(&[f32], &[f32], &mut [f32], Option<&mut [f32]>) -> Result<(), Error>,
) {
    let (x, w, b, dy) = (c.t("input"), c.t("weight"), c.t("bias"), c.t("grad_output"));
    let mut y = vec![f32::NAN; output_len];
    forward(x, w, Some(b), &mut y).unwrap();
    assert_close(c, "output", &y, c.t("output"));
    let mut dx = vec![f32::NAN; x.len()];
    backward_input(dy, w, &mut dx).unwrap();
    assert_close(c, "grad_input", &dx, c.t("grad_input"));
    let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; b.len()]);
    backward_weight(x, dy, &mut dw, Some(&mut db)).unwrap();
    assert_close(c, "grad_weight", &dw, c.t("grad_weight"));
    assert_close(c, "grad_bias", &db, c.t("grad_bias"));
}

fn conv_case(c: &Case) {
    let s = conv_spec(c);
    check_conv_family(
        c,
        s.output_len().unwrap(),
        |x, w, b, y| conv2d(&s, x, w, b, y),
        |dy, w, dx| conv2d_backward_input(&s, dy, w, dx),
        |x, dy, dw, db| conv2d_backward_weight(&s, x, dy, dw, db),
    );
}

fn conv_transpose_case(c: &Case) {
    let k = conv_spec(c);
    let s = ConvTranspose2dSpec {
        batch: k.batch,
        in_channels: k.in_channels,
        out_channels: k.out_channels,
        input: k.input,
        kernel: k.kernel,
        stride: k.stride,
        padding: k.padding,
        dilation: k.dilation,
        groups: k.groups,
        output_padding: c.pair("op"),
    };
    check_conv_family(
        c,
        s.output_len().unwrap(),
        |x, w, b, y| conv_transpose2d(&s, x, w, b, y),
        |dy, w, dx| conv_transpose2d_backward_input(&s, dy, w, dx),
        |x, dy, dw, db| conv_transpose2d_backward_weight(&s, x, dy, dw, db),
    );
}

fn pool_spec(c: &Case) -> Pool2dSpec {
    Pool2dSpec {
        batch: c.usize("n"),
        channels: c.usize("c"),
        input: [c.usize("ih"), c.usize("iw")],
        kernel: [c.usize("kh"), c.usize("kw")],
        stride: [c.usize("sh"), c.usize("sw")],
        padding: c.padding(),
        dilation: [c.usize("dh"), c.usize("dw")],
        ceil_mode: c.usize("ceil") == 1,
        count_include_pad: c.usize("cip") == 1,
    }
}

fn max_pool_case(c: &Case) {
    let spec = pool_spec(c);
    let (x, dy) = (c.t("input"), c.t("grad_output"));
    let mut y = vec![f32::NAN; spec.output_len().unwrap()];
    let mut ix = vec![u32::MAX; y.len()];
    max_pool2d(&spec, x, &mut y, Some(&mut ix)).unwrap();
    assert_eq!(y, c.t("output"), "{}: output", c.describe());
    let want_ix: Vec<u32> = c.t("indices").iter().map(|&v| v as u32).collect();
    assert_eq!(ix, want_ix, "{}: indices", c.describe());
    let mut dx = vec![f32::NAN; x.len()];
    max_pool2d_backward(&spec, dy, &ix, &mut dx).unwrap();
    assert_close(c, "grad_input", &dx, c.t("grad_input"));
}

fn avg_pool_case(c: &Case) {
    let spec = pool_spec(c);
    let (x, dy) = (c.t("input"), c.t("grad_output"));
    let mut y = vec![f32::NAN; spec.output_len().unwrap()];
    avg_pool2d(&spec, x, &mut y).unwrap();
    assert_close(c, "output", &y, c.t("output"));
    let mut dx = vec![f32::NAN; x.len()];
    avg_pool2d_backward(&spec, dy, &mut dx).unwrap();
    assert_close(c, "grad_input", &dx, c.t("grad_input"));
}

fn batch_norm_case(c: &Case) {
    let spec = BatchNorm2dSpec::new(c.usize("n"), c.usize("c"), [c.usize("ih"), c.usize("iw")]);
    let (x, gamma, beta, dy) = (c.t("input"), c.t("gamma"), c.t("beta"), c.t("grad_output"));
    let (mut rm, mut rv) = (c.t("running_mean_before").to_vec(), c.t("running_var_before").to_vec());
    let ch = spec.channels;
    let (mut y, mut mean, mut invstd) = (vec![f32::NAN; x.len()], vec![f32::NAN; ch], vec![f32::NAN; ch]);
    batch_norm2d_train(&spec, x, gamma, beta, &mut rm, &mut rv, &mut y, &mut mean, &mut invstd).unwrap();
    assert_close(c, "output", &y, c.t("output"));
    assert_close(c, "running_mean", &rm, c.t("running_mean"));
    assert_close(c, "running_var", &rv, c.t("running_var"));
    let (mut dx, mut dg, mut db) = (vec![f32::NAN; x.len()], vec![f32::NAN; ch], vec![f32::NAN; ch]);
    batch_norm2d_backward(&spec, x, dy, gamma, &mean, &invstd, &mut dx, &mut dg, &mut db).unwrap();
    assert_close(c, "grad_input", &dx, c.t("grad_input"));
    assert_close(c, "grad_gamma", &dg, c.t("grad_gamma"));
    assert_close(c, "grad_beta", &db, c.t("grad_beta"));
    let mut ye = vec![f32::NAN; x.len()];
    batch_norm2d_eval(&spec, c.t("eval_input"), gamma, beta, &rm, &rv, &mut ye).unwrap();
    assert_close(c, "eval_output", &ye, c.t("eval_output"));
}

#[test]
fn every_op_matches_pytorch() {
    let cases = load();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for c in &cases {
        match c.op.as_str() {
            "conv2d" => conv_case(c),
            "conv_transpose2d" => conv_transpose_case(c),
            "max_pool2d" => max_pool_case(c),
            "avg_pool2d" => avg_pool_case(c),
            "batch_norm2d" => batch_norm_case(c),
            other => panic!("unknown op {other}"),
        }
        *counts.entry(c.op.as_str()).or_default() += 1;
    }
    // The file covers every op it promises, with enough cases each.
    for (op, min) in
        [("conv2d", 20), ("conv_transpose2d", 20), ("max_pool2d", 20), ("avg_pool2d", 20), ("batch_norm2d", 8)]
    {
        assert!(counts.get(op).copied().unwrap_or(0) >= min, "{op}: {counts:?}");
    }
}
