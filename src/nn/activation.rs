//! Element-wise activations: [`ReLU`] and [`Sigmoid`]. Both cache their output, from
//! which their derivative follows.

use super::layer::{Layer, Mode, no_forward};
use super::tensor::{Tensor, expect_shape};
use crate::error::Error;

/// `grad_out * df(y)` element-wise, where `y` is the cached output of the last forward.
fn backward_from_output(
    layer: &str,
    output: Option<&Tensor>,
    grad_out: &Tensor,
    df: impl Fn(f32) -> f32,
) -> Result<Tensor, Error> {
    let y = output.ok_or_else(|| no_forward(layer))?;
    expect_shape("grad_out", grad_out.shape(), y.shape())?;
    let data = y.data().iter().zip(grad_out.data()).map(|(&y, &g)| g * df(y)).collect();
    Tensor::new(y.shape(), data)
}

/// `max(x, 0)` (NaN propagates), `torch.nn.ReLU`.
#[derive(Clone, Debug, Default)]
pub struct ReLU {
    output: Option<Tensor>,
}

impl ReLU {
    /// A ReLU layer.
    pub fn new() -> Self {
        ReLU::default()
    }
}

impl Layer for ReLU {
    fn describe(&self) -> String {
        "ReLU".into()
    }
    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        Ok(input)
    }
    fn forward(&mut self, x: &Tensor, _mode: Mode) -> Result<Tensor, Error> {
        let y = x.map(|v| if v < 0.0 { 0.0 } else { v });
        self.output = Some(y.clone());
        Ok(y)
    }
    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        backward_from_output("ReLU", self.output.as_ref(), grad_out, |y| if y > 0.0 { 1.0 } else { 0.0 })
    }
}

/// The logistic function `1 / (1 + exp(-x))`, `torch.nn.Sigmoid`.
#[derive(Clone, Debug, Default)]
pub struct Sigmoid {
    output: Option<Tensor>,
}

impl Sigmoid {
    /// A sigmoid layer.
    pub fn new() -> Self {
        Sigmoid::default()
    }
}

/// The logistic function, computed without overflow for large `|x|`.
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Layer for Sigmoid {
    fn describe(&self) -> String {
        "Sigmoid".into()
    }
    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        Ok(input)
    }
    fn forward(&mut self, x: &Tensor, _mode: Mode) -> Result<Tensor, Error> {
        let y = x.map(sigmoid);
        self.output = Some(y.clone());
        Ok(y)
    }
    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        backward_from_output("Sigmoid", self.output.as_ref(), grad_out, |y| y * (1.0 - y))
    }
}
