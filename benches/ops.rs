//! Benches for every op except conv2d forward (benches/conv2d.rs): transposed
//! convolution (T1, T2 of DESIGN §5), conv2d backward on the MNIST CNN shapes (S1, S2),
//! pooling (P1, P2), BatchNorm2d (B1) and Dropout2d (on B1's shape), at 1 and all threads.
//!
//! Each result prints a `RESULT` line: median time per call (the median of criterion's
//! samples), GFLOP/s and % of the measured FMA peak for convolutions, GB/s for the
//! memory-bound ops (counting one read of each input and one write of each output).

mod common;

use std::time::Duration;

use common::{Work, bench, data, mnist_convs};
use criterion::{Criterion, criterion_group, criterion_main};
use sverka::*;

const F32: f64 = std::mem::size_of::<f32>() as f64;

fn transposed(c: &mut Criterion) {
    let t1 = ConvTranspose2dSpec {
        batch: 16,
        in_channels: 64,
        out_channels: 32,
        input: [14, 14],
        kernel: [4, 4],
        stride: [2, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
        output_padding: [0, 0],
    };
    let t2 = ConvTranspose2dSpec {
        batch: 64,
        in_channels: 32,
        out_channels: 16,
        input: [7, 7],
        kernel: [3, 3],
        stride: [2, 2],
        padding: Padding::uniform(1),
        dilation: [1, 1],
        groups: 1,
        output_padding: [1, 1],
    };
    for (id, s) in [("T1", t1), ("T2", t2)] {
        let x = data(s.input_len().unwrap(), 1);
        let w = data(s.weight_len().unwrap(), 2);
        let b = data(s.out_channels, 3);
        let mut y = vec![0.0; s.output_len().unwrap()];
        let flops = Work::Flops(s.flops().unwrap(), s.to_string());
        bench(c, &format!("{id} conv_transpose2d"), flops, || conv_transpose2d(&s, &x, &w, Some(&b), &mut y).unwrap());
    }
}

fn conv_backward(c: &mut Criterion) {
    for (id, s) in ["S1", "S2"].into_iter().zip(mnist_convs(64)) {
        let x = data(s.input_len().unwrap(), 1);
        let w = data(s.weight_len().unwrap(), 2);
        let dy = data(s.output_len().unwrap(), 3);
        let (mut dx, mut dw, mut db) = (x.clone(), w.clone(), vec![0.0; s.out_channels]);
        let flops = s.flops().unwrap();
        bench(c, &format!("{id} conv2d_backward_input"), Work::Flops(flops, s.to_string()), || {
            conv2d_backward_input(&s, &dy, &w, &mut dx).unwrap()
        });
        bench(c, &format!("{id} conv2d_backward_weight"), Work::Flops(flops, s.to_string()), || {
            conv2d_backward_weight(&s, &x, &dy, &mut dw, Some(&mut db)).unwrap()
        });
    }
}

fn pooling(c: &mut Criterion) {
    let p1 = Pool2dSpec {
        batch: 64,
        channels: 32,
        input: [28, 28],
        kernel: [2, 2],
        stride: [2, 2],
        padding: Padding::ZERO,
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let p2 =
        Pool2dSpec { batch: 1, channels: 64, input: [112, 112], kernel: [3, 3], padding: Padding::uniform(1), ..p1 };
    for (id, s) in [("P1", p1), ("P2", p2)] {
        let x = data(s.input_len().unwrap(), 1);
        let mut y = vec![0.0; s.output_len().unwrap()];
        let mut ix = vec![0u32; y.len()];
        let (x_bytes, y_bytes) = (x.len() as f64 * F32, y.len() as f64 * F32);
        bench(c, &format!("{id} max_pool2d+indices"), Work::Bytes(x_bytes + 2.0 * y_bytes), || {
            max_pool2d(&s, &x, &mut y, Some(&mut ix)).unwrap()
        });
        let mut dx = x.clone();
        bench(c, &format!("{id} max_pool2d_backward"), Work::Bytes(x_bytes + 2.0 * y_bytes), || {
            max_pool2d_backward(&s, &y, &ix, &mut dx).unwrap()
        });
        bench(c, &format!("{id} avg_pool2d"), Work::Bytes(x_bytes + y_bytes), || avg_pool2d(&s, &x, &mut y).unwrap());
    }
}

fn channelwise(c: &mut Criterion) {
    let s = BatchNorm2dSpec::new(64, 64, [28, 28]);
    let len = s.input_len().unwrap();
    let x = data(len, 1);
    let (gamma, beta) = (vec![1.5; 64], vec![0.5; 64]);
    let (mut rm, mut rv, mut sm, mut si) = (vec![0.0; 64], vec![1.0; 64], vec![0.0; 64], vec![0.0; 64]);
    let mut y = vec![0.0; len];
    let bytes = 2.0 * len as f64 * F32;
    bench(c, "B1 batch_norm2d_train", Work::Bytes(bytes), || {
        batch_norm2d_train(&s, &x, &gamma, &beta, &mut rm, &mut rv, &mut y, &mut sm, &mut si).unwrap()
    });
    let (mut dx, mut dg, mut db) = (vec![0.0; len], vec![0.0; 64], vec![0.0; 64]);
    bench(c, "B1 batch_norm2d_backward", Work::Bytes(3.0 * len as f64 * F32), || {
        batch_norm2d_backward(&s, &x, &y, &gamma, &sm, &si, &mut dx, &mut dg, &mut db).unwrap()
    });
    let d = Dropout2dSpec { batch: 64, channels: 64, input: [28, 28], p: 0.25 };
    let mut scale = vec![0.0; 64 * 64];
    bench(c, "B1 dropout2d", Work::Bytes(bytes), || dropout2d(&d, 42, &x, &mut y, &mut scale).unwrap());
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = transposed, conv_backward, pooling, channelwise }
criterion_main!(benches);
