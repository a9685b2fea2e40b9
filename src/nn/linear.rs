//! [`Linear`] (a GEMM through the `matrixmultiply` crate) and [`Flatten`].

use super::init;
use super::layer::{Layer, Mode, Window, no_forward};
use super::param::Param;
use super::tensor::{Tensor, expect_shape};
use crate::error::Error;
use crate::rng::SplitMix64;
use crate::sgemm::{MatMut, MatRef, gemm};

/// A fully connected layer `y = x Wᵀ + b` (`torch.nn.Linear`): input `[n, in, 1, 1]`,
/// weight `[out, in]`, bias `[out]`, output `[n, out, 1, 1]`.
///
/// ```
/// use sverka::nn::{Layer, Linear};
/// let fc = Linear::new(784, 128, &mut sverka::rng::SplitMix64::new(0))?;
/// assert_eq!(fc.num_params(), 784 * 128 + 128);
/// # Ok::<(), sverka::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Linear {
    in_features: usize,
    out_features: usize,
    weight: Param,
    bias: Param,
    input: Option<Tensor>,
}

impl Linear {
    /// A layer with PyTorch's default initialisation drawn from `rng` (weight
    /// Kaiming-uniform a = √5, bias uniform `±1/sqrt(in_features)`).
    pub fn new(in_features: usize, out_features: usize, rng: &mut SplitMix64) -> Result<Self, Error> {
        if in_features == 0 {
            return Err(Error::Zero { param: "in_features" });
        }
        if out_features == 0 {
            return Err(Error::Zero { param: "out_features" });
        }
        let len = crate::spec::product("weight length", &[in_features, out_features])?;
        let weight =
            Param::new("weight", vec![out_features, in_features], init::default_weight(len, in_features, rng))?;
        let bias = Param::new("bias", vec![out_features], init::default_bias(out_features, in_features, rng))?;
        Ok(Linear { in_features, out_features, weight, bias, input: None })
    }
}

impl Layer for Linear {
    fn describe(&self) -> String {
        format!("Linear({}, {})", self.in_features, self.out_features)
    }

    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        expect_shape("Linear input", input, [input[0], self.in_features, 1, 1])?;
        Ok([input[0], self.out_features, 1, 1])
    }

    fn window(&self) -> Window {
        Window::Global
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> Result<Tensor, Error> {
        let shape = self.output_shape(x.shape())?;
        let n = shape[0];
        let mut y = Tensor::zeros(shape)?;
        for row in y.data_mut().chunks_mut(self.out_features) {
            row.copy_from_slice(self.bias.value());
        }
        let w = MatRef::rows(self.weight.value(), self.out_features, self.in_features).t();
        gemm(MatRef::rows(x.data(), n, self.in_features), w, 1.0, MatMut::rows(y.data_mut(), n, self.out_features));
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let x = self.input.as_ref().ok_or_else(|| no_forward("Linear"))?;
        let n = x.shape()[0];
        expect_shape("grad_out", grad_out.shape(), [n, self.out_features, 1, 1])?;
        let dy = grad_out.data();
        // dW += dYᵀ X
        let dy_t = MatRef::rows(dy, n, self.out_features).t();
        let dw = MatMut::rows(self.weight.grad_mut(), self.out_features, self.in_features);
        gemm(dy_t, MatRef::rows(x.data(), n, self.in_features), 1.0, dw);
        // db += column sums of dY
        for row in dy.chunks(self.out_features) {
            self.bias.accumulate(row);
        }
        // dX = dY W
        let mut dx = Tensor::zeros(x.shape())?;
        let w = MatRef::rows(self.weight.value(), self.out_features, self.in_features);
        gemm(MatRef::rows(dy, n, self.out_features), w, 0.0, MatMut::rows(dx.data_mut(), n, self.in_features));
        Ok(dx)
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight, &mut self.bias]
    }
}

/// Flattens `[n, c, h, w]` into feature vectors `[n, c*h*w, 1, 1]` (`torch.nn.Flatten`).
#[derive(Clone, Debug, Default)]
pub struct Flatten {
    input_shape: Option<[usize; 4]>,
}

impl Flatten {
    /// A flatten layer.
    pub fn new() -> Self {
        Flatten::default()
    }
}

impl Layer for Flatten {
    fn describe(&self) -> String {
        "Flatten".into()
    }

    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        let [n, c, h, w] = input;
        Ok([n, crate::spec::product("flattened features", &[c, h, w])?, 1, 1])
    }

    fn forward(&mut self, x: &Tensor, _mode: Mode) -> Result<Tensor, Error> {
        let shape = self.output_shape(x.shape())?;
        self.input_shape = Some(x.shape());
        x.clone().reshape(shape)
    }

    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let shape = self.input_shape.ok_or_else(|| no_forward("Flatten"))?;
        expect_shape("grad_out", grad_out.shape(), self.output_shape(shape)?)?;
        grad_out.clone().reshape(shape)
    }
}
