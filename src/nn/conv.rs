//! Convolution layers: [`Conv2d`] and [`ConvTranspose2d`], both configured by
//! [`ConvOptions`] and calling the public kernels.

use std::fmt;

use super::init;
use super::layer::{Layer, Mode, Window, no_forward, padding_text};
use super::param::Param;
use super::tensor::{Tensor, expect_channels, expect_shape};
use crate::Conv2dPlan;
use crate::error::Error;
use crate::rng::SplitMix64;
use crate::spec::{Conv2dSpec, ConvTranspose2dSpec, Padding, product};

/// The hyper-parameters of a convolution layer, with PyTorch's defaults (stride 1, no
/// padding, dilation 1, one group, with bias). Build with [`ConvOptions::new`] and the
/// chained setters, or set the public fields directly for asymmetric values.
///
/// ```
/// use sverka::nn::ConvOptions;
/// let o = ConvOptions::new(32, 64, 3).padding(1).stride(2);
/// assert_eq!(o.stride, [2, 2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOptions {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding (for [`ConvTranspose2d`]: removed from the full output).
    pub padding: Padding,
    /// Dilation `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Groups; must divide both channel counts.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
    /// [`ConvTranspose2d`] only: rows/columns added at the bottom/right of the output
    /// (must stay 0 for [`Conv2d`]).
    pub output_padding: [usize; 2],
}

impl ConvOptions {
    /// `in_channels → out_channels` with a square `kernel`, PyTorch's defaults otherwise.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        ConvOptions {
            in_channels,
            out_channels,
            kernel: [kernel; 2],
            stride: [1; 2],
            padding: Padding::ZERO,
            dilation: [1; 2],
            groups: 1,
            bias: true,
            output_padding: [0; 2],
        }
    }
    /// The same stride on both axes.
    pub fn stride(self, s: usize) -> Self {
        ConvOptions { stride: [s; 2], ..self }
    }
    /// The same padding on all four sides.
    pub fn padding(self, p: usize) -> Self {
        ConvOptions { padding: Padding::uniform(p), ..self }
    }
    /// The same dilation on both axes.
    pub fn dilation(self, d: usize) -> Self {
        ConvOptions { dilation: [d; 2], ..self }
    }
    /// The number of groups.
    pub fn groups(self, groups: usize) -> Self {
        ConvOptions { groups, ..self }
    }
    /// With or without bias.
    pub fn bias(self, bias: bool) -> Self {
        ConvOptions { bias, ..self }
    }
    /// The same output padding on both axes ([`ConvTranspose2d`] only).
    pub fn output_padding(self, p: usize) -> Self {
        ConvOptions { output_padding: [p; 2], ..self }
    }

    /// Checks the sizes that do not depend on the input: non-zero channels, kernel and
    /// groups, and groups dividing both channel counts.
    fn validate(&self) -> Result<(), Error> {
        let sizes = [
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("kernel[0]", self.kernel[0]),
            ("kernel[1]", self.kernel[1]),
            ("groups", self.groups),
        ];
        if let Some(&(param, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Zero { param });
        }
        for (param, channels) in [("in_channels", self.in_channels), ("out_channels", self.out_channels)] {
            if channels % self.groups != 0 {
                return Err(Error::Groups { param, channels, groups: self.groups });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ConvOptions {
    /// PyTorch-like: `(1, 32, kernel=3x3, stride=1, padding=1)`, non-defaults only after
    /// the kernel.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [kh, kw] = self.kernel;
        write!(f, "({}, {}, kernel={kh}x{kw}", self.in_channels, self.out_channels)?;
        if self.stride != [1, 1] {
            write!(f, ", stride={}x{}", self.stride[0], self.stride[1])?;
        }
        if self.padding != Padding::ZERO {
            write!(f, ", padding={}", padding_text(self.padding))?;
        }
        if self.output_padding != [0, 0] {
            write!(f, ", output_padding={}x{}", self.output_padding[0], self.output_padding[1])?;
        }
        if self.dilation != [1, 1] {
            write!(f, ", dilation={}x{}", self.dilation[0], self.dilation[1])?;
        }
        if self.groups != 1 {
            write!(f, ", groups={}", self.groups)?;
        }
        if !self.bias {
            write!(f, ", bias=false")?;
        }
        write!(f, ")")
    }
}

/// What distinguishes [`Conv2d`] from [`ConvTranspose2d`]: the kernel spec each one
/// builds, and the public kernels it calls. Implemented by [`Conv2dSpec`] and
/// [`ConvTranspose2dSpec`] only (the trait is sealed).
pub trait ConvKind: sealed::Sealed + Copy + Send {
    /// The layer's name, `"Conv2d"` or `"ConvTranspose2d"`.
    const NAME: &'static str;
    /// The weight shape PyTorch uses for these options.
    fn weight_shape(o: &ConvOptions) -> [usize; 4];
    /// The spec for an input of shape `input` (channels already checked).
    fn spec(o: &ConvOptions, input: [usize; 4]) -> Self;
    /// The output `[n, c, h, w]`, or why the spec is invalid.
    fn output_shape(&self) -> Result<[usize; 4], Error>;
    /// How output pixels see input pixels.
    fn window(o: &ConvOptions) -> Window;
    /// What the layer keeps between forward passes so it does not plan again: a
    /// [`Conv2dPlan`] for [`Conv2d`]; nothing for [`ConvTranspose2d`], whose one-shot kernel
    /// is all the public API offers.
    type Plan: fmt::Debug + Send;
    /// The forward pass through the cached plan `plan`: built on the first call or when the
    /// spec changed (a new input shape), otherwise only given the current weights.
    fn forward(
        &self,
        plan: &mut Option<Self::Plan>,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
    ) -> Result<(), Error>;
    /// The input-gradient kernel.
    fn backward_input(&self, grad_output: &[f32], weight: &[f32], grad_input: &mut [f32]) -> Result<(), Error>;
    /// The weight- and bias-gradient kernel.
    fn backward_weight(
        &self,
        input: &[f32],
        grad_output: &[f32],
        grad_weight: &mut [f32],
        grad_bias: Option<&mut [f32]>,
    ) -> Result<(), Error>;
}

/// Keeps [`ConvKind`] implemented by the two spec types only.
mod sealed {
    /// The seal: not nameable outside this module.
    pub trait Sealed {}
    impl Sealed for crate::Conv2dSpec {}
    impl Sealed for crate::ConvTranspose2dSpec {}
}

impl ConvKind for Conv2dSpec {
    const NAME: &'static str = "Conv2d";
    fn weight_shape(o: &ConvOptions) -> [usize; 4] {
        [o.out_channels, o.in_channels / o.groups, o.kernel[0], o.kernel[1]]
    }
    fn spec(o: &ConvOptions, input: [usize; 4]) -> Self {
        Conv2dSpec {
            batch: input[0],
            in_channels: o.in_channels,
            out_channels: o.out_channels,
            input: [input[2], input[3]],
            kernel: o.kernel,
            stride: o.stride,
            padding: o.padding,
            dilation: o.dilation,
            groups: o.groups,
        }
    }
    fn output_shape(&self) -> Result<[usize; 4], Error> {
        let [h, w] = self.output()?;
        Ok([self.batch, self.out_channels, h, w])
    }
    fn window(o: &ConvOptions) -> Window {
        Window::Sliding { kernel: o.kernel, stride: o.stride, dilation: o.dilation }
    }
    type Plan = Conv2dPlan;
    fn forward(
        &self,
        plan: &mut Option<Conv2dPlan>,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
    ) -> Result<(), Error> {
        let plan = match plan {
            Some(p) if p.spec() == self => {
                p.set_weights(weight, bias)?;
                p
            }
            _ => plan.insert(Conv2dPlan::new(self, weight, bias)?),
        };
        plan.run(input, output)
    }
    fn backward_input(&self, grad_output: &[f32], weight: &[f32], grad_input: &mut [f32]) -> Result<(), Error> {
        crate::conv2d_backward_input(self, grad_output, weight, grad_input)
    }
    fn backward_weight(
        &self,
        input: &[f32],
        grad_output: &[f32],
        grad_weight: &mut [f32],
        grad_bias: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        crate::conv2d_backward_weight(self, input, grad_output, grad_weight, grad_bias)
    }
}

impl ConvKind for ConvTranspose2dSpec {
    const NAME: &'static str = "ConvTranspose2d";
    fn weight_shape(o: &ConvOptions) -> [usize; 4] {
        [o.in_channels, o.out_channels / o.groups, o.kernel[0], o.kernel[1]]
    }
    fn spec(o: &ConvOptions, input: [usize; 4]) -> Self {
        ConvTranspose2dSpec {
            batch: input[0],
            in_channels: o.in_channels,
            out_channels: o.out_channels,
            input: [input[2], input[3]],
            kernel: o.kernel,
            stride: o.stride,
            padding: o.padding,
            dilation: o.dilation,
            groups: o.groups,
            output_padding: o.output_padding,
        }
    }
    fn output_shape(&self) -> Result<[usize; 4], Error> {
        let [h, w] = self.output()?;
        Ok([self.batch, self.out_channels, h, w])
    }
    fn window(o: &ConvOptions) -> Window {
        Window::Upsampling { kernel: o.kernel, stride: o.stride, dilation: o.dilation }
    }
    type Plan = ();
    fn forward(
        &self,
        _plan: &mut Option<()>,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        output: &mut [f32],
    ) -> Result<(), Error> {
        crate::conv_transpose2d(self, input, weight, bias, output)
    }
    fn backward_input(&self, grad_output: &[f32], weight: &[f32], grad_input: &mut [f32]) -> Result<(), Error> {
        crate::conv_transpose2d_backward_input(self, grad_output, weight, grad_input)
    }
    fn backward_weight(
        &self,
        input: &[f32],
        grad_output: &[f32],
        grad_weight: &mut [f32],
        grad_bias: Option<&mut [f32]>,
    ) -> Result<(), Error> {
        crate::conv_transpose2d_backward_weight(self, input, grad_output, grad_weight, grad_bias)
    }
}

/// A convolution layer of kind `K`: use the aliases [`Conv2d`] and [`ConvTranspose2d`].
#[derive(Debug)]
pub struct Conv<K: ConvKind> {
    options: ConvOptions,
    weight: Param,
    bias: Option<Param>,
    /// The plan of the last forward, reused while the input shape stays the same.
    plan: Option<K::Plan>,
    /// The spec, input and output shape of the last forward.
    cache: Option<(K, Tensor, [usize; 4])>,
}

/// A 2-D convolution layer (`torch.nn.Conv2d`): weight `[out_c, in_c / groups, kh, kw]`,
/// bias `[out_c]`.
///
/// ```
/// use sverka::nn::{Conv2d, ConvOptions, Layer};
/// let mut rng = sverka::rng::SplitMix64::new(0);
/// let conv = Conv2d::new(ConvOptions::new(1, 32, 3).padding(1), &mut rng)?;
/// assert_eq!(conv.num_params(), 3 * 3 * 1 * 32 + 32);
/// assert_eq!(conv.output_shape([64, 1, 28, 28])?, [64, 32, 28, 28]);
/// # Ok::<(), sverka::Error>(())
/// ```
pub type Conv2d = Conv<Conv2dSpec>;

/// A 2-D transposed convolution layer (`torch.nn.ConvTranspose2d`): weight
/// `[in_c, out_c / groups, kh, kw]`, bias `[out_c]`.
///
/// ```
/// use sverka::nn::{ConvOptions, ConvTranspose2d, Layer};
/// let mut rng = sverka::rng::SplitMix64::new(0);
/// let up = ConvTranspose2d::new(ConvOptions::new(8, 4, 3).stride(2).padding(1).output_padding(1), &mut rng)?;
/// assert_eq!(up.output_shape([1, 8, 7, 7])?, [1, 4, 14, 14]);
/// # Ok::<(), sverka::Error>(())
/// ```
pub type ConvTranspose2d = Conv<ConvTranspose2dSpec>;

impl<K: ConvKind> Conv<K> {
    /// A layer with PyTorch's default initialisation drawn from `rng`: weight
    /// Kaiming-uniform (a = √5), bias uniform in `±1/sqrt(fan_in)`, where `fan_in` is the
    /// weight's dimension 1 times the kernel size (as PyTorch computes it, for both kinds).
    /// `Err` for zero sizes, groups not dividing the channels, or an output padding on a
    /// [`Conv2d`].
    pub fn new(options: ConvOptions, rng: &mut SplitMix64) -> Result<Self, Error> {
        options.validate()?;
        if K::NAME == Conv2dSpec::NAME && options.output_padding != [0, 0] {
            return Err(Error::Value {
                param: "output_padding",
                value: options.output_padding[0].max(options.output_padding[1]) as f64,
                domain: "0 (Conv2d has no output padding)",
            });
        }
        let shape = K::weight_shape(&options);
        let fan_in = product("fan_in", &shape[1..])?;
        let len = product("weight length", &shape)?;
        let weight = Param::new("weight", shape.to_vec(), init::default_weight(len, fan_in, rng))?;
        let n = options.out_channels;
        let bias = options.bias.then(|| Param::new("bias", vec![n], init::default_bias(n, fan_in, rng))).transpose()?;
        Ok(Conv { options, weight, bias, plan: None, cache: None })
    }

    /// The layer's options.
    pub fn options(&self) -> &ConvOptions {
        &self.options
    }

    /// The spec for input shape `input`, checking its channel count.
    fn spec(&self, input: [usize; 4]) -> Result<K, Error> {
        expect_channels(K::NAME, input, self.options.in_channels)?;
        Ok(K::spec(&self.options, input))
    }
}

impl<K: ConvKind> Layer for Conv<K> {
    fn describe(&self) -> String {
        format!("{}{}", K::NAME, self.options)
    }

    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        self.spec(input)?.output_shape()
    }

    fn window(&self) -> Window {
        K::window(&self.options)
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> Result<Tensor, Error> {
        let spec = self.spec(x.shape())?;
        let shape = spec.output_shape()?;
        let mut out = Tensor::zeros(shape)?;
        let bias = self.bias.as_ref().map(Param::value);
        spec.forward(&mut self.plan, x.data(), self.weight.value(), bias, out.data_mut())?;
        self.cache = Some((spec, x.clone(), shape));
        Ok(out)
    }

    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let (spec, input, shape) = self.cache.as_ref().ok_or_else(|| no_forward(K::NAME))?;
        expect_shape("grad_out", grad_out.shape(), *shape)?;
        let mut grad_in = Tensor::zeros(input.shape())?;
        spec.backward_input(grad_out.data(), self.weight.value(), grad_in.data_mut())?;
        let mut grad_w = vec![0.0; self.weight.len()];
        let mut grad_b = self.bias.as_ref().map(|b| vec![0.0; b.len()]);
        spec.backward_weight(input.data(), grad_out.data(), &mut grad_w, grad_b.as_deref_mut())?;
        self.weight.accumulate(&grad_w);
        if let (Some(bias), Some(grad_b)) = (self.bias.as_mut(), grad_b) {
            bias.accumulate(&grad_b);
        }
        Ok(grad_in)
    }

    fn params(&self) -> Vec<&Param> {
        std::iter::once(&self.weight).chain(self.bias.as_ref()).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        std::iter::once(&mut self.weight).chain(self.bias.as_mut()).collect()
    }
}
