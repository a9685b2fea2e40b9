//! The [`Layer`] trait every building block implements, and [`Mode`].

use super::param::{Param, StateMut, StateRef};
use super::tensor::Tensor;
use crate::error::Error;
use crate::spec::Padding;

/// Training or evaluation, as PyTorch's `model.train()` / `model.eval()`: BatchNorm2d
/// normalises with batch statistics and updates its running estimates in `Train`, and
/// uses the running estimates in `Eval`; Dropout2d drops channels only in `Train`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training behaviour.
    Train,
    /// Inference behaviour.
    Eval,
}

/// How a layer's output pixels see its input pixels, for the receptive field in
/// [`super::Sequential::summary`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// Each output pixel depends on the input pixel at the same position only.
    Pointwise,
    /// A sliding window (convolution, pooling): `kernel` taps `dilation` apart, moving
    /// `stride` input pixels per output pixel.
    Sliding {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Stride `[sh, sw]`.
        stride: [usize; 2],
        /// Dilation `[dh, dw]`.
        dilation: [usize; 2],
    },
    /// A transposed convolution: `stride` output pixels per input pixel.
    Upsampling {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Stride `[sh, sw]`.
        stride: [usize; 2],
        /// Dilation `[dh, dw]`.
        dilation: [usize; 2],
    },
    /// Every output value depends on the whole input (Linear).
    Global,
}

/// A building block of a network: a forward pass that caches what its backward pass
/// needs, and a backward pass that accumulates parameter gradients and returns the
/// gradient with respect to the input.
///
/// There is no autograd tape: `backward` must follow the `forward` whose output the
/// gradient belongs to (otherwise it returns [`Error::State`]).
pub trait Layer: Send {
    /// A one-line description, PyTorch style, e.g. `Conv2d(1, 32, kernel=3x3, padding=1)`.
    fn describe(&self) -> String;

    /// The output shape for an input of shape `input`, or why that input is invalid.
    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error>;

    /// How output pixels see input pixels (for the receptive field).
    fn window(&self) -> Window {
        Window::Pointwise
    }

    /// Computes the output for `x`, caching what [`Layer::backward`] needs.
    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor, Error>;

    /// Given the gradient of the loss with respect to the last forward's output, adds the
    /// parameter gradients into [`Param::grad`] and returns the gradient with respect to
    /// that forward's input.
    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error>;

    /// The trainable parameters, in PyTorch's order.
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }

    /// The trainable parameters, mutable (for optimisers), in the order of [`Layer::params`].
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }

    /// The layer's `state_dict`: parameters then buffers, with PyTorch's names.
    fn state(&self) -> Vec<(String, StateRef<'_>)> {
        self.params().into_iter().map(|p| (p.name().to_string(), p.into())).collect()
    }

    /// The layer's `state_dict`, writable, in the order of [`Layer::state`].
    fn state_mut(&mut self) -> Vec<(String, StateMut<'_>)> {
        self.params_mut().into_iter().map(|p| (p.name().to_string(), p.into())).collect()
    }

    /// Number of trainable values (PyTorch's `sum(p.numel() for p in parameters())`).
    fn num_params(&self) -> usize {
        self.params().iter().map(|p| p.len()).sum()
    }

    /// Sets every parameter gradient to zero.
    fn zero_grad(&mut self) {
        self.params_mut().into_iter().for_each(Param::zero_grad);
    }
}

/// The error for `backward` called without a matching `forward`.
pub(crate) fn no_forward(layer: &str) -> Error {
    Error::State { message: format!("{layer}: backward called before forward") }
}

/// Padding as PyTorch prints it: `1` when uniform, else `top/bottom/left/right`.
pub(crate) fn padding_text(p: Padding) -> String {
    if p == Padding::uniform(p.top) {
        p.top.to_string()
    } else {
        format!("{}/{}/{}/{}", p.top, p.bottom, p.left, p.right)
    }
}
