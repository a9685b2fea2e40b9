//! [`Tensor`]: an owned, contiguous 4-D `f32` array in NCHW layout.

use std::fmt;

use crate::error::Error;
use crate::spec::product;

/// An owned 4-D tensor `[batch, channels, height, width]`, stored contiguously in NCHW
/// order. Feature vectors (the input and output of [`super::Linear`]) are
/// `[batch, features, 1, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: [usize; 4],
    data: Vec<f32>,
}

impl Tensor {
    /// Wraps `data` as a tensor of `shape`; `Err` unless `data.len()` is the product of
    /// the shape.
    pub fn new(shape: [usize; 4], data: Vec<f32>) -> Result<Self, Error> {
        let len = product("tensor length", &shape)?;
        if data.len() != len {
            return Err(Error::Shape {
                message: format!("shape {} needs {len} values, got {}", ShapeDisplay(shape), data.len()),
            });
        }
        Ok(Tensor { shape, data })
    }

    /// A tensor of zeros; `Err` if the size overflows or cannot be allocated.
    pub fn zeros(shape: [usize; 4]) -> Result<Self, Error> {
        let len = product("tensor length", &shape)?;
        Ok(Tensor { shape, data: crate::error::try_zeroed(len)? })
    }

    /// The shape `[batch, channels, height, width]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// The values in NCHW order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values in NCHW order, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Gives up the tensor, returning its values.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same values under another shape with the same number of elements.
    pub fn reshape(self, shape: [usize; 4]) -> Result<Self, Error> {
        Tensor::new(shape, self.data)
    }

    /// An element-wise function of this tensor, same shape.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor { shape: self.shape, data: self.data.iter().map(|&v| f(v)).collect() }
    }
}

/// Formats a shape as `[n, c, h, w]`.
#[derive(Clone, Copy, Debug)]
pub struct ShapeDisplay(pub [usize; 4]);

impl fmt::Display for ShapeDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [n, c, h, w] = self.0;
        write!(f, "[{n}, {c}, {h}, {w}]")
    }
}

/// `Err(Error::Shape)` unless `actual == expected`, naming `what`.
pub(crate) fn expect_shape(what: &str, actual: [usize; 4], expected: [usize; 4]) -> Result<(), Error> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::Shape {
            message: format!("{what} has shape {}, expected {}", ShapeDisplay(actual), ShapeDisplay(expected)),
        })
    }
}

/// `Err(Error::Shape)` unless `shape` has `channels` channels, naming the layer.
pub(crate) fn expect_channels(layer: &str, shape: [usize; 4], channels: usize) -> Result<(), Error> {
    if shape[1] == channels {
        Ok(())
    } else {
        Err(Error::Shape {
            message: format!("{layer} expects {channels} input channels, got input {}", ShapeDisplay(shape)),
        })
    }
}
