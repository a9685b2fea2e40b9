//! [`Param`]: a trainable parameter with its gradient, and the checkpoint view of a
//! layer's state ([`StateRef`], [`StateMut`]).

use crate::error::Error;
use crate::spec::product;

/// A trainable parameter: its values, its gradient (same length, accumulated by
/// `backward` until [`Param::zero_grad`]) and its PyTorch shape and name.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    name: &'static str,
    shape: Vec<usize>,
    value: Vec<f32>,
    grad: Vec<f32>,
}

impl Param {
    /// A parameter named `name` (its PyTorch attribute, e.g. `"weight"`) with the given
    /// shape and initial values, and a zero gradient; `Err` unless `value.len()` is the
    /// product of `shape`.
    pub fn new(name: &'static str, shape: Vec<usize>, value: Vec<f32>) -> Result<Self, Error> {
        let len = product("parameter length", &shape)?;
        if value.len() != len {
            return Err(Error::Shape {
                message: format!("parameter {name} of shape {shape:?} needs {len} values, got {}", value.len()),
            });
        }
        let grad = vec![0.0; len];
        Ok(Param { name, shape, value, grad })
    }

    /// The PyTorch attribute name, e.g. `"weight"` or `"bias"`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The PyTorch shape, e.g. `[out_c, in_c, kh, kw]`.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether the parameter holds no values.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// The values.
    pub fn value(&self) -> &[f32] {
        &self.value
    }

    /// The values, mutable.
    pub fn value_mut(&mut self) -> &mut [f32] {
        &mut self.value
    }

    /// The accumulated gradient.
    pub fn grad(&self) -> &[f32] {
        &self.grad
    }

    /// The accumulated gradient, mutable.
    pub fn grad_mut(&mut self) -> &mut [f32] {
        &mut self.grad
    }

    /// The values (mutable) and the gradient at once, for optimisers.
    pub fn value_and_grad(&mut self) -> (&mut [f32], &[f32]) {
        (&mut self.value, &self.grad)
    }

    /// Sets the gradient to zero.
    pub fn zero_grad(&mut self) {
        self.grad.fill(0.0);
    }

    /// Adds `delta` to the gradient (`delta` has the parameter's length).
    pub(crate) fn accumulate(&mut self, delta: &[f32]) {
        for (g, d) in self.grad.iter_mut().zip(delta) {
            *g += d;
        }
    }
}

/// One entry of a layer's state (PyTorch's `state_dict`), read-only.
#[derive(Clone, Debug, PartialEq)]
pub enum StateRef<'a> {
    /// A float tensor: a parameter or a running statistic.
    F32 {
        /// Its PyTorch shape.
        shape: Vec<usize>,
        /// Its values.
        data: &'a [f32],
    },
    /// A 0-dimensional int64 tensor (BatchNorm's `num_batches_tracked`).
    I64(i64),
}

/// One entry of a layer's state (PyTorch's `state_dict`), writable (for loading).
#[derive(Debug, PartialEq)]
pub enum StateMut<'a> {
    /// A float tensor: a parameter or a running statistic.
    F32 {
        /// Its PyTorch shape.
        shape: Vec<usize>,
        /// Its values.
        data: &'a mut [f32],
    },
    /// A 0-dimensional int64 tensor (BatchNorm's `num_batches_tracked`).
    I64(&'a mut i64),
}

impl<'a> From<&'a Param> for StateRef<'a> {
    fn from(p: &'a Param) -> Self {
        StateRef::F32 { shape: p.shape.clone(), data: &p.value }
    }
}

impl<'a> From<&'a mut Param> for StateMut<'a> {
    fn from(p: &'a mut Param) -> Self {
        StateMut::F32 { shape: p.shape.clone(), data: &mut p.value }
    }
}
