//! Convolution by unfolding: im2col into a per-worker column buffer, then one GEMM per
//! (image, group). Serves every geometry (stride, dilation, asymmetric padding, groups)
//! and all three convolution products; the transposed convolution reuses the same three
//! functions on its adjoint geometry.
//!
//! Threads: rayon over (image, group) tasks. Every output element is produced by exactly
//! one task with a fixed order of operations, and the weight gradient sums fixed batch
//! chunks in a fixed order, so results do not depend on the number of threads.

use std::ops::Range;

use rayon::prelude::*;

use super::unfold::{col2im, im2col};
use crate::error::{Error, try_zeroed};
use crate::sgemm::{MatMut, MatRef, gemm};
use crate::spec::ConvGeom;

/// Rows of the column matrix: input channels per group times kernel taps.
fn col_rows(g: &ConvGeom) -> usize {
    g.in_c_per_group() * g.k_plane()
}

/// Floats a column buffer may take before the output rows are split into bands: 4 MiB.
const COL_BUDGET: usize = 1 << 20;

/// Output rows per band: as many as keep the column buffer within [`COL_BUDGET`], at
/// least one. Depends on the geometry only, so results do not depend on the thread count;
/// typical layers fit in one band (a 3x3 conv over 64 channels up to 42x42 outputs).
fn band_rows(g: &ConvGeom) -> usize {
    (COL_BUDGET / col_rows(g).saturating_mul(g.w.output).max(1)).clamp(1, g.h.output.max(1))
}

/// The bands of output rows, in order.
fn bands(g: &ConvGeom) -> impl Iterator<Item = Range<usize>> + '_ {
    let band = band_rows(g);
    (0..g.h.output).step_by(band).map(move |r| r..(r + band).min(g.h.output))
}

/// Length of one column buffer (one band); checked, since it can exceed the input and
/// output sizes.
fn col_len(g: &ConvGeom) -> Result<usize, Error> {
    crate::spec::product("column buffer", &[col_rows(g), band_rows(g), g.w.output])
}

/// Columns `cols` of each row of a `rows x plane` row-major matrix.
fn band_of(data: &[f32], rows: usize, plane: usize, cols: Range<usize>) -> MatRef<'_> {
    MatRef { data: &data[cols.start..], rows, cols: cols.len(), rs: plane, cs: 1 }
}

/// The weights of group `grp` as a `[oc_per_group, icg*kh*kw]` matrix.
fn group_weight<'a>(g: &ConvGeom, w: &'a [f32], grp: usize) -> MatRef<'a> {
    let (rows, cols) = (g.out_c_per_group(), col_rows(g));
    MatRef::rows(&w[grp * rows * cols..(grp + 1) * rows * cols], rows, cols)
}

/// `y = conv(x, w) (+ bias)`: `y[n, grp] = w[grp] * im2col(x[n, grp])`, band by band of
/// output rows.
pub(crate) fn forward(g: &ConvGeom, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<(), Error> {
    let (in_chunk, out_chunk) = (g.in_c_per_group() * g.in_plane(), g.out_c_per_group() * g.out_plane());
    let (ow, plane) = (g.w.output, g.out_plane());
    let len = col_len(g)?;
    y.par_chunks_mut(out_chunk).enumerate().try_for_each_init(
        || try_zeroed(len),
        |col, (task, y_task)| {
            let col = col.as_mut().map_err(|e| e.clone())?;
            let grp = task % g.groups;
            for band in bands(g) {
                let cols = band.start * ow..band.end * ow;
                im2col(g, &x[task * in_chunk..(task + 1) * in_chunk], band, col);
                let col = MatRef::rows(col, col_rows(g), cols.len());
                let y_band =
                    MatMut { data: &mut y_task[cols.start..], rows: g.out_c_per_group(), cols: cols.len(), ld: plane };
                gemm(group_weight(g, w, grp), col, 0.0, y_band);
            }
            if let Some(b) = bias {
                let b = &b[grp * g.out_c_per_group()..(grp + 1) * g.out_c_per_group()];
                for (plane, &bias) in y_task.chunks_exact_mut(plane).zip(b) {
                    plane.iter_mut().for_each(|v| *v += bias);
                }
            }
            Ok(())
        },
    )
}

/// `dx = conv^T(dy, w)`: `dx[n, grp] = col2im(w[grp]^T * dy[n, grp])`, band by band of
/// output rows. Overwrites `dx`.
pub(crate) fn backward_data(g: &ConvGeom, dy: &[f32], w: &[f32], dx: &mut [f32]) -> Result<(), Error> {
    let (in_chunk, out_chunk) = (g.in_c_per_group() * g.in_plane(), g.out_c_per_group() * g.out_plane());
    let (ow, plane) = (g.w.output, g.out_plane());
    let len = col_len(g)?;
    dx.par_chunks_mut(in_chunk).enumerate().try_for_each_init(
        || try_zeroed(len),
        |col, (task, dx_task)| {
            let col = col.as_mut().map_err(|e| e.clone())?;
            let dy_task = &dy[task * out_chunk..(task + 1) * out_chunk];
            dx_task.fill(0.0);
            for band in bands(g) {
                let cols = band.start * ow..band.end * ow;
                let dy_band = band_of(dy_task, g.out_c_per_group(), plane, cols.clone());
                let col_band = MatMut::rows(&mut col[..col_rows(g) * cols.len()], col_rows(g), cols.len());
                gemm(group_weight(g, w, task % g.groups).t(), dy_band, 0.0, col_band);
                col2im(g, col, band, dx_task);
            }
            Ok(())
        },
    )
}

/// Images per weight-gradient partial sum. Fixed (not derived from the thread count) so
/// the summation order, hence the result, is the same on any number of threads.
const BATCH_CHUNK: usize = 8;

/// `dw = sum_n dy[n] * im2col(x[n])^T` per group. Overwrites `dw`.
pub(crate) fn backward_weight(g: &ConvGeom, x: &[f32], dy: &[f32], dw: &mut [f32]) -> Result<(), Error> {
    let (in_chunk, out_chunk) = (g.in_c_per_group() * g.in_plane(), g.out_c_per_group() * g.out_plane());
    let (in_image, out_image) = (in_chunk * g.groups, out_chunk * g.groups);
    let len = col_len(g)?;
    let chunks = g.batch.div_ceil(BATCH_CHUNK);
    let w_chunk = g.weight_len / g.groups;
    // The partial of chunk `chunk` (images chunk * BATCH_CHUNK..).
    let partial = |chunk: usize| -> Result<Vec<f32>, Error> {
        let mut col = try_zeroed(len)?;
        let mut partial = try_zeroed(g.weight_len)?;
        for n in chunk * BATCH_CHUNK..((chunk + 1) * BATCH_CHUNK).min(g.batch) {
            for (grp, dw_grp) in partial.chunks_exact_mut(w_chunk).enumerate() {
                let x_task = &x[n * in_image + grp * in_chunk..][..in_chunk];
                let dy_task = &dy[n * out_image + grp * out_chunk..][..out_chunk];
                for band in bands(g) {
                    let cols = band.start * g.w.output..band.end * g.w.output;
                    im2col(g, x_task, band, &mut col);
                    let dy_band = band_of(dy_task, g.out_c_per_group(), g.out_plane(), cols.clone());
                    let col_t = MatRef::rows(&col, col_rows(g), cols.len()).t();
                    gemm(dy_band, col_t, 1.0, MatMut::rows(dw_grp, g.out_c_per_group(), col_rows(g)));
                }
            }
        }
        Ok(partial)
    };
    // Waves of one partial per thread, computed in parallel, then added in chunk order:
    // the summation order of a single pass whatever the wave size, with one weight-sized
    // partial per thread alive (not one per 8 images of the batch).
    let wave_len = rayon::current_num_threads().max(1);
    dw.fill(0.0);
    for wave in (0..chunks).step_by(wave_len) {
        let partials: Vec<Vec<f32>> =
            (wave..(wave + wave_len).min(chunks)).into_par_iter().map(partial).collect::<Result<_, _>>()?;
        for partial in &partials {
            dw.iter_mut().zip(partial).for_each(|(d, p)| *d += p);
        }
    }
    Ok(())
}

/// `sums[c]` = sum over batch and pixels of channel `c` of an NCHW buffer (the bias
/// gradient), accumulated in f64.
pub(crate) fn channel_sums(buf: &[f32], channels: usize, plane: usize, sums: &mut [f32]) {
    sums.par_iter_mut().enumerate().for_each(|(c, s)| {
        let total: f64 =
            buf.chunks_exact(plane).skip(c).step_by(channels).map(|p| p.iter().map(|&v| v as f64).sum::<f64>()).sum();
        *s = total as f32;
    });
}
