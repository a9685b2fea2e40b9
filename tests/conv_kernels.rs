//! Every generated kernel × every ISA the host has, against `sverka::reference::conv2d`:
//! sweeps over every tail of the tile (output pixels / channels / input channels), with NaN
//! canaries around the output. Kernels are reached through the safe plan API with the
//! kernel and ISA forced (`Conv2dPlan::builder(..).isa(..).kernel(..)`).
//!
//! An ISA the CPU lacks is skipped with a message; `SVERKA_REQUIRE_ISA=avx512` (or
//! `avx2`) turns that skip into a failure.

use sverka::kernels::{Family, KERNELS, KernelInfo};
use sverka::{Algorithm, Conv2dPlan, Conv2dPlanBuilder, Conv2dSpec, Isa, Padding};

/// The ISAs to test a kernel on: the ones it is compiled for that the CPU supports.
fn isas(k: &KernelInfo) -> Vec<Isa> {
    let required = std::env::var("SVERKA_REQUIRE_ISA").ok().and_then(|v| Isa::parse(&v));
    Isa::ALL
        .into_iter()
        .filter(|&isa| k.has_isa(isa))
        .filter(|&isa| {
            if isa.supports() {
                return true;
            }
            assert!(required.is_none_or(|r| isa > r), "SVERKA_REQUIRE_ISA: {isa} required but not supported");
            println!("skipping {} on {isa}: not supported by this CPU", k.name);
            false
        })
        .collect()
}

/// Deterministic pseudo-random values in [-1, 1).
fn fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Builds a plan of `spec` with `builder` (and ReLU if `relu`), checks that it runs
/// `algorithm`, runs it on random data with NaN canaries around the output and checks
/// every element against the reference: `|fast - ref| <= 1e-5 * sum|a_i*b_i| + 1e-6`.
fn check(spec: &Conv2dSpec, builder: Conv2dPlanBuilder, algorithm: Algorithm, relu: bool) {
    let (il, wl, ol) = (spec.input_len().unwrap(), spec.weight_len().unwrap(), spec.output_len().unwrap());
    let input = fill(il, il as u64 + 7);
    let weight = fill(wl, wl as u64 + 13);
    let bias = fill(spec.out_channels, 3);
    let mut plan = builder.relu(relu).build(&weight, Some(&bias)).unwrap();
    assert_eq!(plan.algorithm(), algorithm, "{plan}");
    const CANARY: usize = 37;
    let mut buf = vec![f32::NAN; ol + 2 * CANARY];
    plan.run(&input, &mut buf[CANARY..CANARY + ol]).unwrap();
    assert!(buf[..CANARY].iter().chain(&buf[CANARY + ol..]).all(|v| v.is_nan()), "{plan}: wrote outside the output");
    let out = &buf[CANARY..CANARY + ol];
    let mut expect = vec![0.0; ol];
    sverka::reference::conv2d(spec, &input, &weight, Some(&bias), &mut expect).unwrap();
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let mut scale = vec![0.0; ol];
    sverka::reference::conv2d(spec, &abs(&input), &abs(&weight), Some(&abs(&bias)), &mut scale).unwrap();
    for i in 0..ol {
        let e = if relu { expect[i].max(0.0) } else { expect[i] };
        assert!((out[i] - e).abs() <= 1e-5 * scale[i] + 1e-6, "{plan}: output[{i}] = {} expected {e}", out[i]);
    }
}

fn spec(c: usize, k: usize, hw: [usize; 2], kernel: [usize; 2], stride: usize, pad: Padding, dil: usize) -> Conv2dSpec {
    Conv2dSpec {
        batch: 1,
        in_channels: c,
        out_channels: k,
        input: hw,
        kernel,
        stride: [stride; 2],
        padding: pad,
        dilation: [dil; 2],
        groups: 1,
    }
}

/// The any-size stride-1 channel-block kernels also run Winograd's 16 (25 at stride 2) products: forced
/// under `Algorithm::Winograd` on 3x3 and 5x5 problems (tile counts around the tile
/// width, channel counts around the lane count and channel block).
fn winograd_sweep(k: &KernelInfo) {
    for isa in isas(k) {
        let (l, ob) = (isa.lanes(), k.vectors * isa.lanes());
        for (i, (kern, w)) in [(3, 2 * k.rows - 1), (3, 4 * k.rows + 2), (5, 2 * k.rows + 1)].into_iter().enumerate() {
            for (oc, ic) in [(ob - 1, l / 2), (ob + 1, l + 3)] {
                let pad = Padding::uniform(kern / 2);
                let s = spec(ic, oc, [5 + i, w], [kern, kern], 1, pad, 1);
                let relu = i == 1;
                let builder = Conv2dPlan::builder(&s).isa(isa).algorithm(Algorithm::Winograd).kernel(k.name);
                check(&s, builder, Algorithm::Winograd, relu);
            }
        }
        // Stride 2 (3x3): 2T + 1 outputs a row (T + 1 tiles, the last one partial) and
        // 4T + 2 (2T + 1 tiles: a last group of tiles narrower than the kernel's T).
        for (i, w) in [4 * k.rows + 1, 8 * k.rows + 4].into_iter().enumerate() {
            for (oc, ic) in [(ob - 1, l / 2), (ob + 1, l + 3)] {
                let s = spec(ic, oc, [9 + i, w], [3, 3], 2, Padding::uniform(1), 1);
                let builder = Conv2dPlan::builder(&s).isa(isa).algorithm(Algorithm::Winograd).kernel(k.name);
                check(&s, builder, Algorithm::Winograd, i == 1);
            }
        }
    }
}

/// Direct kernel sweep: output widths 1..=T+1 and 2T+3, output channels around the
/// channel block, input channels around the lane count, dilation 1 and 2, asymmetric
/// padding, fused ReLU on some cases.
fn direct_sweep(k: &KernelInfo) {
    for isa in isas(k) {
        let l = isa.lanes();
        let ob = k.vectors * l;
        let kernels: &[[usize; 2]] = if k.kernel == [0, 0] { &[[1, 1], [2, 3], [5, 5]] } else { &[[3, 3]] };
        let mut case = 0;
        for &kern in kernels {
            let widths: Vec<usize> = (1..=k.rows + 1).chain([2 * k.rows + 3]).collect();
            for &ow in &widths {
                // Planar kernels also take 1 and 3 input channels (no channel blocks).
                let few: &[(usize, usize)] = if k.planar { &[(ob, 1), (ob + 1, 3)] } else { &[] };
                let channels = [(1, l / 2), (ob - 1, l - 1), (ob, l), (ob + 1, l + 1), (2 * ob + 3, 2 * l + 3)];
                for &(oc, ic) in few.iter().chain(&channels) {
                    case += 1;
                    let dil = 1 + case % 2;
                    let pad = Padding { top: case % 3, bottom: 1, left: case % 2, right: (case / 2) % 3 };
                    // Input width giving `ow` outputs: (iw + pl + pr - ext) / s + 1 = ow.
                    let ext = |kk: usize| dil * (kk - 1) + 1;
                    let iw = ((ow - 1) * k.stride + ext(kern[1])).saturating_sub(pad.left + pad.right).max(1);
                    let ih = (2 * k.stride + ext(kern[0])).saturating_sub(pad.top + pad.bottom).max(1);
                    let s = spec(ic, oc, [ih, iw], kern, k.stride, pad, dil);
                    if s.output().is_err() {
                        continue;
                    }
                    let relu = case % 4 == 0;
                    check(&s, Conv2dPlan::builder(&s).isa(isa).kernel(k.name), Algorithm::Direct, relu);
                }
            }
        }
    }
}

/// GEMM kernel sweep through the implicit GEMM (3x3, stride 2, padding) and the 1x1
/// path: output channels 1..=MR+1, pixel counts covering every vector tail, the panel
/// width and a last panel of every vector count (run on the tile's tails), also over
/// several KC slices.
fn gemm_sweep(k: &KernelInfo) {
    for isa in isas(k) {
        let l = isa.lanes();
        let nr = k.vectors * l;
        let last_panels = (1..k.vectors).map(|v| nr + v * l + 1);
        let pixels: Vec<usize> = (1..=l).chain([nr - 1, nr, nr + 1, 2 * nr + 3]).chain(last_panels).collect();
        for oc in 1..=k.rows + 1 {
            for (i, &p) in pixels.iter().enumerate() {
                let relu = i % 3 == 0;
                let s1 = spec(3 + oc % 2, oc, [1, p], [1, 1], 1, Padding::ZERO, 1);
                check(&s1, Conv2dPlan::builder(&s1).isa(isa).kernel(k.name), Algorithm::Gemm1x1, relu);
                let s3 = spec(2, oc, [3, 2 * p - 1], [3, 3], 2, Padding { top: 1, bottom: 2, left: 1, right: 1 }, 1);
                let builder = Conv2dPlan::builder(&s3).isa(isa).algorithm(Algorithm::ImplicitGemm).kernel(k.name);
                check(&s3, builder, Algorithm::ImplicitGemm, relu);
            }
        }
        // 400 input channels: more than one KC slice (C read back between slices), with a
        // last panel of every vector count, with and without ReLU.
        for v in 0..k.vectors {
            for relu in [false, true] {
                let s = spec(400, k.rows + 1, [1, nr + v * l + 1], [1, 1], 1, Padding::ZERO, 1);
                check(&s, Conv2dPlan::builder(&s).isa(isa).kernel(k.name), Algorithm::Gemm1x1, relu);
            }
        }
    }
}

/// Indirect GEMM kernel sweep through the indirect GEMM algorithm: output channels
/// 1..=MR+1 and 2 MR + 3, output widths covering every vector tail and the panel width,
/// 1 to lanes/2 - 1 input channels, kernels 1x1, 3x3 and 2x5, row stride 1 and 2,
/// dilation, asymmetric padding.
fn indirect_sweep(k: &KernelInfo) {
    for isa in isas(k) {
        let l = isa.lanes();
        let nr = k.vectors * l;
        let widths: Vec<usize> = (1..=l).chain([nr - 1, nr, nr + 1, 2 * nr + 3]).collect();
        let mut case = 0;
        for oc in (1..=k.rows + 1).chain([2 * k.rows + 3]) {
            for &ow in &widths {
                for kern in [[1, 1], [3, 3], [2, 5]] {
                    case += 1;
                    let (ic, dil, sh) = (1 + case % (l / 2 - 1), 1 + case % 2, 1 + (case / 2) % 2);
                    let pad = Padding { top: case % 3, bottom: 1, left: case % 2, right: (case / 3) % 3 };
                    let ext = |kk: usize| dil * (kk - 1) + 1;
                    let iw = (ow - 1 + ext(kern[1])).saturating_sub(pad.left + pad.right).max(1);
                    let ih = (2 * sh + ext(kern[0])).saturating_sub(pad.top + pad.bottom).max(1);
                    let s = Conv2dSpec { stride: [sh, 1], ..spec(ic, oc, [ih, iw], kern, 1, pad, dil) };
                    if s.output().is_err() {
                        continue;
                    }
                    let relu = case % 4 == 0;
                    check(&s, Conv2dPlan::builder(&s).isa(isa).kernel(k.name), Algorithm::IndirectGemm, relu);
                }
            }
        }
    }
}

macro_rules! kernel_test {
    ($name:ident, $family:ident, $kernel:expr, $stride:expr, $rows:expr, $vectors:expr) => {
        #[test]
        fn $name() {
            let k = KERNELS.iter().find(|k| k.name == stringify!($name)).unwrap();
            assert_eq!((k.kernel, k.stride, k.rows, k.vectors), ($kernel, $stride, $rows, $vectors));
            match k.family {
                Family::Direct if k.kernel == [0, 0] && k.stride == 1 && !k.planar => {
                    direct_sweep(k);
                    winograd_sweep(k)
                }
                Family::Direct => direct_sweep(k),
                Family::Gemm if k.indirect => indirect_sweep(k),
                Family::Gemm => gemm_sweep(k),
            }
        }
    };
}

sverka::for_each_kernel!(kernel_test);

/// The depthwise kernel (not generated) on every ISA: row widths around 1 and 4 vectors;
/// heights 5 and 19 (odd counts of 2-row blocks, a partial last block); 3x3 with and
/// without dilation, asymmetric padding, a 2x5 kernel.
#[test]
fn depthwise_kernel() {
    for isa in Isa::ALL {
        if !isa.supports() {
            println!("skipping depthwise on {isa}: not supported by this CPU");
            continue;
        }
        let l = isa.lanes();
        let widths = (1..=l + 1).chain([4 * l - 1, 4 * l, 4 * l + 1, 5 * l + 3]);
        for (h, w) in [5, 19].into_iter().flat_map(|h| widths.clone().map(move |w| (h, w))) {
            // 3x3 without dilation takes the unrolled blocks; the rest the tap loops.
            let asym = Padding { top: 0, bottom: 2, left: 2, right: 0 };
            for (kern, dil, pad) in [
                ([3, 3], 1, Padding::uniform(1)),
                ([3, 3], 1, asym),
                ([3, 3], 2, Padding::uniform(2)),
                ([2, 5], 2, Padding { top: 0, bottom: 2, left: 3, right: 1 }),
            ] {
                let s = Conv2dSpec { groups: 5, ..spec(5, 5, [h, w], kern, 1, pad, dil) };
                if s.output().is_err() {
                    continue;
                }
                let relu = w % 2 == 0;
                check(&s, Conv2dPlan::builder(&s).isa(isa), Algorithm::Depthwise, relu);
            }
        }
    }
}
