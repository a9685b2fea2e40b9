//! Decodes arbitrary bytes into a conv2d case and runs it through the public API and the
//! reference. Shared (via `#[path]`) by the fuzz target `fuzz_targets/conv2d.rs` and the
//! corpus replay test `tests/ops_fuzz_corpus.rs`, so a crash found by the fuzzer is a
//! failing `cargo test` once its input is added to `corpus/conv2d/`.
//!
//! Byte layout (missing bytes read as 0): batch, in_channels, out_channels, groups,
//! input h/w, kernel h/w, stride h/w, padding top/bottom/left/right, dilation h/w (each a
//! `size`: mostly small, sometimes 0 or a huge/edge value, see [`Bytes::size`]), then a
//! flags byte (bias, grad_bias, which buffer gets a wrong length, special values), then
//! 8 bytes of data seed.
//!
//! Checks, which panic (a fuzzer crash) when violated:
//! - an invalid spec: every function returns `Err`, the same variant as the reference;
//! - a valid spec too large to allocate here (any buffer over [`MAX_LEN`] elements or over
//!   [`MAX_MACS`] multiply-adds): called with empty buffers, every function returns
//!   `Err(Length)`;
//! - a valid small spec with one buffer one element off: `Err(Length)` naming that buffer;
//! - a valid small spec with right buffers: `Ok`, and with finite data every element
//!   within `1e-5 * sum|a_i*b_i| + 1e-6` of the reference.
#![allow(dead_code)]

use sverka::{Conv2dSpec, Error, Padding};

/// Largest buffer (elements) the harness allocates.
pub const MAX_LEN: usize = 1 << 12;
/// Largest convolution (multiply-adds) the harness runs, so the reference stays fast.
pub const MAX_MACS: usize = 1 << 16;

/// What a case exercised (the replay test checks the seed corpus covers all of them).
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The spec itself is invalid: the error.
    InvalidSpec(Error),
    /// Valid but over the harness's size caps: called with empty buffers.
    TooLarge,
    /// Valid and small, one buffer of the wrong length.
    WrongLength(&'static str),
    /// Valid and small, all calls succeeded and matched the reference.
    Computed,
}

/// A cursor over the fuzzer's bytes; reads past the end give 0.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, i| acc | (self.byte() as u64) << (8 * i))
    }

    /// A size: bytes 0..=239 give `b % (small + 1)` (so 0 too), the others edge values:
    /// 0, `usize::MAX`, `usize::MAX / 2`, 2^32, 2^31, `isize::MAX`, just over the largest
    /// f32 buffer, 2^20, 2^16, or 2/4/8 more bytes read as a number.
    pub fn size(&mut self, small: usize) -> usize {
        match self.byte() {
            b @ 0..=239 => b as usize % (small + 1),
            240 => 0,
            241 => usize::MAX,
            242 => usize::MAX / 2,
            243 => 1 << 32,
            244 => 1 << 31,
            245 => isize::MAX as usize,
            246 => isize::MAX as usize / 4 + 1,
            247 => 1 << 20,
            248 => 1 << 16,
            249 => u16::from_le_bytes([self.byte(), self.byte()]) as usize,
            250 => u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()]) as usize,
            _ => self.u64() as usize,
        }
    }
}

/// The decoded case.
#[derive(Clone, Debug)]
pub struct Case {
    pub spec: Conv2dSpec,
    pub bias: bool,
    pub grad_bias: bool,
    /// 0 none, 1 input-shaped, 2 output-shaped, 3 weight, 4 bias buffers get a wrong length.
    pub wrong: u8,
    /// One element more (true) or fewer.
    pub grow: bool,
    /// Sprinkle NaN/inf/huge values into the data.
    pub special: bool,
    pub seed: u64,
}

pub fn decode(data: &[u8]) -> Case {
    let mut b = Bytes::new(data);
    let batch = b.size(3);
    let in_channels = b.size(8);
    let out_channels = b.size(8);
    let groups = b.size(4);
    let input = [b.size(12), b.size(12)];
    let kernel = [b.size(5), b.size(5)];
    let stride = [b.size(4), b.size(4)];
    let padding = Padding { top: b.size(4), bottom: b.size(4), left: b.size(4), right: b.size(4) };
    let dilation = [b.size(3), b.size(3)];
    let flags = b.byte();
    let seed = b.u64();
    Case {
        spec: Conv2dSpec { batch, in_channels, out_channels, input, kernel, stride, padding, dilation, groups },
        bias: flags & 1 != 0,
        grad_bias: flags & 2 != 0,
        wrong: (flags >> 2) % 5,
        grow: flags & 32 != 0,
        special: flags & 64 != 0,
        seed,
    }
}

/// SplitMix64 values in [-1, 1), with NaN/inf/1e30 sprinkled in when `special`.
fn fill(seed: u64, len: usize, special: bool) -> Vec<f32> {
    let mut rng = sverka::rng::SplitMix64::new(seed);
    (0..len)
        .map(|_| {
            let v = rng.uniform(-1.0, 1.0);
            if special && rng.below(8) == 0 {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -0.0][rng.below(5)]
            } else {
                v
            }
        })
        .collect()
}

fn resize(v: &mut Vec<f32>, grow: bool) {
    if grow {
        v.push(0.5)
    } else {
        v.pop();
    }
}

/// Decodes `data` and runs the checks described at the top of this file.
pub fn run(data: &[u8]) -> Outcome {
    let case = decode(data);
    let s = case.spec;

    // 1. Invalid spec: every function says so, like the reference.
    let lens = s.output().and_then(|_| Ok((s.input_len()?, s.output_len()?, s.weight_len()?)));
    let (xl, yl, wl) = match lens {
        Err(e) => {
            let (mut y, mut g) = (vec![0.0f32; 3], vec![0.0f32; 3]);
            let small = [0.0f32; 3];
            let results = [
                (
                    "conv2d",
                    sverka::conv2d(&s, &small, &small, None, &mut y),
                    sverka::reference::conv2d(&s, &small, &small, None, &mut g),
                ),
                (
                    "conv2d_backward_input",
                    sverka::conv2d_backward_input(&s, &small, &small, &mut y),
                    sverka::reference::conv2d_backward_input(&s, &small, &small, &mut g),
                ),
                (
                    "conv2d_backward_weight",
                    sverka::conv2d_backward_weight(&s, &small, &small, &mut y, None),
                    sverka::reference::conv2d_backward_weight(&s, &small, &small, &mut g, None),
                ),
            ];
            for (f, fast, oracle) in results {
                match (&fast, &oracle) {
                    (Err(a), Err(b)) if std::mem::discriminant(a) == std::mem::discriminant(b) => {}
                    _ => panic!("{s}: invalid spec ({e}): {f} gave {fast:?}, reference {oracle:?}"),
                }
            }
            return Outcome::InvalidSpec(e);
        }
        Ok(l) => l,
    };
    let bl = s.bias_len();

    // 2. Valid but too large to run here: empty buffers must be a Length error.
    let macs = yl
        .checked_mul(s.in_channels / s.groups)
        .and_then(|v| v.checked_mul(s.kernel[0]))
        .and_then(|v| v.checked_mul(s.kernel[1]));
    if xl.max(yl).max(wl).max(bl) > MAX_LEN || macs.is_none_or(|m| m > MAX_MACS) {
        let mut none: [f32; 0] = [];
        let mut none2: [f32; 0] = [];
        for (f, res) in [
            ("conv2d", sverka::conv2d(&s, &[], &[], None, &mut none)),
            ("conv2d_backward_input", sverka::conv2d_backward_input(&s, &[], &[], &mut none)),
            ("conv2d_backward_weight", sverka::conv2d_backward_weight(&s, &[], &[], &mut none, Some(&mut none2))),
        ] {
            assert!(matches!(res, Err(Error::Length { actual: 0, .. })), "{s}: {f} with empty buffers gave {res:?}");
        }
        return Outcome::TooLarge;
    }

    // 3./4. Valid and small.
    let x0 = fill(case.seed, xl, case.special);
    let w0 = fill(case.seed ^ 1, wl, case.special);
    let b0 = fill(case.seed ^ 2, bl, case.special);
    let dy0 = fill(case.seed ^ 3, yl, case.special);
    let (mut x, mut w, mut b, mut dy) = (x0.clone(), w0.clone(), b0.clone(), dy0.clone());
    let mut y = vec![0.0f32; yl];
    let mut dx = vec![0.0f32; xl];
    let mut dw = vec![0.0f32; wl];
    let mut db = vec![0.0f32; bl];
    match case.wrong {
        1 => {
            resize(&mut x, case.grow);
            resize(&mut dx, case.grow)
        }
        2 => {
            resize(&mut y, case.grow);
            resize(&mut dy, case.grow)
        }
        3 => {
            resize(&mut w, case.grow);
            resize(&mut dw, case.grow)
        }
        4 => {
            resize(&mut b, case.grow);
            resize(&mut db, case.grow)
        }
        _ => {}
    }
    let bias = case.bias.then_some(&b[..]);
    let fwd = sverka::conv2d(&s, &x, &w, bias, &mut y);
    let bwd_in = sverka::conv2d_backward_input(&s, &dy, &w, &mut dx);
    let bwd_w = sverka::conv2d_backward_weight(&s, &x, &dy, &mut dw, case.grad_bias.then_some(&mut db[..]));
    // Which buffer each call must complain about, if any (the reference decides the
    // order when several are wrong; here exactly one shape class is).
    let expect = |f: &str, res: &Result<(), Error>, wrong_names: &[(u8, &'static str)]| -> Option<&'static str> {
        let want = wrong_names.iter().find(|(k, _)| *k == case.wrong).map(|(_, n)| *n);
        match (want, res) {
            (None, Ok(())) => None,
            (Some(n), Err(Error::Length { buffer, .. })) if *buffer == n => Some(n),
            _ => panic!(
                "{s} ({case:?}): {f} gave {res:?}, expected {}",
                want.map_or("Ok".to_string(), |n| format!("Length error for {n}"))
            ),
        }
    };
    let bias_name: &[(u8, &'static str)] = if case.bias { &[(4, "bias")] } else { &[] };
    let grad_bias_name: &[(u8, &'static str)] = if case.grad_bias { &[(4, "grad_bias")] } else { &[] };
    let w1 = expect("conv2d", &fwd, &[&[(1, "input"), (2, "output"), (3, "weight")][..], bias_name].concat());
    let w2 = expect("conv2d_backward_input", &bwd_in, &[(1, "grad_input"), (2, "grad_output"), (3, "weight")]);
    let w3 = expect(
        "conv2d_backward_weight",
        &bwd_w,
        &[&[(1, "input"), (2, "grad_output"), (3, "grad_weight")][..], grad_bias_name].concat(),
    );
    if let Some(n) = w1.or(w2).or(w3) {
        return Outcome::WrongLength(n);
    }
    if case.special {
        // Non-finite data: Ok (checked above) is all we ask; the values are IEEE's business.
        return Outcome::Computed;
    }
    // Compare with the reference within the DESIGN §4 bound.
    let a = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
    let check = |what: &str, got: &[f32], want: &[f32], scale: &[f32]| {
        for i in 0..got.len() {
            let bound = 1e-5 * scale[i] as f64 + 1e-6;
            assert!(
                (got[i] as f64 - want[i] as f64).abs() <= bound,
                "{s}: {what}[{i}]: {} vs reference {} (bound {bound})",
                got[i],
                want[i]
            );
        }
    };
    let (mut want, mut scale) = (vec![0.0; yl], vec![0.0; yl]);
    sverka::reference::conv2d(&s, &x0, &w0, bias, &mut want).unwrap();
    let ab = a(&b0);
    sverka::reference::conv2d(&s, &a(&x0), &a(&w0), case.bias.then_some(&ab[..]), &mut scale).unwrap();
    check("output", &y, &want, &scale);
    let (mut want, mut scale) = (vec![0.0; xl], vec![0.0; xl]);
    sverka::reference::conv2d_backward_input(&s, &dy0, &w0, &mut want).unwrap();
    sverka::reference::conv2d_backward_input(&s, &a(&dy0), &a(&w0), &mut scale).unwrap();
    check("grad_input", &dx, &want, &scale);
    let (mut want, mut scale) = (vec![0.0; wl], vec![0.0; wl]);
    let (mut want_b, mut scale_b) = (vec![0.0; bl], vec![0.0; bl]);
    sverka::reference::conv2d_backward_weight(&s, &x0, &dy0, &mut want, Some(&mut want_b)).unwrap();
    sverka::reference::conv2d_backward_weight(&s, &a(&x0), &a(&dy0), &mut scale, Some(&mut scale_b)).unwrap();
    check("grad_weight", &dw, &want, &scale);
    if case.grad_bias {
        check("grad_bias", &db, &want_b, &scale_b);
    }
    Outcome::Computed
}
