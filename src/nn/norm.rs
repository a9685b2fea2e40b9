//! [`BatchNorm2d`]: channel-wise batch normalisation with running statistics.

use super::layer::{Layer, Mode, no_forward};
use super::param::{Param, StateMut, StateRef};
use super::tensor::{Tensor, expect_channels, expect_shape};
use crate::error::Error;
use crate::spec::BatchNorm2dSpec;

/// Batch normalisation over the channels of an NCHW tensor (`torch.nn.BatchNorm2d` with
/// `affine=True, track_running_stats=True`).
///
/// In [`Mode::Train`] it normalises with the batch mean and biased variance and updates
/// `running_mean` / `running_var` (unbiased) with `momentum`; in [`Mode::Eval`] it uses
/// the running statistics. Its `state_dict` is `weight`, `bias`, `running_mean`,
/// `running_var` and `num_batches_tracked`, as in PyTorch.
#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    channels: usize,
    eps: f32,
    momentum: f32,
    weight: Param,
    bias: Param,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    num_batches_tracked: i64,
    cache: Option<BnCache>,
}

/// What backward needs: the spec, the input and the statistics it was normalised with.
#[derive(Clone, Debug)]
struct BnCache {
    spec: BatchNorm2dSpec,
    input: Tensor,
    /// Batch mean and `1/sqrt(var + eps)` in train mode; `None` in eval mode.
    saved: Option<(Vec<f32>, Vec<f32>)>,
}

impl BatchNorm2d {
    /// A layer for `channels` channels with PyTorch's defaults: `eps = 1e-5`,
    /// `momentum = 0.1`, weight 1, bias 0, running mean 0, running variance 1.
    pub fn new(channels: usize) -> Result<Self, Error> {
        if channels == 0 {
            return Err(Error::Zero { param: "channels" });
        }
        Ok(BatchNorm2d {
            channels,
            eps: 1e-5,
            momentum: 0.1,
            weight: Param::new("weight", vec![channels], vec![1.0; channels])?,
            bias: Param::new("bias", vec![channels], vec![0.0; channels])?,
            running_mean: vec![0.0; channels],
            running_var: vec![1.0; channels],
            num_batches_tracked: 0,
            cache: None,
        })
    }

    /// Sets `eps` (validated on forward: finite and >= 0).
    pub fn eps(self, eps: f32) -> Self {
        BatchNorm2d { eps, ..self }
    }

    /// Sets `momentum` (validated on forward: in `[0, 1]`).
    pub fn momentum(self, momentum: f32) -> Self {
        BatchNorm2d { momentum, ..self }
    }

    /// The running mean per channel.
    pub fn running_mean(&self) -> &[f32] {
        &self.running_mean
    }

    /// The running (unbiased) variance per channel.
    pub fn running_var(&self) -> &[f32] {
        &self.running_var
    }

    /// Number of training-mode forward passes so far.
    pub fn num_batches_tracked(&self) -> i64 {
        self.num_batches_tracked
    }

    /// The kernel spec for `x`, checking its channel count.
    fn spec(&self, x: &Tensor) -> Result<BatchNorm2dSpec, Error> {
        expect_channels("BatchNorm2d", x.shape(), self.channels)?;
        let [batch, channels, h, w] = x.shape();
        Ok(BatchNorm2dSpec { batch, channels, input: [h, w], eps: self.eps, momentum: self.momentum })
    }

    /// Backward for the cached forward `cache`.
    fn backward_with(&mut self, cache: &BnCache, grad_out: &Tensor) -> Result<Tensor, Error> {
        expect_shape("grad_out", grad_out.shape(), cache.input.shape())?;
        let Some((mean, invstd)) = &cache.saved else {
            return self.backward_eval(&cache.spec, &cache.input, grad_out);
        };
        let mut grad_in = Tensor::zeros(cache.input.shape())?;
        let (mut grad_gamma, mut grad_beta) = (vec![0.0; self.channels], vec![0.0; self.channels]);
        crate::batch_norm2d_backward(
            &cache.spec,
            cache.input.data(),
            grad_out.data(),
            self.weight.value(),
            mean,
            invstd,
            grad_in.data_mut(),
            &mut grad_gamma,
            &mut grad_beta,
        )?;
        self.weight.accumulate(&grad_gamma);
        self.bias.accumulate(&grad_beta);
        Ok(grad_in)
    }

    /// Eval-mode backward, where the statistics are constants: per channel
    /// `dx = dy * gamma * invstd`, `dgamma = sum dy * (x - mean) * invstd`, `dbeta = sum dy`.
    fn backward_eval(&mut self, spec: &BatchNorm2dSpec, input: &Tensor, grad_out: &Tensor) -> Result<Tensor, Error> {
        let mut grad_in = Tensor::zeros(input.shape())?;
        let plane = spec.input[0] * spec.input[1];
        let mut grad_gamma = vec![0.0; self.channels];
        let mut grad_beta = vec![0.0; self.channels];
        let planes =
            input.data().chunks(plane).zip(grad_out.data().chunks(plane)).zip(grad_in.data_mut().chunks_mut(plane));
        for (i, ((x, dy), dx)) in planes.enumerate() {
            let c = i % self.channels;
            let invstd = 1.0 / (self.running_var[c] + self.eps).sqrt();
            let (mean, scale) = (self.running_mean[c], self.weight.value()[c] * invstd);
            for ((&x, &dy), dx) in x.iter().zip(dy).zip(dx) {
                *dx = dy * scale;
                grad_gamma[c] += dy * (x - mean) * invstd;
                grad_beta[c] += dy;
            }
        }
        self.weight.accumulate(&grad_gamma);
        self.bias.accumulate(&grad_beta);
        Ok(grad_in)
    }
}

impl Layer for BatchNorm2d {
    fn describe(&self) -> String {
        format!("BatchNorm2d({})", self.channels)
    }

    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        expect_channels("BatchNorm2d", input, self.channels)?;
        Ok(input)
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor, Error> {
        let spec = self.spec(x)?;
        let mut out = Tensor::zeros(x.shape())?;
        let (gamma, beta) = (self.weight.value(), self.bias.value());
        let saved = match mode {
            Mode::Train => {
                let (mut mean, mut invstd) = (vec![0.0; self.channels], vec![0.0; self.channels]);
                crate::batch_norm2d_train(
                    &spec,
                    x.data(),
                    gamma,
                    beta,
                    &mut self.running_mean,
                    &mut self.running_var,
                    out.data_mut(),
                    &mut mean,
                    &mut invstd,
                )?;
                self.num_batches_tracked += 1;
                Some((mean, invstd))
            }
            Mode::Eval => {
                crate::batch_norm2d_eval(
                    &spec,
                    x.data(),
                    gamma,
                    beta,
                    &self.running_mean,
                    &self.running_var,
                    out.data_mut(),
                )?;
                None
            }
        };
        self.cache = Some(BnCache { spec, input: x.clone(), saved });
        Ok(out)
    }

    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let cache = self.cache.take().ok_or_else(|| no_forward("BatchNorm2d"))?;
        let result = self.backward_with(&cache, grad_out);
        self.cache = Some(cache);
        result
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight, &mut self.bias]
    }

    fn state(&self) -> Vec<(String, StateRef<'_>)> {
        let shape = vec![self.channels];
        vec![
            ("weight".into(), (&self.weight).into()),
            ("bias".into(), (&self.bias).into()),
            ("running_mean".into(), StateRef::F32 { shape: shape.clone(), data: &self.running_mean }),
            ("running_var".into(), StateRef::F32 { shape, data: &self.running_var }),
            ("num_batches_tracked".into(), StateRef::I64(self.num_batches_tracked)),
        ]
    }

    fn state_mut(&mut self) -> Vec<(String, StateMut<'_>)> {
        let shape = vec![self.channels];
        vec![
            ("weight".into(), (&mut self.weight).into()),
            ("bias".into(), (&mut self.bias).into()),
            ("running_mean".into(), StateMut::F32 { shape: shape.clone(), data: &mut self.running_mean }),
            ("running_var".into(), StateMut::F32 { shape, data: &mut self.running_var }),
            ("num_batches_tracked".into(), StateMut::I64(&mut self.num_batches_tracked)),
        ]
    }
}
