//! Checkpoints (round trip, corruption, mismatched models, atomic writes) and the IDX
//! loader (valid raw and gzip files, malformed ones).

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use flate2::{Compression, write::GzEncoder};
use sverka::nn::{
    self, BatchNorm2d, ConvOptions, Dataset, Flatten, Layer, Linear, MaxPool2d, Mode, Optimizer, PoolOptions, ReLU,
    Sequential, Tensor, checkpoint, data,
};
use sverka::rng::SplitMix64;

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("nn_io_{name}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn net(seed: u64, hidden: usize) -> Sequential {
    let mut rng = SplitMix64::new(seed);
    Sequential::new()
        .with(nn::Conv2d::new(ConvOptions::new(1, 4, 3).padding(1), &mut rng).unwrap())
        .with(BatchNorm2d::new(4).unwrap())
        .with(ReLU::new())
        .with(MaxPool2d::new(PoolOptions::new(2)))
        .with(Flatten::new())
        .with(Linear::new(4 * 4 * 4, hidden, &mut rng).unwrap())
}

fn input() -> Tensor {
    let mut rng = SplitMix64::new(3);
    Tensor::new([5, 1, 8, 8], (0..5 * 64).map(|_| rng.next_f64() as f32).collect()).unwrap()
}

/// A few SGD steps so the weights and BatchNorm's running statistics are non-trivial.
fn train_a_little(model: &mut Sequential) {
    let mut opt = nn::Sgd::new(0.1).momentum(0.9);
    for _ in 0..3 {
        model.zero_grad();
        let loss = nn::softmax_cross_entropy(&model.forward(&input(), Mode::Train).unwrap(), &[0, 1, 2, 1, 0]).unwrap();
        model.backward(&loss.grad).unwrap();
        opt.step(&mut model.params_mut()).unwrap();
    }
}

#[test]
fn save_load_round_trip_is_bit_identical() {
    let dir = scratch("round_trip");
    let path = dir.join("model.safetensors");
    let mut a = net(1, 3);
    train_a_little(&mut a);
    checkpoint::save(&a, &path).unwrap();
    // Only the checkpoint is left in the directory: the temporary file was renamed.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    let mut b = net(2, 3);
    assert_ne!(a.forward(&input(), Mode::Eval).unwrap(), b.forward(&input(), Mode::Eval).unwrap());
    checkpoint::load(&mut b, &path).unwrap();
    let (ya, yb) = (a.forward(&input(), Mode::Eval).unwrap(), b.forward(&input(), Mode::Eval).unwrap());
    assert!(ya.data().iter().zip(yb.data()).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert_eq!(a.state(), b.state());
    assert!(a.state().contains(&("1.num_batches_tracked".to_string(), nn::StateRef::I64(3))));
    // Saving again over the file works (rename replaces it).
    checkpoint::save(&b, &path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), checkpoint::to_bytes(&a).unwrap());
}

#[test]
fn corrupted_or_truncated_checkpoints_are_errors() {
    let bytes = checkpoint::to_bytes(&net(1, 3)).unwrap();
    let mut model = net(2, 3);
    let before = model.forward(&input(), Mode::Eval).unwrap();
    for cut in [0, 4, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(checkpoint::from_bytes(&mut model, &bytes[..cut]).is_err(), "truncated at {cut}");
    }
    let mut garbled = bytes.clone();
    garbled[10] = b'#';
    assert!(checkpoint::from_bytes(&mut model, &garbled).is_err());
    let mut huge_header = bytes.clone();
    huge_header[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(checkpoint::from_bytes(&mut model, &huge_header).is_err());
    // A failed load leaves the model untouched.
    assert_eq!(model.forward(&input(), Mode::Eval).unwrap(), before);
    assert!(checkpoint::load(&mut model, scratch("missing").join("nope.safetensors")).is_err());
}

#[test]
fn mismatched_models_are_clear_errors() {
    let bytes = checkpoint::to_bytes(&net(1, 3)).unwrap();
    // Mis-shaped: a Linear with 5 outputs instead of 3.
    let err = checkpoint::from_bytes(&mut net(1, 5), &bytes).unwrap_err().to_string();
    assert!(err.contains("5.weight") && err.contains("[3, 64]"), "{err}");
    // Missing: the model has one more layer than the file.
    let mut longer = net(1, 3).with(Linear::new(3, 2, &mut SplitMix64::new(0)).unwrap());
    let err = checkpoint::from_bytes(&mut longer, &bytes).unwrap_err().to_string();
    assert!(err.contains("missing tensor 6.weight"), "{err}");
    // Extra: the file has tensors the model does not.
    let mut rng = SplitMix64::new(0);
    let mut conv_only =
        Sequential::new().with(nn::Conv2d::new(ConvOptions::new(1, 4, 3).padding(1), &mut rng).unwrap());
    let err = checkpoint::from_bytes(&mut conv_only, &bytes).unwrap_err().to_string();
    assert!(err.contains("unexpected tensor 1.running_mean"), "{err}");
}

/// An IDX file of bytes with the given dimensions (and `extra` trailing bytes).
fn idx(dims: &[u32], fill: impl Fn(usize) -> u8, extra: usize) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    let len = dims.iter().product::<u32>() as usize;
    out.extend((0..len + extra).map(fill));
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn idx_files_load_raw_and_gzip() {
    let dir = scratch("idx_ok");
    fs::write(dir.join("train-images-idx3-ubyte"), idx(&[3, 2, 2], |i| (i * 20) as u8, 0)).unwrap();
    fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&idx(&[3], |i| i as u8, 0))).unwrap();
    let train = Dataset::mnist(&dir, true).unwrap();
    assert_eq!((train.len(), train.image_size(), train.labels()), (3, [2, 2], &[0, 1, 2][..]));
    let (x, labels) = train.batch(&[2, 0]).unwrap();
    assert_eq!(x.shape(), [2, 1, 2, 2]);
    assert_eq!(x.data()[..4], [160.0 / 255.0, 180.0 / 255.0, 200.0 / 255.0, 220.0 / 255.0]);
    assert_eq!(labels, [2, 0]);
    assert!(train.batch(&[3]).is_err());
    assert!(Dataset::mnist(&dir, false).is_err(), "no test split in the directory");
}

#[test]
fn malformed_idx_files_are_errors() {
    let dir = scratch("idx_bad");
    let good = idx(&[4, 3, 3], |i| i as u8, 0);
    let mut wrong_magic = good.clone();
    wrong_magic[0] = 1;
    let mut wrong_type = good.clone();
    wrong_type[2] = 0x0d;
    let cases = [
        ("empty", Vec::new()),
        ("wrong magic", wrong_magic),
        ("wrong type", wrong_type),
        ("truncated header", good[..7].to_vec()),
        ("truncated data", good[..good.len() - 1].to_vec()),
        ("trailing data", idx(&[4, 3, 3], |i| i as u8, 2)),
        ("truncated gzip", gzip(&good)[..20].to_vec()),
        ("corrupt gzip", gzip(&good).iter().enumerate().map(|(i, &b)| if i == 15 { !b } else { b }).collect()),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name.replace(' ', "_"));
        fs::write(&path, bytes).unwrap();
        let err = data::read_idx(&path).expect_err(name);
        assert!(matches!(err, sverka::Error::Format { .. }), "{name}: {err}");
    }
    // Sizes that disagree: 4 images, 5 labels; and images with the wrong rank.
    fs::write(dir.join("images"), &good).unwrap();
    fs::write(dir.join("labels"), idx(&[5], |_| 1, 0)).unwrap();
    fs::write(dir.join("flat"), idx(&[36], |_| 1, 0)).unwrap();
    assert!(Dataset::from_idx(dir.join("images"), dir.join("labels")).is_err());
    assert!(Dataset::from_idx(dir.join("flat"), dir.join("labels")).is_err());
}

#[test]
fn committed_mnist_subset_loads() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k");
    let (train, test) = (Dataset::mnist(dir, true).unwrap(), Dataset::mnist(dir, false).unwrap());
    assert_eq!((train.len(), test.len(), train.image_size()), (8000, 2000, [28, 28]));
    assert!(train.labels().iter().all(|&l| l < 10));
}
