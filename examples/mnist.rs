//! Trains the M1 network of DESIGN.md §5 — conv(1→32)-BN-ReLU-maxpool → conv(32→64)-BN-ReLU-
//! maxpool → Dropout2d(0.25) → linear(3136→128)-ReLU → linear(128→10) — on MNIST with SGD
//! (momentum 0.9, cosine learning-rate decay) and reports the test accuracy.
//!
//! `cargo run --release --example mnist` uses the 8,000 / 2,000 digits in `data/mnist-10k`;
//! `--data DIR` takes any MNIST-format directory (full MNIST, Fashion-MNIST). The last line
//! of output is `test_accuracy=0.XXXX`.

mod common;

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use sverka::nn::{self, Dataset, Layer, Mode, Optimizer, Sequential, Sgd};
use sverka::rng::SplitMix64;

/// Mean cross-entropy and accuracy of `model` on `data`, in eval mode.
fn evaluate(model: &mut Sequential, data: &Dataset) -> Result<(f64, f64), sverka::Error> {
    let (mut loss, mut correct) = (0.0, 0);
    let indices: Vec<usize> = (0..data.len()).collect();
    for chunk in indices.chunks(500) {
        let (x, labels) = data.batch(chunk)?;
        let logits = model.forward(&x, Mode::Eval)?;
        loss += nn::softmax_cross_entropy(&logits, &labels)?.value as f64 * chunk.len() as f64;
        correct += nn::correct(&logits, &labels);
    }
    Ok((loss / data.len() as f64, correct as f64 / data.len() as f64))
}

fn main() -> ExitCode {
    common::report(run)
}

/// Parses the arguments and trains on a rayon pool.
fn run() -> Result<(), Box<dyn Error>> {
    common::Args::defaults(8, 0.02).parse("mnist", false).run_in_pool(train)
}

/// Trains, evaluates, and prints the per-epoch and final lines (on the pool's threads).
fn train(args: &common::Args) -> Result<(), Box<dyn Error>> {
    let (train, test) = args.load()?;
    let mut rng = SplitMix64::new(args.seed);
    let mut model = nn::models::mnist_cnn(&mut rng)?;
    let [h, w] = train.image_size();
    println!("{}", model.summary([args.batch_size, 1, h, w])?);
    println!(
        "training: {} epochs, batch {}, SGD momentum 0.9, lr {} with cosine decay, {} threads",
        args.epochs,
        args.batch_size,
        args.lr,
        rayon::current_num_threads()
    );

    let mut opt = Sgd::new(args.lr).momentum(0.9);
    let steps_per_epoch = train.len().div_ceil(args.batch_size);
    let total_steps = args.epochs * steps_per_epoch;
    let mut test_accuracy = 0.0;
    for epoch in 1..=args.epochs {
        let start = Instant::now();
        let bar = common::epoch_bar(epoch, args.epochs, steps_per_epoch);
        let (mut loss_sum, mut seen) = (0.0, 0);
        for (i, batch) in train.shuffled_batches(args.batch_size, &mut rng).iter().enumerate() {
            opt.set_lr(nn::cosine_lr(args.lr, (epoch - 1) * steps_per_epoch + i, total_steps));
            let (x, labels) = train.batch(batch)?;
            model.zero_grad();
            let loss = nn::softmax_cross_entropy(&model.forward(&x, Mode::Train)?, &labels)?;
            model.backward(&loss.grad)?;
            opt.step(&mut model.params_mut())?;
            loss_sum += loss.value as f64 * batch.len() as f64;
            seen += batch.len();
            let rate = seen as f64 / start.elapsed().as_secs_f64();
            bar.set_message(format!("loss {:.4}, {rate:.0} img/s", loss_sum / seen as f64));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_time = start.elapsed().as_secs_f64();
        let (test_loss, accuracy) = evaluate(&mut model, &test)?;
        test_accuracy = accuracy;
        println!(
            "epoch {epoch}/{}: train_loss={:.4} test_loss={test_loss:.4} test_accuracy={accuracy:.4} \
             time={:.1}s ({:.0} img/s)",
            args.epochs,
            loss_sum / seen as f64,
            start.elapsed().as_secs_f64(),
            seen as f64 / train_time
        );
    }
    if let Some(path) = &args.save {
        nn::checkpoint::save(&model, path)?;
        println!("saved {}", path.display());
    }
    println!("test_accuracy={test_accuracy:.4}");
    Ok(())
}
