//! Indirect GEMM for convolutions with few input channels and column stride 1: output-row
//! tiles, `B` rows read through an offset table from the zero-padded input planes (no
//! im2col packing), `C` written straight into the NCHW output (no transpose).
//!
//! Per image `n`: `out[oc][oh][ow] = bias + sum_k A[oc][k] * B_oh[k][ow]` with
//! `k = (ic, i, j)` and `B_oh[k][ow] = padded[ic][oh*sh + i*dh][ow + j*dw]`: the `ow`-run
//! of row `k` is contiguous in the padded plane (`[ic][rows][cols]`, the planar
//! [`Blocked`] layout), at offset `offs[k]`
//! from the output row's base:
//!
//! ```text
//! offs[(ic, i, j)] = (ic * rows + i * dh) * cols + j * dw
//! base(oh, ow0)    = oh * sh * cols + ow0
//! ```
//!
//! so the microkernel (`MR` output channels x `NR` pixels of one output row) streams `B`
//! rows in place. S1 (1 channel, 3x3): 0.48-0.50 ms against 0.62-0.66 ms for the planar
//! direct kernels and their output transposes. With a column stride the rows would need
//! a phase split first; there the planar direct kernels are faster (S8, stride 2: 1.72-1.84
//! ms against 1.96-2.34 ms with a phase split), so this algorithm declines.
//!
//! Tasks: bands of output rows, through [`BlockedInput`] (per image with a large batch).

use super::blocked::{Blocked, BlockedInput};
use super::plan::{Aligned, OutPtr};
use crate::error::{Error, try_zeroed};
use crate::isa::Isa;
use crate::kernels::{Family, GemmArgs, GemmFn, KERNELS, KernelInfo, gemm_entry, pick};
use crate::spec::{ConvGeom, add, product};

/// A planned indirect GEMM.
pub(crate) struct Indirect {
    kernel: usize,
    entry: GemmFn,
    mr: usize,
    nr: usize,
    m_tiles: usize,
    /// The padded planes (one channel per block, rows of `cols` floats).
    input: BlockedInput,
    /// Offset of row `k` of `B` from an output row's base.
    offs: Vec<usize>,
    /// `[m tile][K][MR]`, zero-padded rows.
    a: Aligned,
    /// `[m tile][MR]`.
    bias: Vec<f32>,
}

impl Indirect {
    /// `groups == 1`, column stride 1, fewer than `lanes / 2` input channels (from there
    /// channel blocks pay), and an indirect kernel of `isa` (the forced one, if any).
    pub(crate) fn accepts(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> bool {
        g.groups == 1 && g.w.stride == 1 && g.in_c * 2 < isa.lanes() && Indirect::choose(g, isa, forced).is_some()
    }

    /// The indirect kernel with the least padded work (output channels to `MR`, each
    /// output row's pixels to `NR`).
    fn choose(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> Option<usize> {
        let fits = |i: usize, k: &KernelInfo| {
            k.family == Family::Gemm && k.indirect && k.has_isa(isa) && gemm_entry(i, isa).is_some()
        };
        pick(forced, fits, |k| {
            let (mr, nr) = (k.rows, k.vectors * isa.lanes());
            (g.out_c.div_ceil(mr) * mr) as u128 * (g.w.output.div_ceil(nr) * nr) as u128
        })
    }

    /// Plans `g`; the caller checked [`Indirect::accepts`].
    pub(crate) fn new(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> Result<Indirect, Error> {
        let kernel = Indirect::choose(g, isa, forced).ok_or(Error::Unsupported { what: "indirect kernel".into() })?;
        let entry = gemm_entry(kernel, isa).ok_or(Error::Unsupported { what: "indirect entry".into() })?;
        let (mr, nr) = (KERNELS[kernel].rows, KERNELS[kernel].vectors * isa.lanes());
        let (h, w) = (g.h, g.w);
        // A padded row, and what the last (full vector) panel of the farthest tap reads.
        let reach = add("indirect reach", (w.kernel - 1) * w.dilation, w.output.div_ceil(nr) * nr)?;
        let layout = Blocked::new(g, isa, 0, reach, true)?;
        let (rows, cols) = (layout.rows, layout.cols);
        let offs = (0..g.in_c)
            .flat_map(|ic| (0..h.kernel).flat_map(move |i| (0..w.kernel).map(move |j| (ic, i, j))))
            .map(|(ic, i, j)| (ic * rows + i * h.dilation) * cols + j * w.dilation)
            .collect();
        let m_tiles = g.out_c.div_ceil(mr);
        Ok(Indirect {
            kernel,
            entry,
            mr,
            nr,
            m_tiles,
            input: BlockedInput::new(g, layout)?,
            offs,
            a: Aligned::zeroed(product("packed weights", &[m_tiles, g.in_c * h.kernel * w.kernel, mr])?)?,
            bias: try_zeroed(product("packed bias", &[m_tiles, mr])?)?,
        })
    }

    /// Index of the kernel in `KERNELS`.
    pub(crate) fn kernel(&self) -> usize {
        self.kernel
    }

    /// Packs `weight` (`[oc][K]`) into `[m tile][K][MR]` and the bias into `[m tile][MR]`.
    pub(crate) fn set_weights(&mut self, g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>) {
        let (mr, k) = (self.mr, self.offs.len());
        for (i, dst) in self.a.iter_mut().enumerate() {
            let (r, kk, t) = (i % mr, (i / mr) % k, i / (mr * k));
            let oc = t * mr + r;
            *dst = if oc < g.out_c { weight[oc * k + kk] } else { 0.0 };
        }
        for (oc, dst) in self.bias.iter_mut().enumerate() {
            *dst = if oc < g.out_c { bias.map_or(0.0, |b| b[oc]) } else { 0.0 };
        }
    }

    /// Runs the convolution (lengths checked by the plan): tasks of bands of output rows,
    /// 8 per thread when there are few images.
    pub(crate) fn run(&self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let out = OutPtr(output.as_mut_ptr());
        let oh = g.h.output;
        let band = oh.div_ceil((8 * rayon::current_num_threads()).div_ceil(g.batch).clamp(1, oh));
        self.input.run(g, input, oh.div_ceil(band), |image, n, b| {
            self.rows_of(g, image, n, b * band..((b + 1) * band).min(oh), out, relu)
        });
    }

    /// Output rows `ohs` of image `n` (padded: `image`), every output channel.
    fn rows_of(&self, g: &ConvGeom, image: &[f32], n: usize, ohs: std::ops::Range<usize>, out: OutPtr, relu: bool) {
        let (mr, nr, k) = (self.mr, self.nr, self.offs.len());
        let cols = self.input.layout.cols;
        let (oh_n, ow_n) = (g.h.output, g.w.output);
        let out_plane = oh_n * ow_n;
        for oh in ohs {
            for t in 0..self.m_tiles {
                for ow0 in (0..ow_n).step_by(nr) {
                    let args = GemmArgs {
                        k,
                        a: self.a[t * k * mr..][..k * mr].as_ptr(),
                        b: image[oh * g.h.stride * cols + ow0..].as_ptr(),
                        ldb: 0,
                        boffs: self.offs.as_ptr(),
                        bias: self.bias[t * mr..][..mr].as_ptr(),
                        // SAFETY (pointer arithmetic): t * MR < out_c and oh < OH, ow0 <
                        // OW: inside image n of the output the plan checked.
                        c: unsafe { out.add(((n * g.out_c + t * mr) * oh_n + oh) * ow_n + ow0) },
                        ldc: out_plane,
                        m: mr.min(g.out_c - t * mr),
                        n: nr.min(ow_n - ow0),
                        load_c: false,
                        relu,
                    };
                    // SAFETY: the entry is an indirect kernel of the plan's ISA. B row kk
                    // starts at base + offs[kk] = (ic * rows + oh*sh + i*dh) * cols + j*dw
                    // + ow0: padded row oh*sh + i*dh < rows (the output-size formula),
                    // and the NR floats read end within the padded row (cols covers the
                    // farthest tap's last full panel), so inside `image`. A: K x MR
                    // floats of tile t; bias MR floats. C: rows below m (< out_c) and n
                    // pixels of output row oh, a region only this task writes.
                    unsafe { (self.entry)(&args) };
                }
            }
        }
    }
}
