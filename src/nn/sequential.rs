//! [`Sequential`]: layers applied in order, and its [`Summary`] table.

use std::fmt;

use super::layer::{Layer, Mode, Window};
use super::param::{Param, StateMut, StateRef};
use super::tensor::{ShapeDisplay, Tensor};
use crate::error::Error;

/// Layers applied one after the other (`torch.nn.Sequential`). Its `state_dict` names are
/// the layer's index, a dot and the layer's own name (`0.weight`, `1.running_mean`, …), as
/// in PyTorch, so a checkpoint loads into the `nn.Sequential` with the same layers.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    /// An empty network.
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends `layer` (builder style).
    pub fn with(mut self, layer: impl Layer + 'static) -> Self {
        self.push(layer);
        self
    }

    /// Appends `layer`.
    pub fn push(&mut self, layer: impl Layer + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Per layer: its description, output shape, parameter count and receptive field,
    /// for an input of shape `input`; `Err` if some layer rejects its input.
    pub fn summary(&self, input: [usize; 4]) -> Result<Summary, Error> {
        let mut shape = input;
        let mut field = Receptive::new();
        let mut rows = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            shape = layer.output_shape(shape)?;
            field.apply(layer.window());
            rows.push(SummaryRow {
                layer: layer.describe(),
                output: shape,
                params: layer.num_params(),
                receptive: field.size([input[2], input[3]]),
            });
        }
        Ok(Summary { input, rows })
    }
}

impl Layer for Sequential {
    fn describe(&self) -> String {
        let inner: Vec<_> = self.layers.iter().map(|l| l.describe()).collect();
        format!("Sequential({})", inner.join(", "))
    }

    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        self.layers.iter().try_fold(input, |shape, l| l.output_shape(shape))
    }

    fn window(&self) -> Window {
        // A nested Sequential is summarised as one row; its exact window is not a single
        // kernel, so call it global when it has any non-pointwise layer.
        if self.layers.iter().all(|l| l.window() == Window::Pointwise) { Window::Pointwise } else { Window::Global }
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor, Error> {
        let mut layers = self.layers.iter_mut();
        let Some(first) = layers.next() else {
            return Ok(x.clone());
        };
        let y = first.forward(x, mode)?;
        layers.try_fold(y, |y, l| l.forward(&y, mode))
    }

    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let mut layers = self.layers.iter_mut().rev();
        let Some(last) = layers.next() else {
            return Ok(grad_out.clone());
        };
        let g = last.backward(grad_out)?;
        layers.try_fold(g, |g, l| l.backward(&g))
    }

    fn params(&self) -> Vec<&Param> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.layers.iter_mut().flat_map(|l| l.params_mut()).collect()
    }

    fn state(&self) -> Vec<(String, StateRef<'_>)> {
        let layers = self.layers.iter().enumerate();
        layers.flat_map(|(i, l)| l.state().into_iter().map(move |(name, t)| (format!("{i}.{name}"), t))).collect()
    }

    fn state_mut(&mut self) -> Vec<(String, StateMut<'_>)> {
        let layers = self.layers.iter_mut().enumerate();
        layers.flat_map(|(i, l)| l.state_mut().into_iter().map(move |(name, t)| (format!("{i}.{name}"), t))).collect()
    }
}

/// The receptive field of one output pixel in network-input pixels, per axis: its size
/// `r` and the distance `j` between neighbouring output pixels, in input pixels.
struct Receptive {
    size: [f64; 2],
    jump: [f64; 2],
    global: bool,
}

impl Receptive {
    fn new() -> Self {
        Receptive { size: [1.0; 2], jump: [1.0; 2], global: false }
    }

    /// Composes with one more layer: a window of extent `e = d(k-1)+1` adds `(e-1) j` and
    /// multiplies `j` by the stride; a transposed convolution with stride `s` sees
    /// `ceil(e/s)` input pixels per output pixel and divides `j` by `s`.
    fn apply(&mut self, window: Window) {
        for axis in 0..2 {
            let (r, j) = (&mut self.size[axis], &mut self.jump[axis]);
            match window {
                Window::Pointwise => {}
                Window::Sliding { kernel, stride, dilation } => {
                    *r += dilation[axis] as f64 * kernel[axis].saturating_sub(1) as f64 * *j;
                    *j *= stride[axis] as f64;
                }
                Window::Upsampling { kernel, stride, dilation } => {
                    let extent = dilation[axis] as f64 * kernel[axis].saturating_sub(1) as f64 + 1.0;
                    let stride = stride[axis].max(1) as f64;
                    *r += ((extent / stride).ceil() - 1.0).max(0.0) * *j;
                    *j /= stride;
                }
                Window::Global => self.global = true,
            }
        }
    }

    /// `[h, w]` in input pixels (the whole input once a global layer was applied).
    fn size(&self, input: [usize; 2]) -> [usize; 2] {
        if self.global { input } else { self.size.map(|r| r.round() as usize) }
    }
}

/// One row of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The layer's description.
    pub layer: String,
    /// Its output shape.
    pub output: [usize; 4],
    /// Its number of trainable values.
    pub params: usize,
    /// How many input pixels `[h, w]` one of its output values depends on.
    pub receptive: [usize; 2],
}

/// The table printed by [`Sequential::summary`]: one row per layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The network's input shape.
    pub input: [usize; 4],
    /// One row per layer.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Total number of trainable values.
    pub fn total_params(&self) -> usize {
        self.rows.iter().map(|r| r.params).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.rows.iter().enumerate().map(|(i, r)| format!("{i:>2}: {}", r.layer)).collect();
        let width = names.iter().map(String::len).max().unwrap_or(0).max(5) + 2;
        writeln!(f, "{:<width$}{:>18}{:>10}{:>11}", "layer", "output shape", "params", "receptive")?;
        writeln!(f, "{:<width$}{:>18}{:>10}{:>11}", "input", ShapeDisplay(self.input).to_string(), "", "1x1")?;
        for (name, r) in names.iter().zip(&self.rows) {
            let field = format!("{}x{}", r.receptive[0], r.receptive[1]);
            writeln!(f, "{name:<width$}{:>18}{:>10}{field:>11}", ShapeDisplay(r.output).to_string(), r.params)?;
        }
        write!(f, "total params: {}", self.total_params())
    }
}
