//! `Conv2dPlan` and `conv2d` against `sverka::reference::conv2d` over random specs on every
//! ISA the host has, bitwise determinism across thread counts, algorithm selection, and
//! the plan's own API (`set_weights`, fused ReLU, forced choices, length errors).

use proptest::prelude::*;
use sverka::kernels::KERNELS;
use sverka::{Algorithm, Conv2dPlan, Conv2dSpec, Error, Isa, Padding};

/// ISAs the CPU supports; a missing one is reported, and is a failure if
/// `SVERKA_REQUIRE_ISA` asks for it (or a higher level).
fn isas() -> Vec<Isa> {
    let required = std::env::var("SVERKA_REQUIRE_ISA").ok().and_then(|v| Isa::parse(&v));
    Isa::ALL
        .into_iter()
        .filter(|&isa| {
            let ok = isa.supports();
            if !ok {
                assert!(required.is_none_or(|r| isa > r), "SVERKA_REQUIRE_ISA: {isa} required but not supported");
                println!("skipping {isa}: not supported by this CPU");
            }
            ok
        })
        .collect()
}

fn fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed ^ 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Runs `plan` and compares with the reference per element:
/// `|fast - ref| <= 1e-5 * sum|a_i*b_i| + 1e-6`.
fn check_plan(s: &Conv2dSpec, plan: &mut Conv2dPlan, relu: bool, seed: u64) -> Result<(), TestCaseError> {
    let input = fill(s.input_len().unwrap(), seed);
    let weight = fill(s.weight_len().unwrap(), seed + 1);
    let bias = fill(s.out_channels, seed + 2);
    plan.set_weights(&weight, Some(&bias)).unwrap();
    let mut out = vec![f32::NAN; s.output_len().unwrap()];
    plan.run(&input, &mut out).unwrap();
    let mut expect = vec![0.0; out.len()];
    sverka::reference::conv2d(s, &input, &weight, Some(&bias), &mut expect).unwrap();
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let mut scale = vec![0.0; out.len()];
    sverka::reference::conv2d(s, &abs(&input), &abs(&weight), Some(&abs(&bias)), &mut scale).unwrap();
    for i in 0..out.len() {
        let e = if relu { expect[i].max(0.0) } else { expect[i] };
        prop_assert!((out[i] - e).abs() <= 1e-5 * scale[i] + 1e-6, "{plan}: output[{i}] = {} expected {e}", out[i]);
    }
    Ok(())
}

/// Random specs: grouped, depthwise and dense; stride up to 4 (also above the kernel),
/// dilation up to 3, asymmetric padding, 1x1 images, odd channel counts, batch 1..=2.
fn spec() -> impl Strategy<Value = Conv2dSpec> {
    let channels = prop_oneof![
        (1usize..=20, 1usize..=20).prop_map(|(c, k)| (c, k, 1)),
        (1usize..=6, 1usize..=6, 2usize..=3).prop_map(|(c, k, g)| (c * g, k * g, g)),
        (1usize..=12).prop_map(|c| (c, c, c)),
    ];
    (
        channels,
        1usize..=2,
        (1usize..=12, 1usize..=12),
        (1usize..=5, 1usize..=5),
        (1usize..=4, 1usize..=4),
        (1usize..=3, 1usize..=3),
        (0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3),
    )
        .prop_map(|((c, k, g), batch, (h, w), (kh, kw), (sh, sw), (dh, dw), (t, b, l, r))| Conv2dSpec {
            batch,
            in_channels: c,
            out_channels: k,
            input: [h, w],
            kernel: [kh, kw],
            stride: [sh, sw],
            padding: Padding { top: t, bottom: b, left: l, right: r },
            dilation: [dh, dw],
            groups: g,
        })
        .prop_filter("non-empty output", |s| s.output().is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plan_matches_reference_on_every_isa(s in spec(), relu in any::<bool>(), seed in any::<u64>()) {
        for isa in isas() {
            let mut plan = Conv2dPlan::builder(&s).isa(isa).relu(relu).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
            check_plan(&s, &mut plan, relu, seed)?;
        }
    }

    /// Polyphase Winograd (planned by default below `lanes / 2` input channels: 1-7 on
    /// AVX-512, 1-3 on the others; stride 2, kernels of 5 to 8 a side with at least 38
    /// taps) over random sizes, kernels and padding up to "same", with fused ReLU or not.
    #[test]
    fn polyphase_plans_match_reference(
        c in 1usize..=7, k in 1usize..=20, batch in 1usize..=2, (h, w) in (1usize..=40, 1usize..=40),
        (kh, kw) in (5usize..=8, 5usize..=8), pads in (0usize..=3, 0usize..=3, 0usize..=3, 0usize..=3),
        relu in any::<bool>(), seed in any::<u64>(),
    ) {
        prop_assume!(kh * kw >= 38);
        let clip = |p: usize, k: usize| p.min((k - 1) / 2);
        let s = Conv2dSpec {
            batch, in_channels: c, out_channels: k, input: [h, w], kernel: [kh, kw], stride: [2, 2],
            padding: Padding { top: clip(pads.0, kh), bottom: clip(pads.1, kh), left: clip(pads.2, kw), right: clip(pads.3, kw) },
            dilation: [1, 1], groups: 1,
        };
        prop_assume!(s.output().is_ok());
        for isa in isas() {
            let mut plan = Conv2dPlan::builder(&s).isa(isa).relu(relu).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
            if c * 2 < isa.lanes() {
                prop_assert_eq!(plan.algorithm(), Algorithm::PolyphaseWinograd, "{}", plan);
            }
            check_plan(&s, &mut plan, relu, seed)?;
        }
    }

    /// Wider channel counts, so the direct and 1x1 paths (which need >= lanes/2 input
    /// channels) are hit with random geometry too.
    #[test]
    fn wide_channels_match_reference(
        c in 8usize..=40, k in 1usize..=40, hw in 1usize..=9, kern in 1usize..=3,
        stride in 1usize..=2, dil in 1usize..=2, pad in 0usize..=2, seed in any::<u64>(),
    ) {
        let s = Conv2dSpec {
            batch: 1, in_channels: c, out_channels: k, input: [hw, hw + 2], kernel: [kern, kern],
            stride: [stride; 2], padding: Padding { top: pad, bottom: 0, left: 0, right: pad },
            dilation: [dil; 2], groups: 1,
        };
        prop_assume!(s.output().is_ok());
        for isa in isas() {
            let mut plan = Conv2dPlan::builder(&s).isa(isa).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
            check_plan(&s, &mut plan, false, seed)?;
        }
    }
}

/// `[kernel, stride, pad, dilation]`, square.
fn conv(c: usize, k: usize, hw: usize, [kern, stride, pad, dil]: [usize; 4], groups: usize) -> Conv2dSpec {
    Conv2dSpec {
        batch: 1,
        in_channels: c,
        out_channels: k,
        input: [hw, hw],
        kernel: [kern, kern],
        stride: [stride, stride],
        padding: Padding::uniform(pad),
        dilation: [dil, dil],
        groups,
    }
}

/// Each algorithm is chosen for the specs it claims (on every ISA).
#[test]
fn algorithms_are_selected_for_their_specs() {
    let cases = [
        (conv(32, 32, 9, [3, 1, 1, 1], 32), Algorithm::Depthwise),
        (conv(16, 16, 9, [5, 1, 2, 2], 16), Algorithm::Depthwise),
        (conv(64, 64, 12, [3, 1, 1, 1], 1), Algorithm::Winograd),
        (conv(64, 64, 12, [3, 1, 2, 2], 1), Algorithm::Winograd),
        (conv(32, 64, 12, [3, 1, 0, 1], 1), Algorithm::Winograd),
        (conv(64, 64, 12, [3, 1, 2, 1], 1), Algorithm::Direct),
        (conv(64, 128, 12, [3, 2, 1, 1], 1), Algorithm::Winograd),
        (conv(64, 64, 12, [3, 2, 2, 2], 1), Algorithm::Winograd),
        (conv(32, 64, 12, [5, 2, 2, 1], 1), Algorithm::Direct),
        (conv(64, 64, 12, [3, 2, 2, 1], 1), Algorithm::Direct),
        (conv(32, 32, 14, [6, 2, 2, 1], 1), Algorithm::Winograd),
        (Conv2dSpec { stride: [2, 1], ..conv(64, 64, 12, [3, 1, 1, 1], 1) }, Algorithm::ImplicitGemm),
        (conv(32, 64, 12, [5, 1, 2, 1], 1), Algorithm::Winograd),
        (conv(32, 64, 12, [7, 1, 3, 1], 1), Algorithm::Direct),
        (conv(32, 64, 12, [4, 1, 1, 1], 1), Algorithm::Direct),
        (conv(256, 256, 7, [1, 1, 0, 1], 1), Algorithm::Gemm1x1),
        (conv(64, 64, 7, [1, 1, 0, 1], 4), Algorithm::Gemm1x1),
        (conv(1, 32, 12, [3, 1, 1, 1], 1), Algorithm::IndirectGemm),
        (conv(3, 64, 30, [3, 1, 1, 1], 1), Algorithm::IndirectGemm),
        (conv(3, 64, 30, [5, 1, 2, 2], 1), Algorithm::IndirectGemm),
        (conv(3, 64, 30, [7, 2, 3, 1], 1), Algorithm::PolyphaseWinograd),
        (conv(1, 8, 30, [8, 2, 3, 1], 1), Algorithm::PolyphaseWinograd),
        (conv(3, 64, 30, [7, 2, 4, 1], 1), Algorithm::Direct),
        (conv(3, 64, 30, [5, 2, 2, 1], 1), Algorithm::Direct),
        (conv(8, 64, 30, [7, 2, 3, 1], 1), Algorithm::Direct),
        (conv(3, 64, 30, [7, 2, 3, 2], 1), Algorithm::Direct),
        (conv(64, 64, 12, [3, 3, 1, 1], 1), Algorithm::ImplicitGemm),
        (conv(64, 64, 12, [3, 1, 1, 1], 2), Algorithm::ImplicitGemm),
        (conv(32, 32, 12, [3, 2, 1, 1], 32), Algorithm::ImplicitGemm),
    ];
    for isa in isas() {
        for (s, algorithm) in &cases {
            let plan = Conv2dPlan::builder(s).isa(isa).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
            assert_eq!(plan.algorithm(), *algorithm, "{plan}");
            assert_eq!(plan.isa(), isa);
            assert!(plan.to_string().starts_with(algorithm.name()), "{plan}");
        }
    }
}

/// A GEMM's last partial panel runs on a tail tile (`gemm_m8_n1v` for `gemm_m8_n3v`), but
/// a whole GEMM never does, even where a tail tile has the least padded work (a plane of
/// at most one vector of pixels).
#[test]
fn gemm_plans_never_pick_a_tail_tile() {
    for isa in isas() {
        for hw in [1, 2, 3, 5] {
            let s = conv(8, 8, hw, [1, 1, 0, 1], 1);
            let plan = Conv2dPlan::builder(&s).isa(isa).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
            assert_eq!(plan.algorithm(), Algorithm::Gemm1x1, "{plan}");
            let k = KERNELS.iter().find(|k| k.name == plan.kernel()).unwrap();
            assert!(!k.is_tail(isa), "{plan}");
        }
    }
}

/// Results are bitwise identical for 1, 2 and 3 threads, for every algorithm.
#[test]
fn bitwise_identical_for_any_thread_count() {
    let specs = [
        conv(24, 40, 17, [3, 1, 1, 1], 1),
        conv(24, 40, 17, [3, 1, 1, 2], 1),
        conv(24, 40, 17, [3, 1, 2, 1], 1),
        conv(24, 40, 17, [3, 2, 1, 1], 1),
        // Polyphase Winograd: one band; bands of 8, 8, 8 and 1 tile rows with chunks
        // across tile rows; a batch of 2 bands each (13 and 2 tile rows).
        conv(3, 20, 23, [7, 2, 3, 1], 1),
        conv(3, 20, 100, [7, 2, 3, 1], 1),
        Conv2dSpec { batch: 3, ..conv(2, 9, 61, [8, 2, 3, 1], 1) },
        // The planar direct kernels at stride 2 (6x6: too few taps for polyphase).
        conv(3, 20, 23, [6, 2, 2, 1], 1),
        conv(3, 20, 23, [3, 1, 1, 1], 1),
        Conv2dSpec { batch: 5, ..conv(2, 20, 13, [3, 1, 1, 1], 1) },
        conv(64, 72, 9, [1, 1, 0, 1], 1),
        conv(12, 12, 19, [3, 1, 1, 1], 12),
        Conv2dSpec { batch: 3, ..conv(8, 12, 11, [3, 1, 1, 2], 2) },
        // Winograd and direct with a batch: per-image tasks at 1 and 2 threads (8 images a
        // thread), row bands at 3.
        Conv2dSpec { batch: 17, ..conv(24, 40, 9, [3, 1, 1, 1], 1) },
        Conv2dSpec { batch: 17, ..conv(24, 40, 9, [3, 1, 2, 1], 1) },
    ];
    for isa in isas() {
        for s in &specs {
            let input = fill(s.input_len().unwrap(), 1);
            let weight = fill(s.weight_len().unwrap(), 2);
            let bias = fill(s.out_channels, 3);
            let outs: Vec<Vec<f32>> = [1, 2, 3]
                .into_iter()
                .map(|threads| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    pool.install(|| {
                        let mut plan = Conv2dPlan::builder(s).isa(isa).build(&weight, Some(&bias)).unwrap();
                        let mut out = vec![0.0; s.output_len().unwrap()];
                        plan.run(&input, &mut out).unwrap();
                        out
                    })
                })
                .collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&outs[0]), bits(&outs[1]), "{s} on {isa}: 1 vs 2 threads");
            assert_eq!(bits(&outs[0]), bits(&outs[2]), "{s} on {isa}: 1 vs 3 threads");
        }
    }
}

/// Where `v[start..]` lies `off` floats past a 64-byte boundary (`v` has 16 spare floats).
fn start_at(v: &[f32], off: usize) -> usize {
    (off + 16 - v.as_ptr().addr() / 4 % 16) % 16
}

/// Each plan matches the reference, and input and output slices at every 4-byte offset
/// from a 64-byte boundary give bitwise its results with nothing written outside the
/// output slice. The output transposes start their pixel blocks at the output's alignment
/// when every plane has the same alignment (planes of a multiple of 16 pixels; the 10x10
/// ones do not): with 32-pixel rows every row has the same leading block, with 28-pixel
/// rows it changes from row to row. The 1x1 GEMM copies its input rows from any offset;
/// its 400-channel case takes more than one KC slice. In a 2-thread pool, so that the task
/// split is the same anywhere.
#[test]
fn unaligned_buffers_give_aligned_results() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    pool.install(unaligned_buffers_in_pool);
}

fn unaligned_buffers_in_pool() {
    let specs = [
        (conv(40, 24, 16, [1, 1, 0, 1], 1), Algorithm::Gemm1x1),
        (Conv2dSpec { batch: 2, ..conv(40, 24, 8, [1, 1, 0, 1], 2) }, Algorithm::Gemm1x1),
        // One task per image at 2 threads, 80 pixels.
        (Conv2dSpec { batch: 8, input: [8, 10], ..conv(40, 24, 8, [1, 1, 0, 1], 1) }, Algorithm::Gemm1x1),
        (conv(40, 24, 10, [1, 1, 0, 1], 1), Algorithm::Gemm1x1),
        (conv(400, 24, 8, [1, 1, 0, 1], 1), Algorithm::Gemm1x1),
        (conv(24, 40, 64, [3, 2, 1, 1], 1), Algorithm::Direct),
        (conv(24, 40, 56, [3, 2, 1, 1], 1), Algorithm::Direct),
        (Conv2dSpec { batch: 2, ..conv(3, 20, 64, [7, 2, 3, 1], 1) }, Algorithm::Direct),
        // Polyphase Winograd: pieces of vectors across tile rows; odd output sizes.
        (Conv2dSpec { batch: 2, ..conv(3, 20, 64, [7, 2, 3, 1], 1) }, Algorithm::PolyphaseWinograd),
        (Conv2dSpec { input: [37, 45], ..conv(2, 9, 37, [7, 2, 3, 1], 1) }, Algorithm::PolyphaseWinograd),
        (conv(24, 40, 32, [3, 1, 1, 1], 1), Algorithm::Winograd),
        (conv(24, 40, 10, [3, 1, 1, 1], 1), Algorithm::Winograd),
    ];
    for isa in isas() {
        for (s, algorithm) in &specs {
            let weight = fill(s.weight_len().unwrap(), 2);
            let mut plan = Conv2dPlan::builder(s).isa(isa).algorithm(*algorithm).build(&weight, None).unwrap();
            check_plan(s, &mut plan, false, 1).unwrap();
            let (in_len, out_len) = (s.input_len().unwrap(), s.output_len().unwrap());
            let mut input = vec![0.0; in_len + 16];
            let mut output = vec![0.0; out_len + 16];
            let mut first: Option<Vec<u32>> = None;
            for off in 0..16 {
                let (i0, o0) = (start_at(&input, off), start_at(&output, off * 7 % 16));
                input.fill(f32::NAN);
                input[i0..i0 + in_len].copy_from_slice(&fill(in_len, 1));
                output.fill(f32::NAN);
                plan.run(&input[i0..i0 + in_len], &mut output[o0..o0 + out_len]).unwrap();
                let mut outside = output[..o0].iter().chain(&output[o0 + out_len..]);
                assert!(outside.all(|x| x.is_nan()), "{plan}: wrote outside the output at offset {off}");
                let bits: Vec<u32> = output[o0..o0 + out_len].iter().map(|x| x.to_bits()).collect();
                match &first {
                    None => first = Some(bits),
                    Some(f) => assert!(*f == bits, "{plan}: offsets ({off}, {}) differ from (0, 0)", off * 7 % 16),
                }
            }
        }
    }
}

/// Direct with few images (reorder in bands of input rows, compute in bands of output
/// rows) against the reference at 1, 2 and 3 threads: input heights below, at and above
/// the band count, uneven padding, strides 1 and 2, batch 1 and 2.
#[test]
fn direct_row_bands_match_reference() {
    for isa in isas() {
        for (hw, stride, batch) in [(1, 1, 1), (2, 1, 1), (5, 2, 2), (13, 1, 1), (13, 2, 1), (26, 1, 2)] {
            let s = Conv2dSpec {
                batch,
                stride: [stride, stride],
                padding: Padding { top: 1, bottom: 2, left: 1, right: 1 },
                ..conv(20, 36, hw, [3, stride, 1, 1], 1)
            };
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let weight = fill(s.weight_len().unwrap(), 9);
                    let mut plan =
                        Conv2dPlan::builder(&s).isa(isa).algorithm(Algorithm::Direct).build(&weight, None).unwrap();
                    check_plan(&s, &mut plan, false, 11).unwrap();
                });
            }
        }
    }
}

/// Winograd against the reference at 1, 2 and 3 threads: every tile remainder (output
/// sizes 1 to 13, odd and even), dilations 1 to 3 per axis (row and column phases),
/// asymmetric padding up to "same", kernels split into 3x3 pieces (3x5, 5x5, 6x6), channel
/// counts off the vector width, batch 1 (row-band tasks), 5 (per-image tasks at 1 thread)
/// and 17 (per-image at 1 and 2 threads), with and without ReLU; stride 1 (F(2x2, 3x3))
/// and stride 2 (its 5x5-patch polyphase form) with the same kinds of geometry, and at
/// stride 2 kernels cut into pieces (3x6, 6x6 dilated, 9x9).
#[test]
fn winograd_matches_reference() {
    let shapes = [
        // (h, w, kernel, dilation, padding (top, bottom, left, right), in, out, batch, stride)
        (1, 1, [3, 3], [1, 1], (1, 1, 1, 1), 17, 5, 1, 1),
        (2, 5, [3, 3], [1, 1], (0, 1, 1, 0), 8, 16, 1, 1),
        (7, 6, [3, 3], [1, 1], (1, 1, 1, 1), 33, 40, 17, 1),
        (13, 9, [3, 3], [1, 1], (1, 0, 0, 1), 20, 33, 1, 1),
        (9, 11, [3, 3], [2, 2], (2, 2, 2, 2), 16, 17, 1, 1),
        (12, 7, [3, 3], [2, 1], (1, 2, 0, 1), 24, 9, 5, 1),
        (8, 13, [3, 3], [1, 3], (1, 0, 3, 2), 9, 32, 1, 1),
        (11, 11, [3, 3], [3, 3], (3, 3, 3, 3), 40, 24, 1, 1),
        (9, 10, [5, 5], [1, 1], (2, 2, 2, 2), 20, 36, 1, 1),
        (6, 12, [5, 5], [2, 1], (4, 1, 0, 2), 16, 17, 5, 1),
        (10, 9, [3, 5], [1, 1], (1, 1, 2, 2), 12, 20, 1, 1),
        (13, 12, [6, 6], [1, 1], (2, 2, 1, 2), 18, 8, 1, 1),
        (8, 9, [3, 4], [1, 2], (1, 0, 2, 1), 16, 24, 1, 1),
        (9, 7, [4, 3], [2, 1], (2, 1, 1, 1), 10, 12, 5, 1),
        (1, 1, [3, 3], [1, 1], (1, 1, 1, 1), 17, 5, 1, 2),
        (2, 5, [3, 3], [1, 1], (0, 1, 1, 0), 8, 16, 1, 2),
        (7, 6, [3, 3], [1, 1], (1, 1, 1, 1), 33, 40, 17, 2),
        (13, 9, [3, 3], [1, 1], (1, 0, 0, 1), 20, 33, 1, 2),
        (14, 15, [3, 3], [1, 1], (0, 0, 0, 0), 16, 24, 1, 2),
        (9, 11, [3, 3], [2, 2], (2, 2, 2, 2), 16, 17, 1, 2),
        (12, 7, [3, 3], [2, 1], (1, 2, 0, 1), 24, 9, 5, 2),
        (11, 13, [3, 3], [1, 3], (1, 0, 3, 2), 9, 32, 1, 2),
        (13, 12, [6, 6], [1, 1], (2, 2, 1, 2), 18, 8, 1, 2),
        (16, 15, [6, 6], [2, 1], (4, 3, 2, 2), 12, 9, 1, 2),
        (13, 14, [3, 6], [1, 1], (1, 1, 2, 2), 16, 12, 1, 2),
        (19, 17, [9, 9], [1, 1], (4, 4, 3, 4), 8, 10, 1, 2),
    ];
    let specs = shapes.map(|(h, w, kernel, dilation, (top, bottom, left, right), c, k, batch, stride)| Conv2dSpec {
        batch,
        in_channels: c,
        out_channels: k,
        input: [h, w],
        kernel,
        stride: [stride, stride],
        padding: Padding { top, bottom, left, right },
        dilation,
        groups: 1,
    });
    // Winograd takes at least lanes / 2 input channels.
    forced_plans_match_reference(Algorithm::Winograd, &specs, |s, isa| s.in_channels * 2 >= isa.lanes(), 13);
}

/// Plans each of `specs` (all valid) that `applies` on an ISA with `algorithm` forced, on
/// every ISA in pools of 1-3 threads (fused ReLU on every other spec), and checks it
/// against the reference.
fn forced_plans_match_reference(
    algorithm: Algorithm,
    specs: &[Conv2dSpec],
    applies: impl Fn(&Conv2dSpec, Isa) -> bool,
    seed: u64,
) {
    for isa in isas() {
        for (i, s) in specs.iter().enumerate() {
            assert!(s.output().is_ok(), "{s}: no output");
            if !applies(s, isa) {
                continue;
            }
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| {
                    let relu = i % 2 == 1;
                    let mut plan = Conv2dPlan::builder(s)
                        .isa(isa)
                        .relu(relu)
                        .algorithm(algorithm)
                        .build(&vec![0.0; s.weight_len().unwrap()], None)
                        .unwrap_or_else(|e| panic!("{s} on {isa}: {e}"));
                    assert_eq!(plan.algorithm(), algorithm);
                    check_plan(s, &mut plan, relu, seed + i as u64).unwrap();
                });
            }
        }
    }
}

/// Polyphase Winograd against the reference on every ISA, 1-3 threads: 7x7 and the other
/// kernels it takes (6x7, 8x8, 5x8, 8x7), odd and even output sizes (a partial tile row
/// and column), tile rows shorter and longer than a vector of tiles, asymmetric padding,
/// 1-7 input channels, output channels not a multiple of the products tile, batches.
#[test]
fn polyphase_winograd_matches_reference() {
    let shapes = [
        // (h, w, kernel, padding (top, bottom, left, right), in, out, batch)
        (224, 224, [7, 7], (3, 3, 3, 3), 3, 64, 1),
        (1, 1, [7, 7], (3, 3, 3, 3), 1, 5, 1),
        (9, 10, [7, 7], (3, 3, 3, 3), 2, 17, 3),
        (40, 71, [7, 7], (0, 3, 2, 1), 3, 9, 1),
        (13, 35, [7, 7], (1, 0, 3, 0), 1, 33, 2),
        (19, 70, [6, 7], (2, 1, 3, 3), 3, 8, 1),
        (16, 17, [8, 8], (3, 3, 2, 3), 2, 12, 1),
        (11, 23, [5, 8], (2, 2, 3, 1), 3, 24, 1),
        // 5-7 channels: AVX-512 only (K = 20-28).
        (30, 33, [7, 7], (3, 3, 3, 3), 7, 10, 1),
        (17, 40, [8, 7], (3, 2, 2, 3), 5, 16, 2),
    ];
    let specs = shapes.map(|(h, w, kernel, (top, bottom, left, right), c, k, batch)| Conv2dSpec {
        batch,
        in_channels: c,
        out_channels: k,
        input: [h, w],
        kernel,
        stride: [2, 2],
        padding: Padding { top, bottom, left, right },
        dilation: [1, 1],
        groups: 1,
    });
    // Polyphase Winograd takes fewer than lanes / 2 input channels.
    forced_plans_match_reference(Algorithm::PolyphaseWinograd, &specs, |s, isa| s.in_channels * 2 < isa.lanes(), 29);
}

/// Column strides far above the width (found by the fuzz-corpus proptest and by
/// cargo-fuzz): the implicit GEMM's phase-split input keeps only the non-empty phases
/// instead of overflowing, and its packing computes phases in i128 (a stride of
/// `usize::MAX` is not an `isize`).
#[test]
fn huge_stride_matches_reference() {
    let s = Conv2dSpec {
        batch: 1,
        in_channels: 4,
        out_channels: 6,
        input: [4, 1],
        kernel: [2, 3],
        stride: [3, 1 << 61],
        padding: Padding { top: 4, bottom: 0, left: 4, right: 2 },
        dilation: [1, 1],
        groups: 2,
    };
    let max = Conv2dSpec {
        in_channels: 2,
        out_channels: 2,
        input: [4, 4],
        kernel: [3, 3],
        stride: [1, usize::MAX],
        padding: Padding { top: 0, bottom: 0, left: 1, right: 0 },
        groups: 1,
        ..s
    };
    for s in [s, max] {
        for isa in isas() {
            let mut plan = Conv2dPlan::builder(&s).isa(isa).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
            check_plan(&s, &mut plan, false, 3).unwrap();
        }
    }
}

/// A valid spec with a 2^54-pixel row (found in review): the planners' cost models
/// (padded work x tile overhead x channels) overflowed `usize` while choosing a kernel, a
/// panic in debug builds. Planning only (running it would need 2^55 floats of input): the
/// kernel choices compare without overflow and the padded-copy paths decline.
#[test]
fn huge_width_plans_without_overflow() {
    let s = Conv2dSpec {
        batch: 1,
        in_channels: 2,
        out_channels: 2,
        input: [1, 1 << 54],
        kernel: [1, 2],
        stride: [1, 1],
        padding: Padding::uniform(0),
        dilation: [1, 1],
        groups: 1,
    };
    for isa in isas() {
        let plan = Conv2dPlan::builder(&s).isa(isa).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
        assert_eq!(plan.algorithm(), Algorithm::ImplicitGemm, "{plan}");
    }
}

/// Huge padding and dilation around a tiny image (found in review): the padded copies of
/// the direct, Winograd and indirect paths would be gigabytes, so the planner falls
/// through to the implicit GEMM (cache-sized workspace) instead of failing.
#[test]
fn huge_padding_falls_back_to_implicit_gemm() {
    // (1, 1): depthwise (groups == channels), whose padded plane is declined the same way.
    for (c, k, d) in [(1, 2, 1 << 20), (1, 1, 1 << 12), (3, 5, 1 << 12), (16, 16, 1 << 12), (16, 16, 1 << 30)] {
        let s = Conv2dSpec {
            batch: 1,
            in_channels: c,
            out_channels: k,
            input: [1, 2],
            kernel: [3, 3],
            stride: [1, 1],
            padding: Padding::uniform(d),
            dilation: [d, d],
            groups: 1,
        };
        for isa in isas() {
            let mut plan = Conv2dPlan::builder(&s).isa(isa).build(&vec![0.0; s.weight_len().unwrap()], None).unwrap();
            assert_eq!(plan.algorithm(), Algorithm::ImplicitGemm, "{plan}");
            check_plan(&s, &mut plan, false, 5).unwrap();
        }
    }
}

/// `conv2d` (one-shot) equals a reused plan; `set_weights` re-packs; fused ReLU clamps.
#[test]
fn plan_api() {
    let s = conv(16, 24, 10, [3, 1, 1, 1], 1);
    let input = fill(s.input_len().unwrap(), 5);
    let (w1, w2) = (fill(s.weight_len().unwrap(), 6), fill(s.weight_len().unwrap(), 7));
    let bias = fill(24, 8);
    let mut plan = Conv2dPlan::new(&s, &w1, Some(&bias)).unwrap();
    let mut relu = Conv2dPlan::with_relu(&s, &w2, Some(&bias)).unwrap();
    plan.set_weights(&w2, Some(&bias)).unwrap();
    let (mut a, mut b, mut c) = (vec![0.0; s.output_len().unwrap()], vec![0.0; 2400], vec![0.0; 2400]);
    plan.run(&input, &mut a).unwrap();
    sverka::conv2d(&s, &input, &w2, Some(&bias), &mut b).unwrap();
    relu.run(&input, &mut c).unwrap();
    assert_eq!(a, b);
    assert!(a.iter().any(|&v| v < 0.0));
    assert!(a.iter().zip(&c).all(|(&x, &y)| y == x.max(0.0)));
}

/// Wrong lengths and impossible forced choices are errors, not panics.
#[test]
fn plan_errors() {
    let s = conv(16, 24, 10, [3, 1, 1, 1], 1);
    let w = vec![0.0; s.weight_len().unwrap()];
    assert!(matches!(Conv2dPlan::new(&s, &w[1..], None), Err(Error::Length { buffer: "weight", .. })));
    assert!(matches!(Conv2dPlan::new(&s, &w, Some(&[0.0; 3])), Err(Error::Length { buffer: "bias", .. })));
    let mut plan = Conv2dPlan::new(&s, &w, None).unwrap();
    let mut out = vec![0.0; s.output_len().unwrap()];
    assert!(matches!(plan.run(&[0.0; 5], &mut out), Err(Error::Length { buffer: "input", .. })));
    let input = vec![0.0; s.input_len().unwrap()];
    assert!(matches!(plan.run(&input, &mut out[1..]), Err(Error::Length { buffer: "output", .. })));
    let b = Conv2dPlan::builder(&s);
    assert!(matches!(b.clone().kernel("no_such_kernel").build(&w, None), Err(Error::Unsupported { .. })));
    assert!(matches!(b.clone().kernel("direct_k3x3s2_ow6_oc2v").build(&w, None), Err(Error::Unsupported { .. })));
    assert!(matches!(b.clone().algorithm(Algorithm::Depthwise).build(&w, None), Err(Error::Unsupported { .. })));
    assert!(matches!(b.algorithm(Algorithm::Gemm1x1).build(&w, None), Err(Error::Unsupported { .. })));
    for isa in Isa::ALL.into_iter().filter(|i| !i.supports()) {
        assert!(matches!(Conv2dPlan::builder(&s).isa(isa).build(&w, None), Err(Error::Unsupported { .. })));
    }
}

/// `SVERKA_ISA` values parse case-insensitively; the active level never exceeds the best
/// one the CPU has, and every level up to the best is supported.
#[test]
fn isa_levels() {
    assert_eq!(Isa::parse("AVX2"), Some(Isa::Avx2));
    assert_eq!(Isa::parse(" portable "), Some(Isa::Portable));
    assert_eq!(Isa::parse("avx512"), Some(Isa::Avx512));
    assert_eq!(Isa::parse("sse9"), None);
    assert!(Isa::active() <= Isa::best());
    assert!(Isa::ALL.iter().filter(|&&i| i <= Isa::best()).all(|i| i.supports()));
    assert_eq!(Isa::ALL.map(Isa::lanes), [8, 8, 16]);
}

/// A plan can be shared and sent across threads.
#[test]
fn plan_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Conv2dPlan>();
}
