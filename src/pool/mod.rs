//! Max and average pooling, forward and backward: one pass per plane, rayon over planes.
//!
//! Each window visits only its taps inside the input (`Axis::taps`), so the cost is
//! `O(output * taps inside)` whatever the padding, and padding is never materialised.

use rayon::prelude::*;

use crate::error::{Error, check_len};
use crate::spec::{Pool2dSpec, PoolGeom};

/// The in-plane input positions of the taps of window `(oy, ox)` inside the input, row by row.
fn window(g: &PoolGeom, oy: usize, ox: usize) -> impl Iterator<Item = usize> + '_ {
    let ((ky0, ky1), (kx0, kx1)) = (g.h.taps(oy), g.w.taps(ox));
    (ky0..ky1).flat_map(move |ky| {
        let row = g.h.input_index(oy, ky) * g.w.input;
        (kx0..kx1).map(move |kx| row + g.w.input_index(ox, kx))
    })
}

/// Every window of a plane, as `(output index in plane, taps)`.
fn windows(g: &PoolGeom) -> impl Iterator<Item = (usize, impl Iterator<Item = usize> + '_)> + '_ {
    (0..g.h.output).flat_map(move |oy| (0..g.w.output).map(move |ox| (oy * g.w.output + ox, window(g, oy, ox))))
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
    let g = s.geometry()?;
    check_len("input", input, g.input_len)?;
    check_len("output", output, g.output_len)?;
    if let Some(ix) = indices.as_deref() {
        check_len("indices", ix, g.output_len)?;
    }
    if g.in_plane() > u32::MAX as usize {
        return Err(Error::Overflow { what: "max_pool2d index (input plane over u32::MAX elements)" });
    }
    let (ip, op) = (g.in_plane(), g.out_plane());
    let planes = output.par_chunks_mut(op).zip(input.par_chunks(ip));
    match indices {
        Some(ix) => planes.zip(ix.par_chunks_mut(op)).for_each(|((y, x), ix)| max_plane(&g, x, y, Some(ix))),
        None => planes.for_each(|(y, x)| max_plane(&g, x, y, None)),
    }
    Ok(())
}

/// Max pooling of one plane; the winner of a window is replaced only by a strictly
/// larger value or a first NaN.
fn max_plane(g: &PoolGeom, x: &[f32], y: &mut [f32], mut ix: Option<&mut [u32]>) {
    for (o, mut taps) in windows(g) {
        let first = taps.next().expect("validation guarantees every window has a tap inside the input");
        let (mut best, mut best_i) = (x[first], first);
        for i in taps {
            if !best.is_nan() && (x[i] > best || x[i].is_nan()) {
                (best, best_i) = (x[i], i);
            }
        }
        y[o] = best;
        if let Some(ix) = ix.as_deref_mut() {
            ix[o] = best_i as u32;
        }
    }
}

/// Gradient of [`max_pool2d`]: each `grad_output` element is added to the input element
/// its index names. Overwrites `grad_input`; an index outside its plane is an `Err`.
pub fn max_pool2d_backward(
    s: &Pool2dSpec,
    grad_output: &[f32],
    indices: &[u32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    let g = s.geometry()?;
    check_len("grad_output", grad_output, g.output_len)?;
    check_len("indices", indices, g.output_len)?;
    check_len("grad_input", grad_input, g.input_len)?;
    let plane = g.in_plane();
    if let Some(position) = indices.iter().position(|&i| i as usize >= plane) {
        return Err(Error::Index { position, index: indices[position], plane });
    }
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
fn divisors(g: &PoolGeom, count_include_pad: bool) -> Vec<f32> {
    let mut div = Vec::with_capacity(g.out_plane());
    for oy in 0..g.h.output {
        for ox in 0..g.w.output {
            let count = if count_include_pad {
                g.h.taps_in_padded(oy) * g.w.taps_in_padded(ox)
            } else {
                let ((y0, y1), (x0, x1)) = (g.h.taps(oy), g.w.taps(ox));
                (y1 - y0) * (x1 - x0)
            };
            div.push(count as f32);
        }
    }
    div
}

/// Average pooling (PyTorch's `F.avg_pool2d`, with dilation allowed too): the sum of
/// each window's input elements divided by the window's divisor, see
/// [`Pool2dSpec::count_include_pad`].
pub fn avg_pool2d(s: &Pool2dSpec, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
    let g = s.geometry()?;
    check_len("input", input, g.input_len)?;
    check_len("output", output, g.output_len)?;
    let div = divisors(&g, s.count_include_pad);
    output.par_chunks_mut(g.out_plane()).zip(input.par_chunks(g.in_plane())).for_each(|(y, x)| {
        for (o, taps) in windows(&g) {
            y[o] = taps.map(|i| x[i]).sum::<f32>() / div[o];
        }
    });
    Ok(())
}

/// Gradient of [`avg_pool2d`]: each `grad_output` element, divided by its window's
/// divisor, is added to every input element of the window. Overwrites `grad_input`.
pub fn avg_pool2d_backward(s: &Pool2dSpec, grad_output: &[f32], grad_input: &mut [f32]) -> Result<(), Error> {
    let g = s.geometry()?;
    check_len("grad_output", grad_output, g.output_len)?;
    check_len("grad_input", grad_input, g.input_len)?;
    let div = divisors(&g, s.count_include_pad);
    grad_input.par_chunks_mut(g.in_plane()).zip(grad_output.par_chunks(g.out_plane())).for_each(|(dx, dy)| {
        dx.fill(0.0);
        for (o, taps) in windows(&g) {
            let d = dy[o] / div[o];
            taps.for_each(|i| dx[i] += d);
        }
    });
    Ok(())
}
