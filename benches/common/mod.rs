//! Shared bench helpers: the FMA peak probe, a per-sample timer for criterion, and the
//! GFLOP/s / GB/s report lines.
#![allow(dead_code)] // each bench binary uses part of this module

use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod peak;

/// `(id, N, C, H=W, K, kernel, stride, pad, dilation, groups)` of DESIGN §5.
pub const SHAPES: [(&str, [usize; 9]); 9] = [
    ("S1", [64, 1, 28, 32, 3, 1, 1, 1, 1]),
    ("S2", [64, 32, 14, 64, 3, 1, 1, 1, 1]),
    ("S3", [1, 64, 56, 64, 3, 1, 1, 1, 1]),
    ("S4", [1, 64, 56, 128, 3, 2, 1, 1, 1]),
    ("S5", [1, 256, 28, 256, 1, 1, 0, 1, 1]),
    ("S6", [1, 64, 56, 64, 3, 1, 2, 2, 1]),
    ("S7", [8, 32, 32, 64, 5, 1, 2, 1, 1]),
    ("S8", [1, 3, 224, 64, 7, 2, 3, 1, 1]),
    ("S9", [1, 256, 56, 256, 3, 1, 1, 1, 256]),
];

/// The conv2d spec of a [`SHAPES`] row.
pub fn shape_spec([n, ch, hw, k, kern, stride, pad, dil, groups]: [usize; 9]) -> sverka::Conv2dSpec {
    sverka::Conv2dSpec {
        batch: n,
        in_channels: ch,
        out_channels: k,
        input: [hw, hw],
        kernel: [kern, kern],
        stride: [stride, stride],
        padding: sverka::Padding::uniform(pad),
        dilation: [dil, dil],
        groups,
    }
}

/// Input, weight and bias of `s` (seeds 1, 2, 3): the data every conv2d bench of the shape
/// suite times, so that `conv2d` and `peer_blocks` measure the same run.
pub fn conv_data(s: &sverka::Conv2dSpec) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    (data(s.input_len().unwrap(), 1), data(s.weight_len().unwrap(), 2), data(s.out_channels, 3))
}

/// A plan builder for `s`, with the kernel and algorithm forced by `SVERKA_BENCH_KERNEL`
/// and `SVERKA_BENCH_ALGORITHM` when set (to time a path the planner would not take).
pub fn env_builder(s: &sverka::Conv2dSpec) -> sverka::Conv2dPlanBuilder {
    let mut builder = sverka::Conv2dPlan::builder(s);
    if let Ok(name) = std::env::var("SVERKA_BENCH_KERNEL") {
        builder = builder.kernel(&name);
    }
    if let Ok(name) = std::env::var("SVERKA_BENCH_ALGORITHM") {
        let algorithm = sverka::Algorithm::ALL.into_iter().find(|a| a.name() == name).expect("algorithm name");
        builder = builder.algorithm(algorithm);
    }
    builder
}

/// A rayon pool of `threads` workers to run the timed calls in.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool")
}

/// Per-iteration times collected from criterion's samples (`iter_custom`), so the report
/// line quotes the same measurements criterion analysed.
#[derive(Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Times `iters` calls of `f` inside `pool`, records the mean of this sample, returns
    /// the total.
    pub fn time(&mut self, pool: &rayon::ThreadPool, iters: u64, mut f: impl FnMut() + Send) -> Duration {
        let total = pool.install(|| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed()
        });
        self.0.push(total.as_secs_f64() / iters as f64);
        total
    }

    /// Median seconds per iteration over the samples; `None` if the bench was filtered out.
    pub fn median(&self) -> Option<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
}

/// Prints one result line for a compute-bound op: median time, GFLOP/s and % of the
/// measured FMA peak for `threads` threads.
pub fn report_flops(id: &str, threads: usize, flops: f64, samples: &Samples, detail: &str) {
    let Some(secs) = samples.median() else { return };
    let gflops = flops / secs / 1e9;
    let peak = peak::gflops(threads);
    println!(
        "RESULT {id:<28} threads={threads} median={:>9.3} ms {:>8.1} GFLOP/s {:>5.1}% of peak ({:.0} GFLOP/s) {detail}",
        secs * 1e3,
        gflops,
        100.0 * gflops / peak,
        peak
    );
}

/// Prints one result line for a memory-bound op: median time and GB/s moved.
pub fn report_bytes(id: &str, threads: usize, bytes: f64, samples: &Samples) {
    let Some(secs) = samples.median() else { return };
    println!("RESULT {id:<28} threads={threads} median={:>9.3} ms {:>8.1} GB/s", secs * 1e3, bytes / secs / 1e9);
}

/// The two convolutions of the MNIST CNN (`nn::models::mnist_cnn`) at batch `batch`: 3x3
/// "same", 1 -> 32 channels on 28x28 (S1 of DESIGN §5 at batch 64) and 32 -> 64 on 14x14
/// (S2).
pub fn mnist_convs(batch: usize) -> [sverka::Conv2dSpec; 2] {
    let conv = |in_channels, out_channels, hw| sverka::Conv2dSpec {
        batch,
        in_channels,
        out_channels,
        input: [hw, hw],
        kernel: [3, 3],
        stride: [1, 1],
        padding: sverka::Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
    };
    [conv(1, 32, 28), conv(32, 64, 14)]
}

/// Deterministic pseudo-random data in [-1, 1).
pub fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = sverka::rng::SplitMix64::new(seed);
    (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

/// Thread counts to bench: 1 and all cores (if more than 1).
pub fn thread_counts() -> Vec<usize> {
    static COUNTS: OnceLock<Vec<usize>> = OnceLock::new();
    COUNTS
        .get_or_init(|| {
            let all = std::thread::available_parallelism().map_or(1, |n| n.get());
            if all > 1 { vec![1, all] } else { vec![1] }
        })
        .clone()
}

/// What a bench measures: flops of one call (with a descriptor), or bytes moved by one call.
pub enum Work {
    Flops(f64, String),
    Bytes(f64),
}

/// Benches `f` at every thread count under `id`, then prints its RESULT line.
pub fn bench(c: &mut criterion::Criterion, id: &str, work: Work, mut f: impl FnMut() + Send) {
    for threads in thread_counts() {
        let (mut samples, pool) = (Samples::default(), pool(threads));
        c.bench_function(&format!("{id}/t{threads}"), |b| b.iter_custom(|iters| samples.time(&pool, iters, &mut f)));
        match &work {
            Work::Flops(flops, detail) => report_flops(id, threads, *flops, &samples, detail),
            Work::Bytes(bytes) => report_bytes(id, threads, *bytes, &samples),
        }
    }
}
