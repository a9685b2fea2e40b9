//! Problem descriptions (the spec structs of the public API), PyTorch's output-size
//! arithmetic, and validation.
//!
//! Every spec has `output()` (the output `[h, w]`, or the first problem found) and
//! `*_len()` helpers giving the exact length each buffer must have. All arithmetic is
//! overflow-checked: a spec whose sizes multiply past `isize::MAX` bytes is an
//! [`Error::Overflow`], never a wrapped number.
//!
//! Output sizes (per spatial axis, `k` kernel, `s` stride, `d` dilation, `pb`/`pe` the
//! padding before/after):
//! - convolution and pooling: `out = floor((in + pb + pe - d*(k-1) - 1) / s) + 1`;
//! - pooling with `ceil_mode`: the division rounds up, and the last window is dropped if
//!   it would start at or beyond `in + pb` (PyTorch's rule);
//! - transposed convolution: `out = (in-1)*s - pb - pe + d*(k-1) + output_padding + 1`.

use std::fmt;

use crate::error::Error;

/// Largest element count of any buffer: its size in bytes must fit in `isize`.
const MAX_ELEMENTS: usize = isize::MAX as usize / std::mem::size_of::<f32>();

/// Zero padding on the four sides of an image (asymmetric padding allowed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Padding {
    /// Rows added above the image.
    pub top: usize,
    /// Rows added below the image.
    pub bottom: usize,
    /// Columns added left of the image.
    pub left: usize,
    /// Columns added right of the image.
    pub right: usize,
}

impl Padding {
    /// No padding.
    pub const ZERO: Padding = Padding { top: 0, bottom: 0, left: 0, right: 0 };

    /// The same padding `p` on all four sides (PyTorch's `padding=p`).
    pub const fn uniform(p: usize) -> Padding {
        Padding { top: p, bottom: p, left: p, right: p }
    }

    /// Symmetric padding: `h` above and below, `w` left and right
    /// (PyTorch's `padding=(h, w)`).
    pub const fn symmetric(h: usize, w: usize) -> Padding {
        Padding { top: h, bottom: h, left: w, right: w }
    }
}

/// A 2-D convolution: `output[n, oc, oh, ow] = bias[oc] + sum input * weight` over the
/// `in_channels / groups` input channels of `oc`'s group and the kernel window.
///
/// Layouts: input `[batch, in_channels, h, w]`, weight
/// `[out_channels, in_channels / groups, kh, kw]`, output `[batch, out_channels, oh, ow]`.
///
/// ```
/// use sverka::{Conv2dSpec, Padding};
/// let spec = Conv2dSpec {
///     batch: 1, in_channels: 3, out_channels: 8, input: [32, 32], kernel: [3, 3],
///     stride: [2, 2], padding: Padding::uniform(1), dilation: [1, 1], groups: 1,
/// };
/// assert_eq!(spec.output().unwrap(), [16, 16]);
/// assert_eq!(spec.weight_len().unwrap(), 8 * 3 * 3 * 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Images in the batch (N).
    pub batch: usize,
    /// Input channels (C).
    pub in_channels: usize,
    /// Output channels (K).
    pub out_channels: usize,
    /// Input `[h, w]`.
    pub input: [usize; 2],
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding.
    pub padding: Padding,
    /// Dilation `[dh, dw]` (1 = dense kernel).
    pub dilation: [usize; 2],
    /// Groups: both channel counts must be multiples; `groups == in_channels` is depthwise.
    pub groups: usize,
}

/// A 2-D transposed convolution ("deconvolution"), the adjoint of [`Conv2dSpec`]'s
/// convolution: every input pixel scatters `input * weight` into a `kh x kw` window of the
/// output, placed at `stride` steps.
///
/// Layouts: input `[batch, in_channels, h, w]`, weight
/// `[in_channels, out_channels / groups, kh, kw]`, output `[batch, out_channels, oh, ow]`.
///
/// ```
/// use sverka::{ConvTranspose2dSpec, Padding};
/// let spec = ConvTranspose2dSpec {
///     batch: 1, in_channels: 8, out_channels: 4, input: [7, 7], kernel: [3, 3],
///     stride: [2, 2], padding: Padding::uniform(1), dilation: [1, 1], groups: 1,
///     output_padding: [1, 1],
/// };
/// assert_eq!(spec.output().unwrap(), [14, 14]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTranspose2dSpec {
    /// Images in the batch (N).
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input `[h, w]`.
    pub input: [usize; 2],
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding removed from the full output (PyTorch's `padding`).
    pub padding: Padding,
    /// Dilation `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Groups: both channel counts must be multiples.
    pub groups: usize,
    /// Extra rows/columns added at the bottom/right of the output; each must be smaller
    /// than `max(stride, dilation)` on its axis.
    pub output_padding: [usize; 2],
}

/// A 2-D max or average pooling over `[batch, channels, h, w]`.
///
/// `padding` on each side must be at most half the kernel (PyTorch's rule). With
/// `ceil_mode` the output size rounds up, but the last window must start inside the input
/// or its left/top padding. `count_include_pad` (average pooling only) divides by the
/// window size clipped to the padded input instead of by the number of input elements.
///
/// ```
/// use sverka::{Padding, Pool2dSpec};
/// let spec = Pool2dSpec {
///     batch: 1, channels: 1, input: [5, 5], kernel: [2, 2], stride: [2, 2],
///     padding: Padding::ZERO, dilation: [1, 1], ceil_mode: true, count_include_pad: true,
/// };
/// assert_eq!(spec.output().unwrap(), [3, 3]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Input `[h, w]`.
    pub input: [usize; 2],
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]` (PyTorch's default is the kernel size).
    pub stride: [usize; 2],
    /// Implicit padding (`-inf` for max pooling, zeros for average pooling).
    pub padding: Padding,
    /// Dilation of the window.
    pub dilation: [usize; 2],
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
    /// Average pooling: count padding elements in the divisor.
    pub count_include_pad: bool,
}

/// Channel-wise batch normalisation over `[batch, channels, h, w]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Channels (one mean/variance/gamma/beta each).
    pub channels: usize,
    /// Input `[h, w]`.
    pub input: [usize; 2],
    /// Added to the variance before the square root (PyTorch default 1e-5); finite, >= 0.
    pub eps: f32,
    /// Running-statistics update rate (PyTorch default 0.1); in `[0, 1]`.
    pub momentum: f32,
}

/// Channel-wise dropout over `[batch, channels, h, w]`: each `(n, c)` plane is zeroed with
/// probability `p`, the others scaled by `1 / (1 - p)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Input `[h, w]`.
    pub input: [usize; 2],
    /// Drop probability in `[0, 1]` (1 drops every channel).
    pub p: f32,
}

impl BatchNorm2dSpec {
    /// A spec with PyTorch's defaults `eps = 1e-5`, `momentum = 0.1`.
    pub fn new(batch: usize, channels: usize, input: [usize; 2]) -> Self {
        BatchNorm2dSpec { batch, channels, input, eps: 1e-5, momentum: 0.1 }
    }
}

const AXES: [&str; 2] = ["height", "width"];

/// Checks that `value` is at least 1.
fn nonzero(param: &'static str, value: usize) -> Result<usize, Error> {
    if value == 0 { Err(Error::Zero { param }) } else { Ok(value) }
}

/// Product of `factors`, failing if it exceeds [`MAX_ELEMENTS`].
pub(crate) fn product(what: &'static str, factors: &[usize]) -> Result<usize, Error> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .filter(|&p| p <= MAX_ELEMENTS)
        .ok_or(Error::Overflow { what })
}

/// Sum `a + b`, checked.
pub(crate) fn add(what: &'static str, a: usize, b: usize) -> Result<usize, Error> {
    a.checked_add(b).ok_or(Error::Overflow { what })
}

/// Dilated kernel extent `d * (k - 1) + 1`, checked (k, d >= 1).
fn extent(k: usize, d: usize) -> Result<usize, Error> {
    (k - 1).checked_mul(d).and_then(|e| e.checked_add(1)).ok_or(Error::Overflow { what: "dilated kernel extent" })
}

/// One spatial axis of a sliding-window operation, fully validated.
///
/// Output position `o` reads input rows `o * stride - pad_begin + i * dilation` for kernel
/// taps `i` in `0..kernel`; rows outside `0..input` are padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Axis {
    pub input: usize,
    pub output: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad_begin: usize,
    pub pad_end: usize,
    pub dilation: usize,
}

impl Axis {
    /// Kernel taps `lo..hi` of output position `o` that land inside the input (an empty
    /// range when none does). Costs O(1) whatever the kernel size.
    pub fn taps(&self, o: usize) -> (usize, usize) {
        // Input row of tap i is start + i*d with start = o*s - pad_begin (may be negative).
        // Axis::new checked that o*s and o*s + extent fit in usize.
        let start = o * self.stride;
        let d = self.dilation;
        let lo = if start >= self.pad_begin { 0 } else { (self.pad_begin - start).div_ceil(d) };
        // Taps with start + i*d < pad_begin + input, i.e. i*d < pad_begin + input - start.
        let limit = self.pad_begin + self.input;
        let hi = if limit <= start { 0 } else { (limit - start).div_ceil(d).min(self.kernel) };
        (lo.min(hi), hi)
    }

    /// Input row of tap `i` of output `o`, valid only for `i` in `taps(o)`.
    pub fn input_index(&self, o: usize, i: usize) -> usize {
        o * self.stride + i * self.dilation - self.pad_begin
    }

    /// Number of taps of output `o` inside `[-pad_begin, input + pad_end)`: average
    /// pooling's divisor with `count_include_pad`.
    pub fn taps_in_padded(&self, o: usize) -> usize {
        let start = o * self.stride;
        let limit = self.pad_begin + self.input + self.pad_end;
        if limit <= start { 0 } else { (limit - start).div_ceil(self.dilation).min(self.kernel) }
    }

    /// Builds a convolution/pooling axis; `ceil` selects pooling's ceil_mode rule.
    fn sliding(
        axis: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        pad: (usize, usize),
        dilation: usize,
        ceil: bool,
    ) -> Result<Axis, Error> {
        let ext = extent(kernel, dilation)?;
        let padded = add("padded input", add("padded input", input, pad.0)?, pad.1)?;
        // PyTorch's formula in exact (i128) arithmetic: in ceil_mode the last window may
        // hang past the padded input, even when the kernel is larger than all of it.
        let round_up = if ceil { stride as i128 - 1 } else { 0 };
        let mut output = (padded as i128 - ext as i128 + round_up).div_euclid(stride as i128) + 1;
        if ceil && output >= 1 && (output - 1) * stride as i128 >= (input + pad.0) as i128 {
            output -= 1;
        }
        if output < 1 {
            return Err(Error::EmptyOutput { axis: AXES[axis], padded_input: padded, kernel_extent: ext });
        }
        let output = output as usize;
        let axis = Axis { input, output, kernel, stride, pad_begin: pad.0, pad_end: pad.1, dilation };
        axis.check_positions()?;
        Ok(axis)
    }

    /// Checks that the last window's start and end fit in usize, so the unchecked
    /// arithmetic of `taps` and `input_index` cannot overflow.
    fn check_positions(&self) -> Result<(), Error> {
        let ext = extent(self.kernel, self.dilation)?;
        (self.output - 1)
            .checked_mul(self.stride)
            .and_then(|s| s.checked_add(ext))
            .and_then(|s| s.checked_add(self.pad_begin + self.input + self.pad_end))
            .map(|_| ())
            .ok_or(Error::Overflow { what: "window position" })
    }
}

/// Validated geometry of a convolution, shared by conv2d and conv_transpose2d.
///
/// It describes the *forward* convolution: `input -> output` with weight
/// `[out_c, in_c / groups, kh, kw]`. A transposed convolution is this convolution's
/// adjoint (`ConvTranspose2dSpec::geometry` swaps the roles), so one geometry serves all
/// six convolution entry points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub batch: usize,
    pub in_c: usize,
    pub out_c: usize,
    pub groups: usize,
    pub h: Axis,
    pub w: Axis,
    /// `batch * in_c * in_h * in_w`.
    pub input_len: usize,
    /// `batch * out_c * out_h * out_w`.
    pub output_len: usize,
    /// `out_c * in_c / groups * kh * kw`.
    pub weight_len: usize,
}

impl ConvGeom {
    /// Input channels per group.
    pub fn in_c_per_group(&self) -> usize {
        self.in_c / self.groups
    }
    /// Output channels per group.
    pub fn out_c_per_group(&self) -> usize {
        self.out_c / self.groups
    }
    /// Pixels of one input plane.
    pub fn in_plane(&self) -> usize {
        self.h.input * self.w.input
    }
    /// Pixels of one output plane.
    pub fn out_plane(&self) -> usize {
        self.h.output * self.w.output
    }
    /// Taps of one kernel plane.
    pub fn k_plane(&self) -> usize {
        self.h.kernel * self.w.kernel
    }
    /// Multiply-adds of one forward pass: `output_len * in_c/groups * kh * kw`.
    pub fn macs(&self) -> f64 {
        self.output_len as f64 * (self.in_c_per_group() * self.k_plane()) as f64
    }
}

/// Shared checks of both convolution specs (a transposed spec passes its common fields
/// as a `Conv2dSpec`): sizes non-zero and groups dividing both channel counts.
fn check_conv_common(s: &Conv2dSpec) -> Result<(), Error> {
    nonzero("batch", s.batch)?;
    nonzero("in_channels", s.in_channels)?;
    nonzero("out_channels", s.out_channels)?;
    nonzero("input[0]", s.input[0])?;
    nonzero("input[1]", s.input[1])?;
    nonzero("kernel[0]", s.kernel[0])?;
    nonzero("kernel[1]", s.kernel[1])?;
    nonzero("stride[0]", s.stride[0])?;
    nonzero("stride[1]", s.stride[1])?;
    nonzero("dilation[0]", s.dilation[0])?;
    nonzero("dilation[1]", s.dilation[1])?;
    nonzero("groups", s.groups)?;
    for (param, channels) in [("in_channels", s.in_channels), ("out_channels", s.out_channels)] {
        if channels % s.groups != 0 {
            return Err(Error::Groups { param, channels, groups: s.groups });
        }
    }
    Ok(())
}

/// Builds the validated geometry from the convolution's own point of view.
fn conv_geom(batch: usize, in_c: usize, out_c: usize, groups: usize, h: Axis, w: Axis) -> Result<ConvGeom, Error> {
    Ok(ConvGeom {
        batch,
        in_c,
        out_c,
        groups,
        h,
        w,
        input_len: product("input length", &[batch, in_c, h.input, w.input])?,
        output_len: product("output length", &[batch, out_c, h.output, w.output])?,
        weight_len: product("weight length", &[out_c, in_c / groups, h.kernel, w.kernel])?,
    })
}

impl Conv2dSpec {
    /// Validates the spec and returns its geometry.
    pub(crate) fn geometry(&self) -> Result<ConvGeom, Error> {
        check_conv_common(self)?;
        let p = self.padding;
        let h = Axis::sliding(
            0,
            self.input[0],
            self.kernel[0],
            self.stride[0],
            (p.top, p.bottom),
            self.dilation[0],
            false,
        )?;
        let w = Axis::sliding(
            1,
            self.input[1],
            self.kernel[1],
            self.stride[1],
            (p.left, p.right),
            self.dilation[1],
            false,
        )?;
        conv_geom(self.batch, self.in_channels, self.out_channels, self.groups, h, w)
    }

    /// Output `[h, w]`, or the first problem with the spec.
    pub fn output(&self) -> Result<[usize; 2], Error> {
        let g = self.geometry()?;
        Ok([g.h.output, g.w.output])
    }
    /// Length of the input buffer `[batch, in_channels, h, w]`.
    pub fn input_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.input_len)
    }
    /// Length of the output buffer `[batch, out_channels, oh, ow]`.
    pub fn output_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.output_len)
    }
    /// Length of the weight buffer `[out_channels, in_channels / groups, kh, kw]`.
    pub fn weight_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.weight_len)
    }
    /// Length of the bias buffer (`out_channels`).
    pub fn bias_len(&self) -> usize {
        self.out_channels
    }
    /// Floating-point operations of one forward pass (2 per multiply-add).
    pub fn flops(&self) -> Result<f64, Error> {
        Ok(2.0 * self.geometry()?.macs())
    }
}

impl ConvTranspose2dSpec {
    /// The fields shared with [`Conv2dSpec`], as one.
    fn common(&self) -> Conv2dSpec {
        Conv2dSpec {
            batch: self.batch,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            input: self.input,
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }

    /// Validates the spec and returns the geometry of the convolution it is the adjoint
    /// of: that convolution maps this op's *output* (`out_channels` channels) to its
    /// *input* (`in_channels` channels), and its weight `[in_channels, out_channels /
    /// groups, kh, kw]` is exactly this op's weight.
    pub(crate) fn geometry(&self) -> Result<ConvGeom, Error> {
        check_conv_common(&self.common())?;
        let p = self.padding;
        let h = Self::axis(0, self, (p.top, p.bottom))?;
        let w = Self::axis(1, self, (p.left, p.right))?;
        conv_geom(self.batch, self.out_channels, self.in_channels, self.groups, h, w)
    }

    /// The adjoint convolution's axis: its input is this op's output, its output this
    /// op's input.
    fn axis(i: usize, s: &ConvTranspose2dSpec, pad: (usize, usize)) -> Result<Axis, Error> {
        let (stride, dilation, op) = (s.stride[i], s.dilation[i], s.output_padding[i]);
        let limit = stride.max(dilation);
        if op >= limit {
            let param = ["output_padding[0]", "output_padding[1]"][i];
            return Err(Error::OutputPadding { param, output_padding: op, limit });
        }
        let ext = extent(s.kernel[i], dilation)?;
        let full = (s.input[i] - 1)
            .checked_mul(stride)
            .and_then(|v| v.checked_add(ext))
            .and_then(|v| v.checked_add(op))
            .ok_or(Error::Overflow { what: "transposed output size" })?;
        let pads = add("padding", pad.0, pad.1)?;
        if full <= pads {
            return Err(Error::EmptyOutput {
                axis: AXES[i],
                padded_input: full,
                kernel_extent: pads.saturating_add(1),
            });
        }
        let axis = Axis {
            input: full - pads,
            output: s.input[i],
            kernel: s.kernel[i],
            stride,
            pad_begin: pad.0,
            pad_end: pad.1,
            dilation,
        };
        axis.check_positions()?;
        Ok(axis)
    }

    /// Output `[h, w]`, or the first problem with the spec.
    pub fn output(&self) -> Result<[usize; 2], Error> {
        let g = self.geometry()?;
        Ok([g.h.input, g.w.input])
    }
    /// Length of the input buffer `[batch, in_channels, h, w]`.
    pub fn input_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.output_len)
    }
    /// Length of the output buffer `[batch, out_channels, oh, ow]`.
    pub fn output_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.input_len)
    }
    /// Length of the weight buffer `[in_channels, out_channels / groups, kh, kw]`.
    pub fn weight_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.weight_len)
    }
    /// Length of the bias buffer (`out_channels`).
    pub fn bias_len(&self) -> usize {
        self.out_channels
    }
    /// Floating-point operations of one forward pass (2 per multiply-add).
    pub fn flops(&self) -> Result<f64, Error> {
        Ok(2.0 * self.geometry()?.macs())
    }
}

/// Validated geometry of a pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolGeom {
    pub planes: usize,
    pub h: Axis,
    pub w: Axis,
    pub input_len: usize,
    pub output_len: usize,
}

impl PoolGeom {
    /// Pixels of one input plane.
    pub fn in_plane(&self) -> usize {
        self.h.input * self.w.input
    }
    /// Pixels of one output plane.
    pub fn out_plane(&self) -> usize {
        self.h.output * self.w.output
    }
}

impl Pool2dSpec {
    /// Validates the spec and returns its geometry.
    pub(crate) fn geometry(&self) -> Result<PoolGeom, Error> {
        nonzero("batch", self.batch)?;
        nonzero("channels", self.channels)?;
        let p = self.padding;
        let pads = [
            [("padding.top", p.top), ("padding.bottom", p.bottom)],
            [("padding.left", p.left), ("padding.right", p.right)],
        ];
        let mut axes = [None, None];
        for i in 0..2 {
            nonzero(["input[0]", "input[1]"][i], self.input[i])?;
            nonzero(["kernel[0]", "kernel[1]"][i], self.kernel[i])?;
            nonzero(["stride[0]", "stride[1]"][i], self.stride[i])?;
            nonzero(["dilation[0]", "dilation[1]"][i], self.dilation[i])?;
            for (param, padding) in pads[i] {
                if padding > self.kernel[i] / 2 {
                    return Err(Error::PoolPadding { param, padding, kernel: self.kernel[i] });
                }
            }
            let axis = Axis::sliding(
                i,
                self.input[i],
                self.kernel[i],
                self.stride[i],
                (pads[i][0].1, pads[i][1].1),
                self.dilation[i],
                self.ceil_mode,
            )?;
            // Only windows starting in the leading padding can miss the input (the ceil_mode
            // rule keeps every later start inside it), and only when the dilation skips over
            // the whole input. Their taps' residues mod dilation repeat with period at most
            // `dilation`, so checking that many windows is exhaustive (and cheap: with
            // padding <= kernel/2 the extent rule bounds it by about sqrt(input)).
            let leading = axis.output.min(axis.pad_begin.div_ceil(axis.stride)).min(axis.dilation);
            for o in 0..if axis.dilation > axis.input { leading } else { 0 } {
                let (lo, hi) = axis.taps(o);
                if lo >= hi {
                    return Err(Error::EmptyWindow { axis: AXES[i], index: o });
                }
            }
            axes[i] = Some(axis);
        }
        let (h, w) = (axes[0].expect("set above"), axes[1].expect("set above"));
        let planes = product("plane count", &[self.batch, self.channels])?;
        Ok(PoolGeom {
            planes,
            h,
            w,
            input_len: product("input length", &[planes, h.input, w.input])?,
            output_len: product("output length", &[planes, h.output, w.output])?,
        })
    }

    /// Output `[h, w]`, or the first problem with the spec.
    pub fn output(&self) -> Result<[usize; 2], Error> {
        let g = self.geometry()?;
        Ok([g.h.output, g.w.output])
    }
    /// Length of the input buffer `[batch, channels, h, w]`.
    pub fn input_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.input_len)
    }
    /// Length of the output (and indices) buffer `[batch, channels, oh, ow]`.
    pub fn output_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.output_len)
    }
}

/// Validated geometry of a channel-wise op (BatchNorm2d, Dropout2d).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChannelGeom {
    pub batch: usize,
    pub channels: usize,
    /// Pixels of one plane.
    pub plane: usize,
    /// `batch * channels * plane`.
    pub len: usize,
}

fn channel_geom(batch: usize, channels: usize, input: [usize; 2]) -> Result<ChannelGeom, Error> {
    nonzero("batch", batch)?;
    nonzero("channels", channels)?;
    nonzero("input[0]", input[0])?;
    nonzero("input[1]", input[1])?;
    let plane = product("plane size", &input)?;
    let len = product("input length", &[batch, channels, plane])?;
    Ok(ChannelGeom { batch, channels, plane, len })
}

impl BatchNorm2dSpec {
    /// Validates the spec and returns its geometry.
    pub(crate) fn geometry(&self) -> Result<ChannelGeom, Error> {
        if !(self.eps.is_finite() && self.eps >= 0.0) {
            return Err(Error::Value { param: "eps", value: self.eps.into(), domain: "finite values >= 0" });
        }
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::Value { param: "momentum", value: self.momentum.into(), domain: "[0, 1]" });
        }
        channel_geom(self.batch, self.channels, self.input)
    }
    /// Validates the spec for training: like `geometry`, and each channel must have at
    /// least 2 values (`batch * h * w >= 2`) for the unbiased running variance, as in PyTorch.
    pub(crate) fn train_geometry(&self) -> Result<ChannelGeom, Error> {
        let g = self.geometry()?;
        if g.batch * g.plane < 2 {
            return Err(Error::Value {
                param: "batch * h * w",
                value: (g.batch * g.plane) as f64,
                domain: "at least 2 values per channel in training",
            });
        }
        Ok(g)
    }
    /// Length of the input (and output) buffer `[batch, channels, h, w]`.
    pub fn input_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.len)
    }
}

impl Dropout2dSpec {
    /// Validates the spec and returns its geometry.
    pub(crate) fn geometry(&self) -> Result<ChannelGeom, Error> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(Error::Value { param: "p", value: self.p.into(), domain: "[0, 1]" });
        }
        channel_geom(self.batch, self.channels, self.input)
    }
    /// Length of the input (and output) buffer `[batch, channels, h, w]`.
    pub fn input_len(&self) -> Result<usize, Error> {
        Ok(self.geometry()?.len)
    }
    /// Length of the `channel_scale` buffer (`batch * channels`).
    pub fn scale_len(&self) -> Result<usize, Error> {
        let g = self.geometry()?;
        Ok(g.batch * g.channels)
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}_{}_{}_{}", self.top, self.bottom, self.left, self.right)
    }
}

impl fmt::Display for Conv2dSpec {
    /// Compact descriptor (oneDNN style), e.g. `n1ic3oc8ih32iw32kh3kw3sh2sw2p1_1_1_1dh1dw1g1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n{}ic{}oc{}ih{}iw{}kh{}kw{}sh{}sw{}{}dh{}dw{}g{}",
            self.batch,
            self.in_channels,
            self.out_channels,
            self.input[0],
            self.input[1],
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding,
            self.dilation[0],
            self.dilation[1],
            self.groups
        )
    }
}

impl fmt::Display for ConvTranspose2dSpec {
    /// Compact descriptor: the shared fields as [`Conv2dSpec`] writes them, then the output
    /// padding, e.g. `n1ic8oc4ih7iw7kh3kw3sh2sw2p1_1_1_1dh1dw1g1op1_1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}op{}_{}", self.common(), self.output_padding[0], self.output_padding[1])
    }
}

impl fmt::Display for Pool2dSpec {
    /// Compact descriptor, e.g. `n1c64ih112iw112kh3kw3sh2sw2p1_1_1_1dh1dw1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n{}c{}ih{}iw{}kh{}kw{}sh{}sw{}{}dh{}dw{}{}{}",
            self.batch,
            self.channels,
            self.input[0],
            self.input[1],
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding,
            self.dilation[0],
            self.dilation[1],
            if self.ceil_mode { "ceil" } else { "" },
            if self.count_include_pad { "incpad" } else { "" }
        )
    }
}

impl fmt::Display for BatchNorm2dSpec {
    /// Compact descriptor, e.g. `n64c64ih28iw28eps1e-5m0.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n{}c{}ih{}iw{}eps{:e}m{}",
            self.batch, self.channels, self.input[0], self.input[1], self.eps, self.momentum
        )
    }
}

impl fmt::Display for Dropout2dSpec {
    /// Compact descriptor, e.g. `n64c64ih28iw28p0.25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}c{}ih{}iw{}p{}", self.batch, self.channels, self.input[0], self.input[1], self.p)
    }
}
