//! Pooling layers: [`MaxPool2d`] and [`AvgPool2d`], configured by [`PoolOptions`].

use std::fmt;

use super::layer::{Layer, Mode, Window, no_forward, padding_text};
use super::tensor::{Tensor, expect_shape};
use crate::error::Error;
use crate::spec::{Padding, Pool2dSpec};

/// The hyper-parameters of a pooling layer, with PyTorch's defaults (stride = kernel, no
/// padding, dilation 1, floor mode, `count_include_pad = true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Implicit padding (at most half the kernel per side).
    pub padding: Padding,
    /// Dilation of the window.
    pub dilation: [usize; 2],
    /// Round output sizes up.
    pub ceil_mode: bool,
    /// Average pooling: count padding in the divisor.
    pub count_include_pad: bool,
}

impl PoolOptions {
    /// A square `kernel` window with stride `kernel`.
    pub fn new(kernel: usize) -> Self {
        PoolOptions {
            kernel: [kernel; 2],
            stride: [kernel; 2],
            padding: Padding::ZERO,
            dilation: [1; 2],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    /// The same stride on both axes.
    pub fn stride(self, s: usize) -> Self {
        PoolOptions { stride: [s; 2], ..self }
    }
    /// The same padding on all four sides.
    pub fn padding(self, p: usize) -> Self {
        PoolOptions { padding: Padding::uniform(p), ..self }
    }
    /// The same dilation on both axes.
    pub fn dilation(self, d: usize) -> Self {
        PoolOptions { dilation: [d; 2], ..self }
    }
    /// Ceil or floor mode.
    pub fn ceil_mode(self, ceil_mode: bool) -> Self {
        PoolOptions { ceil_mode, ..self }
    }
    /// Whether average pooling counts padding in the divisor.
    pub fn count_include_pad(self, count_include_pad: bool) -> Self {
        PoolOptions { count_include_pad, ..self }
    }

    /// The kernel spec for an input of shape `input`.
    fn spec(&self, input: [usize; 4]) -> Pool2dSpec {
        Pool2dSpec {
            batch: input[0],
            channels: input[1],
            input: [input[2], input[3]],
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }

    /// The output shape for `input`, validating the spec.
    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        let [h, w] = self.spec(input).output()?;
        Ok([input[0], input[1], h, w])
    }

    /// The sliding window, for the receptive field.
    fn window(&self) -> Window {
        Window::Sliding { kernel: self.kernel, stride: self.stride, dilation: self.dilation }
    }
}

impl fmt::Display for PoolOptions {
    /// PyTorch-like: `(kernel=2x2, stride=2x2)` plus the non-defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ([kh, kw], [sh, sw]) = (self.kernel, self.stride);
        write!(f, "(kernel={kh}x{kw}, stride={sh}x{sw}")?;
        if self.padding != Padding::ZERO {
            write!(f, ", padding={}", padding_text(self.padding))?;
        }
        if self.dilation != [1, 1] {
            write!(f, ", dilation={}x{}", self.dilation[0], self.dilation[1])?;
        }
        if self.ceil_mode {
            write!(f, ", ceil_mode=true")?;
        }
        write!(f, ")")
    }
}

/// What a pooling layer's backward needs from its forward.
#[derive(Clone, Debug)]
struct PoolCache {
    spec: Pool2dSpec,
    input_shape: [usize; 4],
    output_shape: [usize; 4],
}

impl PoolCache {
    /// Checks `grad_out` against the cached output shape and allocates the input gradient.
    fn grad_input(&self, grad_out: &Tensor) -> Result<Tensor, Error> {
        expect_shape("grad_out", grad_out.shape(), self.output_shape)?;
        Tensor::zeros(self.input_shape)
    }
}

/// Runs a pooling forward: builds the spec, allocates the output, calls `kernel`.
fn pool_forward(
    options: &PoolOptions,
    x: &Tensor,
    kernel: impl FnOnce(&Pool2dSpec, &mut [f32]) -> Result<(), Error>,
) -> Result<(Tensor, PoolCache), Error> {
    let spec = options.spec(x.shape());
    let output_shape = options.output_shape(x.shape())?;
    let mut out = Tensor::zeros(output_shape)?;
    kernel(&spec, out.data_mut())?;
    Ok((out, PoolCache { spec, input_shape: x.shape(), output_shape }))
}

/// Max pooling (`torch.nn.MaxPool2d`); the gradient flows to the first maximal element of
/// each window.
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    options: PoolOptions,
    cache: Option<(PoolCache, Vec<u32>)>,
}

impl MaxPool2d {
    /// A max-pooling layer; the options are validated on the first forward (or by
    /// [`Layer::output_shape`]).
    pub fn new(options: PoolOptions) -> Self {
        MaxPool2d { options, cache: None }
    }
}

impl Layer for MaxPool2d {
    fn describe(&self) -> String {
        format!("MaxPool2d{}", self.options)
    }
    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        self.options.output_shape(input)
    }
    fn window(&self) -> Window {
        self.options.window()
    }
    fn forward(&mut self, x: &Tensor, _mode: Mode) -> Result<Tensor, Error> {
        let mut indices = Vec::new();
        let (out, cache) = pool_forward(&self.options, x, |spec, out| {
            indices = vec![0; out.len()];
            crate::max_pool2d(spec, x.data(), out, Some(&mut indices))
        })?;
        self.cache = Some((cache, indices));
        Ok(out)
    }
    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let (cache, indices) = self.cache.as_ref().ok_or_else(|| no_forward("MaxPool2d"))?;
        let mut grad_in = cache.grad_input(grad_out)?;
        crate::max_pool2d_backward(&cache.spec, grad_out.data(), indices, grad_in.data_mut())?;
        Ok(grad_in)
    }
}

/// Average pooling (`torch.nn.AvgPool2d`).
#[derive(Clone, Debug)]
pub struct AvgPool2d {
    options: PoolOptions,
    cache: Option<PoolCache>,
}

impl AvgPool2d {
    /// An average-pooling layer; the options are validated on the first forward (or by
    /// [`Layer::output_shape`]).
    pub fn new(options: PoolOptions) -> Self {
        AvgPool2d { options, cache: None }
    }
}

impl Layer for AvgPool2d {
    fn describe(&self) -> String {
        format!("AvgPool2d{}", self.options)
    }
    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        self.options.output_shape(input)
    }
    fn window(&self) -> Window {
        self.options.window()
    }
    fn forward(&mut self, x: &Tensor, _mode: Mode) -> Result<Tensor, Error> {
        let (out, cache) = pool_forward(&self.options, x, |spec, out| crate::avg_pool2d(spec, x.data(), out))?;
        self.cache = Some(cache);
        Ok(out)
    }
    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let cache = self.cache.as_ref().ok_or_else(|| no_forward("AvgPool2d"))?;
        let mut grad_in = cache.grad_input(grad_out)?;
        crate::avg_pool2d_backward(&cache.spec, grad_out.data(), grad_in.data_mut())?;
        Ok(grad_in)
    }
}
