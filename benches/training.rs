//! M1 of DESIGN §5: one training step of the MNIST CNN (`sverka::nn::models::mnist_cnn`)
//! on a batch of 64 — forward in training mode, softmax cross-entropy, backward, SGD with
//! momentum 0.9 — at 1 and all threads.
//!
//! The RESULT line gives the median step time and GFLOP/s counting 3x the forward
//! multiply-adds of the convolutions and linear layers (forward, input gradient, weight
//! gradient); images/s = 64 / step time.

mod common;

use std::time::Duration;

use common::{Work, bench, data, mnist_convs};
use criterion::{Criterion, criterion_group, criterion_main};
use sverka::nn::{self, Layer, Mode, Optimizer, Tensor};
use sverka::rng::SplitMix64;

const BATCH: usize = 64;

/// Floating-point operations of one M1 training step (see the module doc).
fn step_flops() -> f64 {
    let convs: f64 = mnist_convs(BATCH).iter().map(|s| s.flops().unwrap()).sum();
    let linears = 2.0 * BATCH as f64 * (3136.0 * 128.0 + 128.0 * 10.0);
    3.0 * (convs + linears)
}

fn m1_step(c: &mut Criterion) {
    let mut rng = SplitMix64::new(1);
    let mut model = nn::models::mnist_cnn(&mut rng).unwrap();
    let x = Tensor::new([BATCH, 1, 28, 28], data(BATCH * 784, 2).iter().map(|v| v.abs()).collect()).unwrap();
    let labels: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();
    let mut opt = nn::Sgd::new(0.01).momentum(0.9);
    let flops = step_flops();
    bench(c, "M1 mnist_cnn train step", Work::Flops(flops, format!("batch {BATCH}")), || {
        model.zero_grad();
        let logits = model.forward(&x, Mode::Train).unwrap();
        let loss = nn::softmax_cross_entropy(&logits, &labels).unwrap();
        model.backward(&loss.grad).unwrap();
        opt.step(&mut model.params_mut()).unwrap();
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = m1_step }
criterion_main!(benches);
