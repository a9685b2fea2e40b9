//! conv2d forward over the shape suite S1–S9 of DESIGN §5, at 1 and all threads.
//!
//! Times `Conv2dPlan::run` (weights packed once, like a peer's prepared session), and
//! prints per shape and thread count a `RESULT` line: the median of criterion's samples,
//! GFLOP/s, % of the FMA peak measured by `common::peak`, and the plan (algorithm,
//! kernel, ISA). GFLOP/s always count the direct convolution's operations, so a Winograd
//! plan (fewer multiplications) reports effective figures that can exceed the peak.
//! `SVERKA_ISA=avx2|portable` benches the lower ISAs;
//! `SVERKA_BENCH_KERNEL=<kernel name>` and `SVERKA_BENCH_ALGORITHM=<algorithm name>`
//! force a choice (to compare tiles; shapes the forced choice does not fit are skipped).
//! Filter shapes with criterion's usual argument, e.g. `cargo bench --bench conv2d -- S3`.
//!
//! A second group expands the kernel registry (`sverka::for_each_kernel!`): every
//! generated kernel of the active ISA on one problem of its geometry (64 -> 64 channels,
//! 28x28, its kernel size, or 5x5 for the any-size kernels; 1x1 256 -> 256 for GEMM;
//! 3x3 3 -> 64 for the indirect GEMM), one thread, so tiles can be compared
//! (`cargo bench --bench conv2d -- kernel/`).

mod common;

use std::time::Duration;

use common::{SHAPES, Samples, conv_data, data, env_builder, pool, report_flops, shape_spec, thread_counts};
use criterion::{Criterion, criterion_group, criterion_main};
use sverka::kernels::KERNELS;
use sverka::{Conv2dPlan, Conv2dSpec, Isa, Padding};

fn conv2d(c: &mut Criterion) {
    for (id, shape) in SHAPES {
        let s = shape_spec(shape);
        let (x, w, b) = conv_data(&s);
        let mut y = vec![0.0; s.output_len().unwrap()];
        let flops = s.flops().unwrap();
        for threads in thread_counts() {
            let pool = pool(threads);
            // The plan sizes its per-thread scratch for the pool it is built in.
            let builder = env_builder(&s);
            let Ok(mut plan) = pool.install(|| builder.build(&w, Some(&b))) else {
                println!("SKIP {id}: the forced kernel/algorithm does not fit");
                continue;
            };
            let mut samples = Samples::default();
            c.bench_function(&format!("{id} conv2d/t{threads}"), |bench| {
                bench.iter_custom(|iters| samples.time(&pool, iters, || plan.run(&x, &mut y).unwrap()))
            });
            report_flops(&format!("{id} conv2d"), threads, flops, &samples, &plan.to_string());
        }
    }
}

/// One generated kernel, forced through the plan builder, on a problem of its geometry.
fn kernel(c: &mut Criterion, name: &str) {
    let k = KERNELS.iter().find(|k| k.name == name).expect("registry entry");
    let isa = Isa::active();
    if !k.has_isa(isa) {
        return;
    }
    // (input channels, output channels, kernel size, stride, padding)
    let (ic, oc, kern, stride, pad) = match (k.kernel, k.stride) {
        // The indirect GEMM is for few input channels (S1, S8-like stems).
        (_, 0) if k.indirect => (3, 64, 3, 1, 1),
        (_, 0) => (256, 256, 1, 1, 0),
        ([0, 0], s) => (64, 64, 5, s, 2),
        ([kk, _], s) => (64, 64, kk, s, kk / 2),
    };
    let s = Conv2dSpec {
        batch: 1,
        in_channels: ic,
        out_channels: oc,
        input: [28, 28],
        kernel: [kern, kern],
        stride: [stride, stride],
        padding: Padding::uniform(pad),
        dilation: [1, 1],
        groups: 1,
    };
    let (x, w) = (data(s.input_len().unwrap(), 1), data(s.weight_len().unwrap(), 2));
    let mut y = vec![0.0; s.output_len().unwrap()];
    let pool = pool(1);
    let mut plan = pool.install(|| Conv2dPlan::builder(&s).kernel(name).build(&w, None)).unwrap();
    let mut samples = Samples::default();
    c.bench_function(&format!("kernel/{name}"), |bench| {
        bench.iter_custom(|iters| samples.time(&pool, iters, || plan.run(&x, &mut y).unwrap()))
    });
    report_flops(&format!("kernel/{name}"), 1, s.flops().unwrap(), &samples, &plan.to_string());
}

fn kernels(c: &mut Criterion) {
    macro_rules! bench_kernel {
        ($name:ident, $family:ident, $kernel:expr, $stride:expr, $rows:expr, $vectors:expr) => {
            kernel(c, stringify!($name));
        };
    }
    sverka::for_each_kernel!(bench_kernel);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = conv2d, kernels }
criterion_main!(benches);
