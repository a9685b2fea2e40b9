//! Optimisers ([`Sgd`], [`Adam`]) with PyTorch's update rules, and the cosine learning-rate
//! schedule [`cosine_lr`].

use super::param::Param;
use crate::error::Error;

/// Updates parameters from their accumulated gradients.
///
/// The optimiser keeps per-parameter state (momentum, moments) by position, so pass the
/// same parameters in the same order every step (e.g. `model.params_mut()`).
pub trait Optimizer {
    /// One update of every parameter in `params`.
    fn step(&mut self, params: &mut [&mut Param]) -> Result<(), Error>;
    /// The current learning rate.
    fn lr(&self) -> f32;
    /// Sets the learning rate (for schedules).
    fn set_lr(&mut self, lr: f32);
}

/// Returns per-parameter state buffers, created (zeroed) on the first step and checked
/// against the parameters on every later one.
fn state_for<'a>(state: &'a mut Vec<Vec<f32>>, params: &[&mut Param], what: &str) -> Result<&'a mut [Vec<f32>], Error> {
    if state.is_empty() {
        *state = params.iter().map(|p| vec![0.0; p.len()]).collect();
    }
    let matches = state.len() == params.len() && state.iter().zip(params).all(|(s, p)| s.len() == p.len());
    if !matches {
        return Err(Error::State { message: format!("{what}: the parameters differ from the ones of the first step") });
    }
    Ok(state)
}

/// Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight
/// decay (`torch.optim.SGD` with `dampening = 0`):
/// `g = grad + wd * p; v = momentum * v + g` (`v = g` on the first step);
/// `p -= lr * (nesterov ? g + momentum * v : v)`.
#[derive(Clone, Debug)]
pub struct Sgd {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: bool,
    velocity: Vec<Vec<f32>>,
}

impl Sgd {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f32) -> Self {
        Sgd { lr, momentum: 0.0, weight_decay: 0.0, nesterov: false, velocity: Vec::new() }
    }
    /// Sets the momentum factor.
    pub fn momentum(self, momentum: f32) -> Self {
        Sgd { momentum, ..self }
    }
    /// Sets the L2 weight decay.
    pub fn weight_decay(self, weight_decay: f32) -> Self {
        Sgd { weight_decay, ..self }
    }
    /// Enables or disables Nesterov momentum.
    pub fn nesterov(self, nesterov: bool) -> Self {
        Sgd { nesterov, ..self }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [&mut Param]) -> Result<(), Error> {
        let (lr, momentum, wd, nesterov) = (self.lr, self.momentum, self.weight_decay, self.nesterov);
        let first = self.velocity.is_empty();
        let velocity = state_for(&mut self.velocity, params, "Sgd")?;
        for (p, v) in params.iter_mut().zip(velocity) {
            let (value, grad) = p.value_and_grad();
            for ((x, &g), v) in value.iter_mut().zip(grad).zip(v.iter_mut()) {
                let g = g + wd * *x;
                let update = if momentum == 0.0 {
                    g
                } else {
                    *v = if first { g } else { momentum * *v + g };
                    if nesterov { g + momentum * *v } else { *v }
                };
                *x -= lr * update;
            }
        }
        Ok(())
    }
    fn lr(&self) -> f32 {
        self.lr
    }
    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
}

/// Adam (Kingma & Ba 2015) as `torch.optim.Adam`: betas (0.9, 0.999), eps 1e-8, optional
/// L2 weight decay added to the gradient, bias-corrected moments.
#[derive(Clone, Debug)]
pub struct Adam {
    lr: f32,
    betas: (f32, f32),
    eps: f32,
    weight_decay: f32,
    step: i32,
    moments: Vec<Vec<f32>>,
    squares: Vec<Vec<f32>>,
}

impl Adam {
    /// Adam with learning rate `lr` and PyTorch's defaults otherwise.
    pub fn new(lr: f32) -> Self {
        Adam {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            step: 0,
            moments: Vec::new(),
            squares: Vec::new(),
        }
    }
    /// Sets the moment decay rates.
    pub fn betas(self, beta1: f32, beta2: f32) -> Self {
        Adam { betas: (beta1, beta2), ..self }
    }
    /// Sets the denominator's epsilon.
    pub fn eps(self, eps: f32) -> Self {
        Adam { eps, ..self }
    }
    /// Sets the L2 weight decay.
    pub fn weight_decay(self, weight_decay: f32) -> Self {
        Adam { weight_decay, ..self }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [&mut Param]) -> Result<(), Error> {
        let moments = state_for(&mut self.moments, params, "Adam")?;
        let squares = state_for(&mut self.squares, params, "Adam")?;
        self.step = self.step.saturating_add(1);
        let (b1, b2) = self.betas;
        let step_size = self.lr / (1.0 - b1.powi(self.step));
        let correction2 = (1.0 - b2.powi(self.step)).sqrt();
        for ((p, m), v) in params.iter_mut().zip(moments).zip(squares) {
            let (value, grad) = p.value_and_grad();
            for (((x, &g), m), v) in value.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g + self.weight_decay * *x;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *x -= step_size * *m / (v.sqrt() / correction2 + self.eps);
            }
        }
        Ok(())
    }
    fn lr(&self) -> f32 {
        self.lr
    }
    fn set_lr(&mut self, lr: f32) {
        self.lr = lr;
    }
}

/// Cosine annealing from `base` to 0 (`torch.optim.lr_scheduler.CosineAnnealingLR` with
/// `eta_min = 0`): the learning rate for step `step` of `total`.
pub fn cosine_lr(base: f32, step: usize, total: usize) -> f32 {
    let t = step as f64 / total.max(1) as f64;
    (base as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())) as f32
}
