//! A thin, explicit layer and training module on top of sverka's kernels: no autograd tape,
//! every layer caches what its own backward needs.
//!
//! - [`Tensor`]: an owned NCHW `f32` tensor;
//! - [`Layer`]: `forward(x, mode)`, `backward(grad_out)`, parameters with gradients;
//!   [`Conv2d`], [`ConvTranspose2d`], [`MaxPool2d`], [`AvgPool2d`], [`BatchNorm2d`],
//!   [`Dropout2d`], [`Linear`], [`ReLU`], [`Sigmoid`], [`Flatten`], [`Sequential`]
//!   (with [`Sequential::summary`]);
//! - losses [`softmax_cross_entropy`], [`mse`], [`bce_with_logits`]; optimisers [`Sgd`],
//!   [`Adam`]; PyTorch's default initialisation ([`init`]);
//! - [`checkpoint`]: safetensors files with PyTorch `state_dict` names;
//! - [`data`]: the IDX (MNIST) format and [`Dataset`];
//! - [`models`]: the networks of the two examples (MNIST classifier, autoencoder).
//!
//! Semantics follow PyTorch, so a model and its weights port 1:1 to the `nn.Sequential` with
//! the same layers.
//!
//! ```
//! use sverka::nn::{self, ConvOptions, Layer, Mode, Optimizer, PoolOptions, Tensor};
//! use sverka::rng::SplitMix64;
//!
//! fn main() -> Result<(), sverka::Error> {
//!     let mut rng = SplitMix64::new(7);
//!     let mut model = nn::Sequential::new()
//!         .with(nn::Conv2d::new(ConvOptions::new(1, 8, 3).padding(1), &mut rng)?)
//!         .with(nn::BatchNorm2d::new(8)?)
//!         .with(nn::ReLU::new())
//!         .with(nn::MaxPool2d::new(PoolOptions::new(2)))
//!         .with(nn::Flatten::new())
//!         .with(nn::Linear::new(8 * 4 * 4, 3, &mut rng)?);
//!     println!("{}", model.summary([4, 1, 8, 8])?);
//!
//!     // Four random 8x8 "images" with labels: learn them.
//!     let x = Tensor::new([4, 1, 8, 8], (0..256).map(|_| rng.next_f64() as f32).collect())?;
//!     let labels = [0, 1, 2, 1];
//!     let mut opt = nn::Sgd::new(0.1).momentum(0.9);
//!     for step in 0..30 {
//!         model.zero_grad();
//!         let loss = nn::softmax_cross_entropy(&model.forward(&x, Mode::Train)?, &labels)?;
//!         model.backward(&loss.grad)?;
//!         opt.step(&mut model.params_mut())?;
//!         println!("step {step}: loss {:.4}", loss.value);
//!     }
//!     let logits = model.forward(&x, Mode::Eval)?;
//!     assert_eq!(nn::correct(&logits, &labels), 4);
//!     nn::checkpoint::save(&model, std::env::temp_dir().join("sverka-tiny.safetensors"))
//! }
//! ```

mod activation;
pub mod checkpoint;
mod conv;
pub mod data;
mod dropout;
pub mod init;
mod layer;
mod linear;
mod loss;
pub mod models;
mod norm;
mod optim;
mod param;
mod pool;
mod sequential;
mod tensor;

pub use activation::{ReLU, Sigmoid};
pub use conv::{Conv, Conv2d, ConvKind, ConvOptions, ConvTranspose2d};
pub use data::Dataset;
pub use dropout::Dropout2d;
pub use layer::{Layer, Mode, Window};
pub use linear::{Flatten, Linear};
pub use loss::{Loss, bce_with_logits, correct, mse, softmax_cross_entropy};
pub use norm::BatchNorm2d;
pub use optim::{Adam, Optimizer, Sgd, cosine_lr};
pub use param::{Param, StateMut, StateRef};
pub use pool::{AvgPool2d, MaxPool2d, PoolOptions};
pub use sequential::{Sequential, Summary, SummaryRow};
pub use tensor::{ShapeDisplay, Tensor};
