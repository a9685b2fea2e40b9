//! im2col / col2im for one image and one group of a convolution.
//!
//! The column matrix has one row per (input channel of the group, kh, kw) tap and one
//! column per output pixel: `col[(icg*kh + ky)*kw + kx][oy*ow + ox] =
//! x[icg][oy*sh - pt + ky*dh][ox*sw - pl + kx*dw]` (0 in the padding). The convolution
//! of the group is then the GEMM `y = w * col` with `w` as `[oc_per_group, icg*kh*kw]`.

use crate::spec::{Axis, ConvGeom};

/// For every output position along `axis` and tap `k`: the input index, or `None` in
/// the padding. Row `k` of the result lists the positions for tap `k`.
fn tap_table(axis: &Axis, k: usize) -> impl Iterator<Item = (usize, Option<usize>)> + '_ {
    (0..axis.output).map(move |o| {
        let (lo, hi) = axis.taps(o);
        (o, (lo..hi).contains(&k).then(|| axis.input_index(o, k)))
    })
}

/// Fills `col` (`[icg*kh*kw, oh*ow]`) from the group's input planes `x` (`[icg, ih, iw]`).
pub(crate) fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let (ow, plane) = (g.w.output, g.out_plane());
    let mut rows = col.chunks_exact_mut(plane);
    for xc in x.chunks_exact(g.in_plane()) {
        for ky in 0..g.h.kernel {
            for kx in 0..g.w.kernel {
                let row = rows.next().expect("col has icg*kh*kw rows");
                for (oy, iy) in tap_table(&g.h, ky) {
                    let out = &mut row[oy * ow..(oy + 1) * ow];
                    match iy {
                        None => out.fill(0.0),
                        Some(iy) => {
                            let src = &xc[iy * g.w.input..(iy + 1) * g.w.input];
                            for (ox, ix) in tap_table(&g.w, kx) {
                                out[ox] = ix.map_or(0.0, |ix| src[ix]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds every entry of `col` into the input position it was gathered from: the adjoint
/// of [`im2col`]. `x` (`[icg, ih, iw]`) is accumulated into, not overwritten.
pub(crate) fn col2im(g: &ConvGeom, col: &[f32], x: &mut [f32]) {
    let (ow, plane) = (g.w.output, g.out_plane());
    let mut rows = col.chunks_exact(plane);
    for xc in x.chunks_exact_mut(g.in_plane()) {
        for ky in 0..g.h.kernel {
            for kx in 0..g.w.kernel {
                let row = rows.next().expect("col has icg*kh*kw rows");
                for (oy, iy) in tap_table(&g.h, ky) {
                    let Some(iy) = iy else { continue };
                    let dst = &mut xc[iy * g.w.input..(iy + 1) * g.w.input];
                    for (ox, ix) in tap_table(&g.w, kx) {
                        if let Some(ix) = ix {
                            dst[ix] += row[oy * ow + ox];
                        }
                    }
                }
            }
        }
    }
}
