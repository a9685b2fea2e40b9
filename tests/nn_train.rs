//! Training end to end: losses and optimisers against hand-computed PyTorch values, a tiny
//! network overfitting one batch, and a short MNIST run reaching a sensible accuracy.

use sverka::nn::{
    self, Adam, BatchNorm2d, ConvOptions, Dataset, Dropout2d, Flatten, Layer, Linear, MaxPool2d, Mode, Optimizer,
    Param, PoolOptions, ReLU, Sequential, Sgd, Tensor,
};
use sverka::rng::SplitMix64;

fn column(values: &[f32]) -> Tensor {
    Tensor::new([1, values.len(), 1, 1], values.to_vec()).unwrap()
}

#[test]
fn losses_match_pytorch() {
    // F.cross_entropy(tensor([[1., 2., 3.]]), tensor([0])) = 2.4076059
    let ce = nn::softmax_cross_entropy(&column(&[1.0, 2.0, 3.0]), &[0]).unwrap();
    assert!((ce.value - 2.407_606).abs() < 1e-5);
    // grad = softmax - onehot = [0.0900 - 1, 0.2447, 0.6652]
    let expected = [0.090_030_57 - 1.0, 0.244_728_48, 0.665_240_94];
    assert!(ce.grad.data().iter().zip(expected).all(|(g, e)| (g - e).abs() < 1e-6));
    // F.mse_loss(tensor([1., 2.]), tensor([0., 4.])) = 2.5, grad = [1, -2]
    let m = nn::mse(&column(&[1.0, 2.0]), &column(&[0.0, 4.0])).unwrap();
    assert_eq!((m.value, m.grad.data()), (2.5, &[1.0, -2.0][..]));
    // F.binary_cross_entropy_with_logits(tensor([0., 2., -30.]), tensor([1., 0., 0.])) = 0.9657...
    let b = nn::bce_with_logits(&column(&[0.0, 2.0, -30.0]), &column(&[1.0, 0.0, 0.0])).unwrap();
    assert!((b.value - (2f32.ln() + (1.0 + 2f32.exp()).ln() + 1e-13) / 3.0).abs() < 1e-6, "{}", b.value);
    assert!(b.grad.data()[2].abs() < 1e-12);
}

#[test]
fn loss_gradients_match_finite_differences() {
    let mut rng = SplitMix64::new(4);
    let mut random = |shape: [usize; 4], lo: f32, hi: f32| {
        Tensor::new(shape, (0..shape.iter().product()).map(|_| rng.uniform(lo, hi)).collect()).unwrap()
    };
    let (logits, target) = (random([3, 4, 1, 1], -3.0, 3.0), random([3, 4, 1, 1], 0.0, 1.0));
    let labels = [2, 0, 3];
    let losses: [&dyn Fn(&Tensor) -> nn::Loss; 3] =
        [&|x| nn::softmax_cross_entropy(x, &labels).unwrap(), &|x| nn::mse(x, &target).unwrap(), &|x| {
            nn::bce_with_logits(x, &target).unwrap()
        }];
    for (k, loss) in losses.iter().enumerate() {
        let grad = loss(&logits).grad;
        for i in 0..logits.len() {
            let (mut plus, mut minus) = (logits.clone(), logits.clone());
            plus.data_mut()[i] += 1e-2;
            minus.data_mut()[i] -= 1e-2;
            let numeric = (loss(&plus).value - loss(&minus).value) / 2e-2;
            assert!((numeric - grad.data()[i]).abs() < 1e-3, "loss {k}, element {i}: {numeric} vs {}", grad.data()[i]);
        }
    }
}

/// A 1-element parameter with value `v` and gradient `g`.
fn param(v: f32, g: f32) -> Param {
    let mut p = Param::new("weight", vec![1], vec![v]).unwrap();
    p.grad_mut()[0] = g;
    p
}

#[test]
fn sgd_and_adam_follow_pytorch() {
    // SGD momentum 0.9, weight decay 0.1, lr 0.5, constant grad 1 from p = 1:
    // step 1: g = 1 + 0.1 = 1.1, v = 1.1, p = 1 - 0.55 = 0.45
    // step 2: g = 1 + 0.045 = 1.045, v = 0.99 + 1.045 = 2.035, p = 0.45 - 1.0175 = -0.5675
    let mut p = param(1.0, 1.0);
    let mut sgd = Sgd::new(0.5).momentum(0.9).weight_decay(0.1);
    sgd.step(&mut [&mut p]).unwrap();
    assert!((p.value()[0] - 0.45).abs() < 1e-6);
    sgd.step(&mut [&mut p]).unwrap();
    assert!((p.value()[0] + 0.5675).abs() < 1e-6);
    // Nesterov, step 1: v = g = 1, update = g + 0.9 v = 1.9.
    let mut q = param(0.0, 1.0);
    Sgd::new(1.0).momentum(0.9).nesterov(true).step(&mut [&mut q]).unwrap();
    assert!((q.value()[0] + 1.9).abs() < 1e-6);
    // Adam's first steps move by about lr whatever the gradient's scale.
    let mut r = param(0.0, 1e-3);
    let mut adam = Adam::new(0.01);
    adam.step(&mut [&mut r]).unwrap();
    assert!((r.value()[0] + 0.01).abs() < 1e-5);
    // The optimiser's state belongs to the parameters of its first step.
    let mut two = (param(0.0, 1.0), param(0.0, 1.0));
    assert!(adam.step(&mut [&mut two.0, &mut two.1]).is_err());
    assert!((nn::cosine_lr(0.02, 0, 100) - 0.02).abs() < 1e-9 && nn::cosine_lr(0.02, 100, 100).abs() < 1e-9);
    assert!((nn::cosine_lr(0.02, 50, 100) - 0.01).abs() < 1e-7);
}

fn small_cnn(rng: &mut SplitMix64) -> Sequential {
    Sequential::new()
        .with(nn::Conv2d::new(ConvOptions::new(1, 8, 3).padding(1), rng).unwrap())
        .with(BatchNorm2d::new(8).unwrap())
        .with(ReLU::new())
        .with(MaxPool2d::new(PoolOptions::new(2)))
        .with(nn::Conv2d::new(ConvOptions::new(8, 16, 3).padding(1), rng).unwrap())
        .with(BatchNorm2d::new(16).unwrap())
        .with(ReLU::new())
        .with(MaxPool2d::new(PoolOptions::new(2)))
        .with(Dropout2d::new(0.1, rng).unwrap())
        .with(Flatten::new())
        .with(Linear::new(16 * 7 * 7, 10, rng).unwrap())
}

fn mnist() -> (Dataset, Dataset) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    (Dataset::mnist(dir, true).unwrap(), Dataset::mnist(dir, false).unwrap())
}

#[test]
fn tiny_network_overfits_one_batch() {
    let (train, _) = mnist();
    let (x, labels) = train.batch(&(0..16).collect::<Vec<_>>()).unwrap();
    let mut rng = SplitMix64::new(1);
    let mut model = small_cnn(&mut rng);
    let mut opt = Adam::new(3e-3);
    let mut losses = Vec::new();
    for _ in 0..40 {
        model.zero_grad();
        let loss = nn::softmax_cross_entropy(&model.forward(&x, Mode::Train).unwrap(), &labels).unwrap();
        model.backward(&loss.grad).unwrap();
        opt.step(&mut model.params_mut()).unwrap();
        losses.push(loss.value);
    }
    assert!(losses[39] < losses[0] / 10.0, "loss {} -> {}", losses[0], losses[39]);
}

#[test]
fn short_mnist_run_learns() {
    let (train, test) = mnist();
    let (train, test) = (train.truncate(1000), test.truncate(500));
    let mut rng = SplitMix64::new(2);
    let mut model = small_cnn(&mut rng);
    let mut opt = Sgd::new(0.05).momentum(0.9);
    for _ in 0..3 {
        for batch in train.shuffled_batches(32, &mut rng) {
            let (x, labels) = train.batch(&batch).unwrap();
            model.zero_grad();
            let loss = nn::softmax_cross_entropy(&model.forward(&x, Mode::Train).unwrap(), &labels).unwrap();
            model.backward(&loss.grad).unwrap();
            opt.step(&mut model.params_mut()).unwrap();
        }
    }
    let (x, labels) = test.batch(&(0..test.len()).collect::<Vec<_>>()).unwrap();
    let accuracy = nn::correct(&model.forward(&x, Mode::Eval).unwrap(), &labels) as f64 / test.len() as f64;
    assert!(accuracy > 0.85, "test accuracy {accuracy} after 3 epochs on 1000 images");
}

#[test]
fn training_is_reproducible_from_the_seed_for_any_thread_count() {
    let (train, _) = mnist();
    let run = || {
        let mut rng = SplitMix64::new(9);
        let mut model = small_cnn(&mut rng);
        let mut opt = Sgd::new(0.05).momentum(0.9);
        for batch in train.clone().truncate(96).shuffled_batches(32, &mut rng) {
            let (x, labels) = train.batch(&batch).unwrap();
            model.zero_grad();
            let loss = nn::softmax_cross_entropy(&model.forward(&x, Mode::Train).unwrap(), &labels).unwrap();
            model.backward(&loss.grad).unwrap();
            opt.step(&mut model.params_mut()).unwrap();
        }
        nn::checkpoint::to_bytes(&model).unwrap()
    };
    let in_pool = |threads| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(run);
    let reference = in_pool(1);
    assert_eq!(in_pool(1), reference);
    assert_eq!(in_pool(3), reference);
}
