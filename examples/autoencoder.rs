//! A convolutional autoencoder on MNIST: a strided-convolution encoder squeezes each 28x28
//! digit into 8x7x7 = 392 values, a transposed-convolution decoder rebuilds it.
//!
//! `cargo run --release --example autoencoder -- --out reconstructions.png` trains it with
//! MSE and Adam, writes a PNG grid (top row: test originals, bottom row: reconstructions),
//! and prints `test_mse=0.XXXX` (per-pixel mean squared error on the test set) last.

mod common;

use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use sverka::nn::{self, Adam, Dataset, Layer, Mode, Optimizer, Sequential, Tensor};
use sverka::rng::SplitMix64;

/// Per-pixel mean squared reconstruction error on `data`, in eval mode.
fn evaluate(model: &mut Sequential, data: &Dataset) -> Result<f64, sverka::Error> {
    let indices: Vec<usize> = (0..data.len()).collect();
    let mut total = 0.0;
    for chunk in indices.chunks(500) {
        let (x, _) = data.batch(chunk)?;
        total += nn::mse(&model.forward(&x, Mode::Eval)?, &x)?.value as f64 * chunk.len() as f64;
    }
    Ok(total / data.len() as f64)
}

/// Writes `originals` over `reconstructions` (`[n, 1, h, w]` each, values in [0, 1]) as an
/// 8-bit grey PNG, every pixel drawn as a `scale x scale` square.
fn write_grid(path: &Path, originals: &Tensor, reconstructions: &Tensor, scale: usize) -> Result<(), Box<dyn Error>> {
    let [n, _, h, w] = originals.shape();
    let (width, height) = (n * w * scale, 2 * h * scale);
    let mut pixels = vec![0u8; width * height];
    for (row, images) in [originals, reconstructions].into_iter().enumerate() {
        for (i, image) in images.data().chunks(h * w).enumerate() {
            for (k, &v) in image.iter().enumerate() {
                let (y, x) = ((row * h + k / w) * scale, (i * w + k % w) * scale);
                let grey = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                for dy in 0..scale {
                    pixels[(y + dy) * width + x..][..scale].fill(grey);
                }
            }
        }
    }
    let mut encoder = png::Encoder::new(BufWriter::new(File::create(path)?), width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

fn main() -> ExitCode {
    common::report(run)
}

/// Parses the arguments and trains on a rayon pool.
fn run() -> Result<(), Box<dyn Error>> {
    common::Args::defaults(2, 2e-3).parse("autoencoder", true).run_in_pool(train)
}

/// Trains, evaluates, and prints the per-epoch and final lines (on the pool's threads).
fn train(args: &common::Args) -> Result<(), Box<dyn Error>> {
    let (train, test) = args.load()?;
    let mut rng = SplitMix64::new(args.seed);
    let mut model = nn::models::autoencoder(&mut rng)?;
    let [h, w] = train.image_size();
    println!("{}", model.summary([args.batch_size, 1, h, w])?);
    println!(
        "training: {} epochs, batch {}, Adam lr {}, MSE loss, {} threads",
        args.epochs,
        args.batch_size,
        args.lr,
        rayon::current_num_threads()
    );

    let mut opt = Adam::new(args.lr);
    let steps_per_epoch = train.len().div_ceil(args.batch_size);
    let mut test_mse = 0.0;
    for epoch in 1..=args.epochs {
        let start = Instant::now();
        let bar = common::epoch_bar(epoch, args.epochs, steps_per_epoch);
        let (mut loss_sum, mut seen) = (0.0, 0);
        for batch in train.shuffled_batches(args.batch_size, &mut rng) {
            let (x, _) = train.batch(&batch)?;
            model.zero_grad();
            let loss = nn::mse(&model.forward(&x, Mode::Train)?, &x)?;
            model.backward(&loss.grad)?;
            opt.step(&mut model.params_mut())?;
            loss_sum += loss.value as f64 * batch.len() as f64;
            seen += batch.len();
            let rate = seen as f64 / start.elapsed().as_secs_f64();
            bar.set_message(format!("mse {:.4}, {rate:.0} img/s", loss_sum / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_time = start.elapsed().as_secs_f64();
        test_mse = evaluate(&mut model, &test)?;
        println!(
            "epoch {epoch}/{}: train_mse={:.4} test_mse={test_mse:.4} time={:.1}s ({:.0} img/s)",
            args.epochs,
            loss_sum / seen as f64,
            start.elapsed().as_secs_f64(),
            seen as f64 / train_time
        );
    }
    if let Some(path) = &args.out {
        let (originals, _) = test.batch(&(0..10.min(test.len())).collect::<Vec<_>>())?;
        let reconstructions = model.forward(&originals, Mode::Eval)?;
        write_grid(path, &originals, &reconstructions, 2)?;
        println!("wrote {} (top: test originals, bottom: reconstructions)", path.display());
    }
    if let Some(path) = &args.save {
        nn::checkpoint::save(&model, path)?;
        println!("saved {}", path.display());
    }
    println!("test_mse={test_mse:.4}");
    Ok(())
}
