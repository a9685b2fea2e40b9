//! im2col / col2im for one image and one group of a convolution.
//!
//! The column matrix has one row per (input channel of the group, kh, kw) tap and one
//! column per output pixel: `col[(icg*kh + ky)*kw + kx][oy*ow + ox] =
//! x[icg][oy*sh - pt + ky*dh][ox*sw - pl + kx*dw]` (0 in the padding). The convolution
//! of the group is then the GEMM `y = w * col` with `w` as `[oc_per_group, icg*kh*kw]`.
//!
//! For a fixed tap the output positions that read inside the input form one contiguous
//! range per axis (`Taps`), computed once per tap, so the copy loops carry no bounds
//! arithmetic and stride 1 rows are plain slice copies.

use std::ops::Range;

use crate::spec::{Axis, ConvGeom};

/// For kernel tap `k` along an axis: the output positions `lo..hi` that read inside the
/// input, and the input index of output 0 plus `pad_begin` (`off = k * dilation`), so
/// output `o` in range reads input `o * stride + off - pad_begin`.
#[derive(Clone, Copy)]
struct Taps {
    lo: usize,
    hi: usize,
    off: usize,
}

impl Taps {
    fn new(axis: &Axis, k: usize) -> Taps {
        let (s, off, p) = (axis.stride, k * axis.dilation, axis.pad_begin);
        // o * s + off - p >= 0  <=>  o >= ceil((p - off) / s)
        let lo = if off >= p { 0 } else { (p - off).div_ceil(s) };
        // o * s + off - p < input  <=>  o * s < input + p - off
        let limit = axis.input + p;
        let hi = if limit <= off { 0 } else { (limit - off).div_ceil(s) };
        let hi = hi.min(axis.output);
        Taps { lo: lo.min(hi), hi, off }
    }

    /// Input index of output `o` (valid for `o` in `lo..hi`).
    fn input(&self, axis: &Axis, o: usize) -> usize {
        o * axis.stride + self.off - axis.pad_begin
    }
}

/// Calls `f(row_index, ys, xs)` for every (icg, ky, kx) row of the column matrix.
fn for_each_row(g: &ConvGeom, mut f: impl FnMut(usize, usize, Taps, Taps)) {
    let xs: Vec<Taps> = (0..g.w.kernel).map(|kx| Taps::new(&g.w, kx)).collect();
    let mut row = 0;
    for icg in 0..g.in_c_per_group() {
        for ky in 0..g.h.kernel {
            let ys = Taps::new(&g.h, ky);
            for &xs in &xs {
                f(row, icg, ys, xs);
                row += 1;
            }
        }
    }
}

/// The output rows of `band` that tap rows `ys` read inside the input, relative to the
/// band's first row.
fn band_taps(ys: Taps, band: &Range<usize>) -> Range<usize> {
    let lo = ys.lo.clamp(band.start, band.end);
    lo - band.start..ys.hi.clamp(lo, band.end) - band.start
}

/// Fills `col` (`[icg*kh*kw, band.len()*ow]`: the columns of output rows `band`) from the
/// group's input planes `x` (`[icg, ih, iw]`).
pub(crate) fn im2col(g: &ConvGeom, x: &[f32], band: Range<usize>, col: &mut [f32]) {
    let (ow, iw) = (g.w.output, g.w.input);
    let plane = band.len() * ow;
    for_each_row(g, |row, icg, ys, xs| {
        let dst = &mut col[row * plane..(row + 1) * plane];
        let src = &x[icg * g.in_plane()..(icg + 1) * g.in_plane()];
        let rows = band_taps(ys, &band);
        dst[..rows.start * ow].fill(0.0);
        dst[rows.end * ow..].fill(0.0);
        for r in rows {
            let oy = band.start + r;
            let out = &mut dst[r * ow..(r + 1) * ow];
            let line = &src[ys.input(&g.h, oy) * iw..][..iw];
            out[..xs.lo].fill(0.0);
            out[xs.hi..].fill(0.0);
            if xs.lo < xs.hi {
                let first = xs.input(&g.w, xs.lo);
                if g.w.stride == 1 {
                    out[xs.lo..xs.hi].copy_from_slice(&line[first..first + (xs.hi - xs.lo)]);
                } else {
                    for (o, v) in out[xs.lo..xs.hi].iter_mut().zip(line[first..].iter().step_by(g.w.stride)) {
                        *o = *v;
                    }
                }
            }
        }
    });
}

/// Adds every entry of `col` (the columns of output rows `band`) into the input position
/// it was gathered from: the adjoint of [`im2col`]. `x` (`[icg, ih, iw]`) is accumulated
/// into, not overwritten.
pub(crate) fn col2im(g: &ConvGeom, col: &[f32], band: Range<usize>, x: &mut [f32]) {
    let (ow, iw) = (g.w.output, g.w.input);
    let plane = band.len() * ow;
    for_each_row(g, |row, icg, ys, xs| {
        let src = &col[row * plane..(row + 1) * plane];
        let dst = &mut x[icg * g.in_plane()..(icg + 1) * g.in_plane()];
        if xs.lo >= xs.hi {
            return;
        }
        let first = xs.input(&g.w, xs.lo);
        for r in band_taps(ys, &band) {
            let line = &mut dst[ys.input(&g.h, band.start + r) * iw..][..iw];
            let vals = &src[r * ow + xs.lo..r * ow + xs.hi];
            for (d, v) in line[first..].iter_mut().step_by(g.w.stride).zip(vals) {
                *d += v;
            }
        }
    });
}
