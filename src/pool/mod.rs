//! Max and average pooling, forward and backward: one pass per plane, rayon over planes.
//!
//! Each window visits only its taps inside the input (`Axis::taps`), so the cost is
//! `O(output * taps inside)` whatever the padding, and padding is never materialised.

use rayon::prelude::*;

use crate::buffers;
use crate::error::Error;
use crate::spec::{Pool2dSpec, PoolGeom};

/// The taps of one window inside the input: `rows` input rows starting at `row0`, `cols`
/// columns starting at `col0`, `dh` / `dw` apart (the dilation).
#[derive(Clone, Copy)]
struct Window {
    row0: usize,
    rows: usize,
    col0: usize,
    cols: usize,
}

impl Window {
    /// Calls `f(i)` for the in-plane index `i` of every tap, row by row.
    #[inline(always)]
    fn for_each(self, g: &PoolGeom, mut f: impl FnMut(usize)) {
        let (iw, dh, dw) = (g.w.input, g.h.dilation, g.w.dilation);
        for r in 0..self.rows {
            let base = (self.row0 + r * dh) * iw + self.col0;
            for c in 0..self.cols {
                f(base + c * dw);
            }
        }
    }

    /// Number of taps.
    fn len(self) -> usize {
        self.rows * self.cols
    }
}

/// The tap ranges of every output position of a plane, computed once per call (the
/// divisions in `Axis::taps` would otherwise dominate a 2x2 window).
struct Windows {
    /// `(first input row, rows)` per output row.
    rows: Vec<(usize, usize)>,
    /// `(first input column, columns)` per output column.
    cols: Vec<(usize, usize)>,
}

impl Windows {
    fn new(g: &PoolGeom) -> Self {
        let spans = |axis: &crate::spec::Axis| {
            (0..axis.output)
                .map(|o| {
                    let (lo, hi) = axis.taps(o);
                    (axis.input_index(o, lo), hi - lo)
                })
                .collect()
        };
        Windows { rows: spans(&g.h), cols: spans(&g.w) }
    }

    /// Calls `f(o, window)` for every output position `o` of a plane, in order.
    #[inline(always)]
    fn for_each(&self, mut f: impl FnMut(usize, Window)) {
        let mut o = 0;
        for &(row0, rows) in &self.rows {
            for &(col0, cols) in &self.cols {
                f(o, Window { row0, rows, col0, cols });
                o += 1;
            }
        }
    }
}

/// Max pooling (PyTorch's `F.max_pool2d`, `return_indices=True`).
///
/// Padding acts as `-inf`; a NaN in a window makes its output NaN. `indices`, if given
/// (same length as `output`), receive for each output the position `iy * w + ix` in its
/// input plane of the first maximal element (of the first NaN, if any).
///
/// ```
/// use sverka::{Padding, Pool2dSpec};
/// let spec = Pool2dSpec {
///     batch: 1, channels: 1, input: [2, 4], kernel: [2, 2], stride: [2, 2],
///     padding: Padding::ZERO, dilation: [1, 1], ceil_mode: false, count_include_pad: false,
/// };
/// let mut out = [0.0; 2];
/// let mut idx = [0u32; 2];
/// sverka::max_pool2d(&spec, &[1., 5., 2., 0., 3., 4., 8., 8.], &mut out, Some(&mut idx))?;
/// assert_eq!((out, idx), ([5., 8.], [1, 6]));
/// # Ok::<(), sverka::Error>(())
/// ```
pub fn max_pool2d(s: &Pool2dSpec, input: &[f32], output: &mut [f32], indices: Option<&mut [u32]>) -> Result<(), Error> {
    let g = buffers::pool2d(s, input, output, indices.as_deref())?;
    if g.in_plane() > u32::MAX as usize {
        return Err(Error::Overflow { what: "max_pool2d index (input plane over u32::MAX elements)" });
    }
    let (ip, op) = (g.in_plane(), g.out_plane());
    let windows = Windows::new(&g);
    let planes = output.par_chunks_mut(op).zip(input.par_chunks(ip));
    match indices {
        Some(ix) => planes.zip(ix.par_chunks_mut(op)).for_each(|((y, x), ix)| max_plane(&g, &windows, x, y, Some(ix))),
        None => planes.for_each(|(y, x)| max_plane(&g, &windows, x, y, None)),
    }
    Ok(())
}

/// Max pooling of one plane. The hot loop compares with `>` only, so the first maximal
/// tap wins and NaN never does; a window that saw a NaN (rare) is rescanned for its first
/// NaN, which PyTorch propagates.
fn max_plane(g: &PoolGeom, windows: &Windows, x: &[f32], y: &mut [f32], mut ix: Option<&mut [u32]>) {
    windows.for_each(|o, window| {
        // Validation guarantees every window has a tap inside the input: the first tap is
        // the initial winner.
        let first = window.row0 * g.w.input + window.col0;
        let (mut best, mut best_i, mut nan) = (x[first], first, false);
        window.for_each(g, |i| {
            let v = x[i];
            nan |= v.is_nan();
            // Selects, not a branch: on real data `v > best` is unpredictable.
            let greater = v > best;
            best = if greater { v } else { best };
            best_i = if greater { i } else { best_i };
        });
        if nan {
            let mut first_nan = None;
            window.for_each(g, |i| {
                if x[i].is_nan() && first_nan.is_none() {
                    first_nan = Some(i);
                }
            });
            best_i = first_nan.expect("a NaN was seen in this window");
        }
        y[o] = x[best_i];
        if let Some(ix) = ix.as_deref_mut() {
            ix[o] = best_i as u32;
        }
    });
}

/// Gradient of [`max_pool2d`]: each `grad_output` element is added to the input element
/// its index names. Overwrites `grad_input`; an index outside its plane is an `Err`.
pub fn max_pool2d_backward(
    s: &Pool2dSpec,
    grad_output: &[f32],
    indices: &[u32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::pool2d_backward(s, grad_output, Some(indices), grad_input)?;
    let plane = g.in_plane();
    let op = g.out_plane();
    grad_input.par_chunks_mut(plane).zip(grad_output.par_chunks(op).zip(indices.par_chunks(op))).for_each(
        |(dx, (dy, ix))| {
            dx.fill(0.0);
            for (&d, &i) in dy.iter().zip(ix) {
                dx[i as usize] += d;
            }
        },
    );
    Ok(())
}

/// The divisor of each window of a plane: its taps inside the input, or with
/// `count_include_pad` its taps inside the padded input.
fn divisors(g: &PoolGeom, windows: &Windows, count_include_pad: bool) -> Vec<f32> {
    let mut div = vec![0.0; g.out_plane()];
    windows.for_each(|o, window| {
        let count = if count_include_pad {
            g.h.taps_in_padded(o / g.w.output) * g.w.taps_in_padded(o % g.w.output)
        } else {
            window.len()
        };
        div[o] = count as f32;
    });
    div
}

/// Average pooling (PyTorch's `F.avg_pool2d`, with dilation allowed too): the sum of
/// each window's input elements divided by the window's divisor, see
/// [`Pool2dSpec::count_include_pad`].
pub fn avg_pool2d(s: &Pool2dSpec, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
    let g = buffers::pool2d(s, input, output, None)?;
    let windows = Windows::new(&g);
    let div = divisors(&g, &windows, s.count_include_pad);
    output.par_chunks_mut(g.out_plane()).zip(input.par_chunks(g.in_plane())).for_each(|(y, x)| {
        windows.for_each(|o, window| {
            let mut sum = 0.0;
            window.for_each(&g, |i| sum += x[i]);
            y[o] = sum / div[o];
        });
    });
    Ok(())
}

/// Gradient of [`avg_pool2d`]: each `grad_output` element, divided by its window's
/// divisor, is added to every input element of the window. Overwrites `grad_input`.
pub fn avg_pool2d_backward(s: &Pool2dSpec, grad_output: &[f32], grad_input: &mut [f32]) -> Result<(), Error> {
    let g = buffers::pool2d_backward(s, grad_output, None, grad_input)?;
    let windows = Windows::new(&g);
    let div = divisors(&g, &windows, s.count_include_pad);
    grad_input.par_chunks_mut(g.in_plane()).zip(grad_output.par_chunks(g.out_plane())).for_each(|(dx, dy)| {
        dx.fill(0.0);
        windows.for_each(|o, window| {
            let d = dy[o] / div[o];
            window.for_each(&g, |i| dx[i] += d);
        });
    });
    Ok(())
}
