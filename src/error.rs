//! The one error type of sverka.
//!
//! Every public function validates its spec and every slice length before it touches
//! memory, with overflow-checked arithmetic, and reports the first problem it finds as an
//! [`Error`] whose message names the parameter and the numbers involved.

use std::fmt;

/// Why a call was rejected. Nothing is written to any output buffer when an `Err` is
/// returned from validation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// A size, stride, dilation or group count that must be at least 1 is 0.
    Zero {
        /// The parameter, e.g. `"stride[0]"`.
        param: &'static str,
    },
    /// A product or sum of sizes does not fit in `usize` (or exceeds the largest
    /// allocation Rust allows, `isize::MAX` bytes).
    Overflow {
        /// What was being computed, e.g. `"input length"`.
        what: &'static str,
    },
    /// `groups` does not divide a channel count.
    Groups {
        /// Which channel count, `"in_channels"` or `"out_channels"`.
        param: &'static str,
        /// The channel count.
        channels: usize,
        /// The group count.
        groups: usize,
    },
    /// The (dilated) kernel does not fit in the padded input, so the output would be empty.
    EmptyOutput {
        /// The spatial axis, `"height"` or `"width"`.
        axis: &'static str,
        /// Input size plus both paddings along that axis.
        padded_input: usize,
        /// Dilated kernel extent `dilation * (kernel - 1) + 1` along that axis.
        kernel_extent: usize,
    },
    /// Pooling padding larger than half the kernel (PyTorch's rule), so a window could lie
    /// entirely in the padding.
    PoolPadding {
        /// Which side, e.g. `"padding.left"`.
        param: &'static str,
        /// The padding on that side.
        padding: usize,
        /// The kernel size along that axis.
        kernel: usize,
    },
    /// A pooling window (possible with dilation or ceil_mode) covers no input element.
    EmptyWindow {
        /// The spatial axis, `"height"` or `"width"`.
        axis: &'static str,
        /// The output position whose window is empty.
        index: usize,
    },
    /// Transposed convolution `output_padding` must be smaller than `max(stride, dilation)`.
    OutputPadding {
        /// Which axis, `"output_padding[0]"` or `"output_padding[1]"`.
        param: &'static str,
        /// The output padding.
        output_padding: usize,
        /// `max(stride, dilation)` along that axis.
        limit: usize,
    },
    /// A buffer has the wrong length for its spec.
    Length {
        /// The buffer, e.g. `"weight"`.
        buffer: &'static str,
        /// The length the spec requires.
        expected: usize,
        /// The length that was passed.
        actual: usize,
    },
    /// A real-valued parameter is outside its domain (NaN, negative, or out of range).
    Value {
        /// The parameter, e.g. `"p"` or `"eps"`.
        param: &'static str,
        /// The rejected value.
        value: f64,
        /// The accepted domain, e.g. `"[0, 1]"`.
        domain: &'static str,
    },
    /// A max-pool index points outside its input plane.
    Index {
        /// Position of the bad index in the `indices` buffer.
        position: usize,
        /// The index value.
        index: u32,
        /// The plane size `h * w` it must be smaller than.
        plane: usize,
    },
    /// A workspace or weight buffer could not be allocated.
    Alloc {
        /// Number of `f32` elements requested.
        elements: usize,
    },
    /// A data file or checkpoint is malformed.
    Format {
        /// What is wrong, in words.
        message: String,
    },
    /// A forced choice (ISA, algorithm or kernel of a plan) that the CPU or the problem
    /// does not support.
    Unsupported {
        /// What was asked for, in words.
        what: String,
    },
    /// An I/O error from reading or writing a file.
    Io {
        /// The underlying error, as text.
        message: String,
    },
    /// A tensor's shape does not fit the layer, loss or optimiser it was given to
    /// (`sverka::nn`).
    Shape {
        /// What is wrong, with the shapes involved.
        message: String,
    },
    /// A layer or optimiser was used out of order, e.g. `backward` before `forward`
    /// (`sverka::nn`).
    State {
        /// What is wrong, in words.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Zero { param } => write!(f, "{param} must be at least 1, got 0"),
            Error::Overflow { what } => write!(f, "{what} overflows usize"),
            Error::Groups { param, channels, groups } => {
                write!(f, "groups = {groups} does not divide {param} = {channels}")
            }
            Error::EmptyOutput { axis, padded_input, kernel_extent } => write!(
                f,
                "empty output along {axis}: padded input {padded_input} is smaller than \
                 the dilated kernel extent {kernel_extent}"
            ),
            Error::PoolPadding { param, padding, kernel } => {
                write!(f, "{param} = {padding} must be at most half the kernel size {kernel}")
            }
            Error::EmptyWindow { axis, index } => {
                write!(f, "pooling window {index} along {axis} covers no input element")
            }
            Error::OutputPadding { param, output_padding, limit } => {
                write!(f, "{param} = {output_padding} must be smaller than max(stride, dilation) = {limit}")
            }
            Error::Length { buffer, expected, actual } => {
                write!(f, "{buffer} has length {actual}, expected {expected}")
            }
            Error::Value { param, value, domain } => {
                write!(f, "{param} = {value} is outside {domain}")
            }
            Error::Index { position, index, plane } => {
                write!(f, "indices[{position}] = {index} is outside the input plane of {plane} elements")
            }
            Error::Alloc { elements } => write!(f, "cannot allocate {elements} f32 elements"),
            Error::Format { message } => write!(f, "malformed data: {message}"),
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
            Error::Io { message } => write!(f, "i/o error: {message}"),
            Error::Shape { message } => write!(f, "shape mismatch: {message}"),
            Error::State { message } => write!(f, "invalid state: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io { message: e.to_string() }
    }
}

/// Checks that `buffer` has exactly `expected` elements.
pub(crate) fn check_len<T>(buffer: &'static str, slice: &[T], expected: usize) -> Result<(), Error> {
    if slice.len() == expected { Ok(()) } else { Err(Error::Length { buffer, expected, actual: slice.len() }) }
}

/// Allocates a zeroed `Vec<f32>` of `len` elements, reporting failure as [`Error::Alloc`]
/// instead of aborting.
pub(crate) fn try_zeroed(len: usize) -> Result<Vec<f32>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::Alloc { elements: len })?;
    v.resize(len, 0.0);
    Ok(v)
}
