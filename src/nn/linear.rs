//! [`Linear`] (a GEMM through the `matrixmultiply` crate) and [`Flatten`].

use super::init;
use super::layer::{Layer, Mode, Window, no_forward};
use super::param::Param;
use super::tensor::{Tensor, expect_shape};
use crate::error::Error;
use crate::rng::SplitMix64;

/// A row-major or transposed view of a matrix stored in a slice: `rows x cols`, element
/// `(i, j)` at `i * row_stride + j * col_stride`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix.
    fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, row_stride: cols, col_stride: 1 }
    }
    /// The transpose of a row-major `cols x rows` matrix, seen as `rows x cols`.
    fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, row_stride: 1, col_stride: rows }
    }
}

/// `c = a * b + beta * c` with `c` row-major `a.rows x b.cols`.
fn gemm(a: Mat<'_>, b: Mat<'_>, beta: f32, c: &mut [f32]) {
    assert!(a.cols == b.rows, "gemm: inner dimensions {} and {} differ", a.cols, b.rows);
    assert!(a.data.len() >= a.rows * a.cols && b.data.len() >= b.rows * b.cols && c.len() == a.rows * b.cols);
    if a.rows == 0 || b.cols == 0 {
        return;
    }
    // SAFETY: the assertions above guarantee that every element `(i, j)` addressed
    // through the strides lies inside its slice: the largest offset of a dense
    // `rows x cols` matrix with these (row-major or column-major) strides is
    // `rows * cols - 1`, and `c` is a dense row-major matrix of exactly its length.
    unsafe {
        matrixmultiply::sgemm(
            a.rows,
            a.cols,
            b.cols,
            1.0,
            a.data.as_ptr(),
            a.row_stride as isize,
            a.col_stride as isize,
            b.data.as_ptr(),
            b.row_stride as isize,
            b.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            b.cols as isize,
            1,
        );
    }
}

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
        let w = Mat::transposed(self.weight.value(), self.in_features, self.out_features);
        gemm(Mat::rows(x.data(), n, self.in_features), w, 1.0, y.data_mut());
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let x = self.input.as_ref().ok_or_else(|| no_forward("Linear"))?;
        let n = x.shape()[0];
        expect_shape("grad_out", grad_out.shape(), [n, self.out_features, 1, 1])?;
        let dy = grad_out.data();
        // dW += dYᵀ X
        let dy_t = Mat::transposed(dy, self.out_features, n);
        gemm(dy_t, Mat::rows(x.data(), n, self.in_features), 1.0, self.weight.grad_mut());
        // db += column sums of dY
        for row in dy.chunks(self.out_features) {
            self.bias.accumulate(row);
        }
        // dX = dY W
        let mut dx = Tensor::zeros(x.shape())?;
        let w = Mat::rows(self.weight.value(), self.out_features, self.in_features);
        gemm(Mat::rows(dy, n, self.out_features), w, 0.0, dx.data_mut());
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
