//! Command-line options, thread setup, data loading and progress bars shared by the
//! `mnist` and `autoencoder` examples.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sverka::nn::Dataset;

/// The examples' options; each example supplies its defaults.
#[derive(Clone, Debug)]
pub struct Args {
    /// A directory in the standard MNIST layout (`train-images-idx3-ubyte[.gz]`, …).
    pub data: PathBuf,
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f32,
    /// Seed for initialisation, shuffling and dropout.
    pub seed: u64,
    /// Worker threads (default: rayon's, one per core).
    pub threads: Option<usize>,
    /// Where to save the trained weights (safetensors).
    pub save: Option<PathBuf>,
    /// Where to write the reconstruction grid (autoencoder only).
    pub out: Option<PathBuf>,
}

impl Args {
    /// The defaults of both examples except the learning rate and epochs, which each sets.
    pub fn defaults(epochs: usize, lr: f32) -> Self {
        Args {
            data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist-10k")),
            epochs,
            batch_size: 64,
            lr,
            seed: 42,
            threads: None,
            save: None,
            out: None,
        }
    }

    /// Parses `std::env::args` over `self` (the defaults); `--out` only if `with_out`.
    /// Prints usage and exits on `--help` or a bad option.
    pub fn parse(mut self, name: &str, with_out: bool) -> Self {
        let usage = format!(
            "usage: cargo run --release --example {name} -- [--data DIR] [--epochs N] [--batch-size N] [--lr X] \
             [--seed N] [--threads N] [--save PATH.safetensors]{}\n(defaults: --data {} --epochs {} --batch-size {} \
             --lr {} --seed {})",
            if with_out { " [--out PATH.png]" } else { "" },
            self.data.display(),
            self.epochs,
            self.batch_size,
            self.lr,
            self.seed
        );
        let fail = |message: String| -> ! {
            eprintln!("{message}\n{usage}");
            std::process::exit(2)
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            let value = args.next().unwrap_or_else(|| fail(format!("{flag} needs a value")));
            self.set(&flag, &value, with_out).unwrap_or_else(|e| fail(e));
        }
        if self.epochs == 0 || self.batch_size == 0 || self.threads == Some(0) {
            fail("--epochs, --batch-size and --threads must be at least 1".into());
        }
        self
    }

    /// Sets the option `flag` to `value`.
    fn set(&mut self, flag: &str, value: &str, with_out: bool) -> Result<(), String> {
        fn num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
            value.parse().map_err(|_| format!("bad value {value:?} for {flag}"))
        }
        match flag {
            "--data" => self.data = value.into(),
            "--epochs" => self.epochs = num(flag, value)?,
            "--batch-size" => self.batch_size = num(flag, value)?,
            "--lr" => self.lr = num(flag, value)?,
            "--seed" => self.seed = num(flag, value)?,
            "--threads" => self.threads = Some(num(flag, value)?),
            "--save" => self.save = Some(value.into()),
            "--out" if with_out => self.out = Some(value.into()),
            _ => return Err(format!("unknown option {flag}")),
        }
        Ok(())
    }

    /// Runs `train` on a rayon pool of `--threads` threads (default: one per core).
    ///
    /// The whole loop runs on the pool's threads, so each op's parallel loop starts there
    /// instead of being handed over from the main thread and waited for: one MNIST epoch
    /// took 5.3–5.4 s this way against 6.1–6.3 s calling from `main` (2 threads, same
    /// results).
    pub fn run_in_pool(
        &self,
        train: impl FnOnce(&Args) -> Result<(), Box<dyn Error>> + Send,
    ) -> Result<(), Box<dyn Error>> {
        let mut pool = rayon::ThreadPoolBuilder::new();
        if let Some(n) = self.threads {
            pool = pool.num_threads(n);
        }
        // The error crosses back from the pool as text (`Box<dyn Error>` is not `Send`).
        pool.build()?.install(|| train(self).map_err(|e| e.to_string()))?;
        Ok(())
    }

    /// The train and test splits of `--data`, with a line saying what was loaded.
    pub fn load(&self) -> Result<(Dataset, Dataset), sverka::Error> {
        let train = Dataset::mnist(&self.data, true)?;
        let test = Dataset::mnist(&self.data, false)?;
        let [h, w] = train.image_size();
        let shown = self.data.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(&self.data);
        println!("data: {} ({} train / {} test images, {h}x{w})", shown.display(), train.len(), test.len());
        Ok((train, test))
    }
}

/// A progress bar over one epoch's `batches` steps (drawn on stderr, hidden when stderr is
/// not a terminal).
pub fn epoch_bar(epoch: usize, epochs: usize, batches: usize) -> ProgressBar {
    let bar = ProgressBar::new(batches as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs an example's body, printing an error as its message (not its debug form).
pub fn report(run: impl FnOnce() -> Result<(), Box<dyn Error>>) -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
