//! Every layer's backward against central finite differences through the `Layer` API,
//! plus shapes, parameter counts, the summary's receptive fields and misuse errors.

use sverka::nn::{
    self, AvgPool2d, BatchNorm2d, ConvOptions, Dropout2d, Flatten, Layer, Linear, MaxPool2d, Mode, PoolOptions, ReLU,
    Sequential, Sigmoid, Tensor,
};
use sverka::rng::SplitMix64;

/// A tensor of `shape` with values uniform in `[-1, 1)`.
fn random(shape: [usize; 4], seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    let len = shape.iter().product();
    Tensor::new(shape, (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()).unwrap()
}

/// `sum(y * r)` in f64: the scalar whose gradient the checks compare.
fn dot(y: &Tensor, r: &Tensor) -> f64 {
    y.data().iter().zip(r.data()).map(|(&a, &b)| a as f64 * b as f64).sum()
}

/// Up to 40 evenly spread indices of `0..len`.
fn sample(len: usize) -> impl Iterator<Item = usize> {
    let step = len.div_ceil(40).max(1);
    (0..len).step_by(step)
}

fn assert_close(what: &str, numeric: f64, analytic: f32, tol: f64) {
    let err = (numeric - analytic as f64).abs();
    assert!(
        err <= tol * (1.0 + numeric.abs()),
        "{what}: finite difference {numeric}, backward {analytic}, error {err}"
    );
}

/// Checks the input gradient and every parameter gradient of `make()` at `x` against
/// central differences of `sum(forward(x) * r)`. Each evaluation uses a fresh `make()`, so
/// random layers (Dropout2d) repeat their mask.
fn check_gradients<L: Layer>(make: impl Fn() -> L, x: &Tensor, mode: Mode, eps: f32, tol: f64) {
    let mut layer = make();
    let y = layer.forward(x, mode).unwrap();
    let r = random(y.shape(), 99);
    let grad_in = layer.backward(&r).unwrap();
    assert_eq!(grad_in.shape(), x.shape());
    let loss_at = |x: &Tensor, param: Option<(usize, usize, f32)>| {
        let mut fresh = make();
        if let Some((p, i, delta)) = param {
            fresh.params_mut()[p].value_mut()[i] += delta;
        }
        dot(&fresh.forward(x, mode).unwrap(), &r)
    };
    for i in sample(x.len()) {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus.data_mut()[i] += eps;
        minus.data_mut()[i] -= eps;
        let numeric = (loss_at(&plus, None) - loss_at(&minus, None)) / (2.0 * eps as f64);
        assert_close(&format!("{} input[{i}]", layer.describe()), numeric, grad_in.data()[i], tol);
    }
    for (p, param) in layer.params().iter().enumerate() {
        for i in sample(param.len()) {
            let numeric = (loss_at(x, Some((p, i, eps))) - loss_at(x, Some((p, i, -eps)))) / (2.0 * eps as f64);
            assert_close(&format!("{} {}[{i}]", layer.describe(), param.name()), numeric, param.grad()[i], tol);
        }
    }
}

fn rng() -> SplitMix64 {
    SplitMix64::new(5)
}

#[test]
fn conv2d_gradients() {
    let opts = ConvOptions::new(4, 6, 3).stride(2).padding(1).dilation(2).groups(2);
    check_gradients(|| nn::Conv2d::new(opts, &mut rng()).unwrap(), &random([2, 4, 7, 6], 1), Mode::Train, 1e-2, 2e-3);
    let plain = ConvOptions::new(3, 2, 2).bias(false);
    check_gradients(|| nn::Conv2d::new(plain, &mut rng()).unwrap(), &random([1, 3, 5, 5], 2), Mode::Train, 1e-2, 2e-3);
}

#[test]
fn conv_transpose2d_gradients() {
    let opts = ConvOptions::new(4, 3, 3).stride(2).padding(1).output_padding(1);
    check_gradients(
        || nn::ConvTranspose2d::new(opts, &mut rng()).unwrap(),
        &random([2, 4, 4, 3], 3),
        Mode::Train,
        1e-2,
        2e-3,
    );
}

#[test]
fn pooling_gradients() {
    // Distinct values at least 0.01 apart, so a perturbation of 1e-3 never changes the argmax.
    let mut values: Vec<f32> = (0..2 * 3 * 6 * 5).map(|i| i as f32 * 0.01).collect();
    SplitMix64::new(4).shuffle(&mut values);
    let x = Tensor::new([2, 3, 6, 5], values).unwrap();
    let max = PoolOptions::new(3).stride(2).padding(1).ceil_mode(true);
    check_gradients(|| MaxPool2d::new(max), &x, Mode::Train, 1e-3, 2e-3);
    let avg = PoolOptions::new(2).stride(1).padding(1).count_include_pad(false);
    check_gradients(|| AvgPool2d::new(avg), &random([2, 3, 5, 4], 5), Mode::Train, 1e-2, 2e-3);
}

#[test]
fn batch_norm2d_gradients_train_and_eval() {
    let x = random([3, 4, 3, 2], 6);
    let make = || {
        let mut bn = BatchNorm2d::new(4).unwrap();
        let mut r = SplitMix64::new(8);
        for p in bn.params_mut() {
            p.value_mut().iter_mut().for_each(|v| *v += r.uniform(-0.5, 0.5));
        }
        // Non-trivial running statistics for eval mode.
        bn.forward(&random([3, 4, 3, 2], 7).map(|v| 2.0 * v + 1.0), Mode::Train).unwrap();
        bn
    };
    check_gradients(make, &x, Mode::Train, 1e-2, 5e-3);
    check_gradients(make, &x, Mode::Eval, 1e-2, 2e-3);
}

#[test]
fn dropout2d_gradients_and_semantics() {
    let x = random([3, 5, 2, 2], 9);
    let make = || Dropout2d::new(0.5, &mut rng()).unwrap();
    check_gradients(make, &x, Mode::Train, 1e-2, 2e-3);
    check_gradients(make, &x, Mode::Eval, 1e-2, 2e-3);
    // Train: whole planes are zero or scaled by 2; eval: identity.
    let y = make().forward(&x, Mode::Train).unwrap();
    let mut dropped = 0;
    for (xp, yp) in x.data().chunks(4).zip(y.data().chunks(4)) {
        let zero = yp.iter().all(|&v| v == 0.0);
        dropped += usize::from(zero);
        assert!(zero || xp.iter().zip(yp).all(|(a, b)| *b == 2.0 * a));
    }
    assert!(0 < dropped && dropped < 15);
    assert_eq!(make().forward(&x, Mode::Eval).unwrap(), x);
}

#[test]
fn linear_activation_flatten_gradients() {
    check_gradients(|| Linear::new(7, 5, &mut rng()).unwrap(), &random([3, 7, 1, 1], 10), Mode::Train, 1e-2, 2e-3);
    // Away from ReLU's kink.
    let x = random([2, 3, 2, 2], 11).map(|v| if v.abs() < 0.05 { 0.5 } else { v });
    check_gradients(ReLU::new, &x, Mode::Train, 1e-2, 2e-3);
    check_gradients(Sigmoid::new, &random([2, 3, 2, 2], 12), Mode::Train, 1e-2, 2e-3);
    check_gradients(Flatten::new, &random([2, 3, 2, 2], 13), Mode::Train, 1e-2, 2e-3);
}

fn small_net(seed: u64) -> Sequential {
    let mut r = SplitMix64::new(seed);
    Sequential::new()
        .with(nn::Conv2d::new(ConvOptions::new(2, 4, 3).padding(1), &mut r).unwrap())
        .with(BatchNorm2d::new(4).unwrap())
        .with(Sigmoid::new())
        .with(AvgPool2d::new(PoolOptions::new(2)))
        .with(Flatten::new())
        .with(Linear::new(4 * 3 * 3, 3, &mut r).unwrap())
}

#[test]
fn sequential_gradients() {
    check_gradients(|| small_net(3), &random([2, 2, 6, 6], 14), Mode::Train, 1e-2, 5e-3);
}

#[test]
fn parameter_counts_and_state_names() {
    let mut r = rng();
    assert_eq!(nn::Conv2d::new(ConvOptions::new(1, 32, 3), &mut r).unwrap().num_params(), 320);
    assert_eq!(Linear::new(784, 128, &mut r).unwrap().num_params(), 100_480);
    let names: Vec<String> = small_net(1).state().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked",
            "5.weight",
            "5.bias"
        ]
    );
}

#[test]
fn default_init_bounds() {
    // PyTorch: Kaiming-uniform a=sqrt(5) and the bias both lie in ±1/sqrt(fan_in).
    let conv = nn::Conv2d::new(ConvOptions::new(4, 8, 3), &mut rng()).unwrap();
    let bound = 1.0 / (4.0f32 * 9.0).sqrt();
    for p in conv.params() {
        assert!(p.value().iter().all(|v| v.abs() <= bound));
        assert!(p.value().iter().any(|v| v.abs() > 0.8 * bound));
    }
    // Transposed weights [in, out, kh, kw]: PyTorch's fan_in is out * kh * kw.
    let up = nn::ConvTranspose2d::new(ConvOptions::new(8, 2, 2), &mut rng()).unwrap();
    assert_eq!(up.params()[0].shape(), [8, 2, 2, 2]);
    assert!(up.params()[0].value().iter().all(|v| v.abs() <= 1.0 / 8f32.sqrt()));
}

#[test]
fn summary_shapes_and_receptive_fields() {
    let mut r = rng();
    let net = Sequential::new()
        .with(nn::Conv2d::new(ConvOptions::new(1, 4, 3).padding(1), &mut r).unwrap())
        .with(nn::Conv2d::new(ConvOptions::new(4, 4, 3).padding(1), &mut r).unwrap())
        .with(MaxPool2d::new(PoolOptions::new(2)))
        .with(nn::Conv2d::new(ConvOptions::new(4, 4, 3).dilation(2).padding(2), &mut r).unwrap())
        .with(Flatten::new())
        .with(Linear::new(4 * 14 * 14, 10, &mut r).unwrap());
    let s = net.summary([8, 1, 28, 28]).unwrap();
    let fields: Vec<[usize; 2]> = s.rows.iter().map(|row| row.receptive).collect();
    // 3, then 5 (two stacked 3x3), 6 after the 2x2 pool, 6 + 2*2*2 = 14 after the dilated conv.
    assert_eq!(fields, [[3, 3], [5, 5], [6, 6], [14, 14], [14, 14], [28, 28]]);
    assert_eq!(s.rows[3].output, [8, 4, 14, 14]);
    assert_eq!(s.rows[5].output, [8, 10, 1, 1]);
    assert_eq!(s.total_params(), 40 + 148 + 148 + 7850);
    let table = s.to_string();
    assert!(table.contains("MaxPool2d") && table.contains("total params: 8186"), "{table}");
    assert!(net.summary([8, 3, 28, 28]).is_err());
}

#[test]
fn misuse_is_an_error() {
    let mut conv = nn::Conv2d::new(ConvOptions::new(2, 3, 3), &mut rng()).unwrap();
    assert!(conv.backward(&random([1, 3, 2, 2], 1)).is_err());
    assert!(conv.forward(&random([1, 3, 4, 4], 1), Mode::Train).is_err());
    let y = conv.forward(&random([1, 2, 4, 4], 1), Mode::Train).unwrap();
    assert!(conv.backward(&random([1, 3, 3, 3], 1)).is_err());
    assert!(conv.backward(&y).is_ok());
    assert!(nn::Conv2d::new(ConvOptions::new(3, 4, 3).groups(2), &mut rng()).is_err());
    assert!(nn::Conv2d::new(ConvOptions::new(3, 4, 0), &mut rng()).is_err());
    assert!(nn::Conv2d::new(ConvOptions::new(3, 4, 3).output_padding(1), &mut rng()).is_err());
    assert!(Linear::new(4, 2, &mut rng()).unwrap().forward(&random([1, 5, 1, 1], 1), Mode::Eval).is_err());
    assert!(MaxPool2d::new(PoolOptions::new(2).padding(2)).forward(&random([1, 1, 4, 4], 1), Mode::Eval).is_err());
    assert!(BatchNorm2d::new(2).unwrap().forward(&random([1, 2, 1, 1], 1), Mode::Train).is_err());
    assert!(Dropout2d::new(1.5, &mut rng()).is_err());
    assert!(Tensor::new([1, 2, 3, 4], vec![0.0; 5]).is_err());
    assert!(nn::softmax_cross_entropy(&random([2, 3, 1, 1], 1), &[0, 3]).is_err());
    assert!(nn::mse(&random([2, 3, 1, 1], 1), &random([2, 3, 1, 2], 1)).is_err());
}
