//! Direct convolution on the channel-blocked layout.
//!
//! Layouts (`L` = lanes of the ISA, `T` = tile pixels, `V` = tile vectors, `OB = V * L`):
//!
//! ```text
//! input   NCHW  --reorder-->  blocked [n][icb][rows][cols][L]   zero padding included
//! weight  [oc][ic][kh][kw] --pack-->  [oc / OB][icb][kh * kw][L][OB]
//! kernel  tile = T pixels of one output row x OB output channels, accumulated in
//!         registers over every (input block, tap, lane); written pixel-major to a
//!         stack tile, then transposed into the NCHW output.
//! ```
//!
//! `rows`/`cols` are the padded input plus, on the right, the columns the last (partial)
//! tile of a row reads, so the kernel never needs a bounds check. The reorder is the one
//! extra copy of the input a plan owns.
//!
//! Loop nest (tasks in parallel): `for (n, oc block, band of output rows)`:
//! `for oh in band { for ow tile { kernel } }`. A task's packed weights
//! (`icb * taps * L * OB` floats, 72 KiB for 64 channels, 3x3, 32 outputs) stay in L2
//! while it sweeps its rows; the tile's input rows stay in L1.

use rayon::prelude::*;

use super::plan::OutPtr;
use crate::error::{Error, try_zeroed};
use crate::isa::Isa;
use crate::kernels::{DirectArgs, DirectFn, Family, KERNELS, TransposeFn, direct_entry, transpose_entry};
use crate::spec::{ConvGeom, product};

/// Largest tile (`T * OB` floats) of the stack scratch tile.
const MAX_TILE: usize = 512;

/// A planned direct convolution.
pub(crate) struct Direct {
    kernel: usize,
    entry: DirectFn,
    transpose: TransposeFn,
    lanes: usize,
    /// Input-channel blocks of `lanes` channels.
    icb: usize,
    /// Output channels per block (`V * lanes`) and the block count.
    ob: usize,
    n_ob: usize,
    /// Blocked plane size.
    rows: usize,
    cols: usize,
    /// Tiles per output row.
    ow_tiles: usize,
    /// Tap offsets in floats, `(kh * dh * cols + kw * dw) * lanes`.
    taps: Vec<usize>,
    weights: Vec<f32>,
    bias: Vec<f32>,
    blocked: Vec<f32>,
}

impl Direct {
    /// Whether a direct kernel of `isa` fits `g` (the forced kernel, if given).
    pub(crate) fn accepts(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> bool {
        Direct::choose(g, isa, forced).is_some()
    }

    /// The best fitting kernel: the least padded work (output pixels rounded up to the tile
    /// width times output channels rounded up to the channel block), then a 3x3-specialised
    /// kernel over a generic one, then registry order.
    fn choose(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> Option<usize> {
        let lanes = isa.lanes();
        // Blocking pads the input channels to a multiple of L: below L/2 channels most of
        // the work would be multiplications by zero (the implicit GEMM handles those).
        if g.groups != 1 || g.in_c * 2 < lanes || g.h.stride != g.w.stride {
            return None;
        }
        let (kernel, stride) = ([g.h.kernel, g.w.kernel], [g.h.stride, g.w.stride]);
        let fits = |i: usize| {
            let k = &KERNELS[i];
            k.family == Family::Direct
                && k.has_isa(isa)
                && k.fits(kernel, stride)
                && k.rows * k.vectors * lanes <= MAX_TILE
                && k.rows <= lanes
                && direct_entry(i, isa).is_some()
        };
        if let Some(i) = forced {
            return fits(i).then_some(i);
        }
        (0..KERNELS.len()).filter(|&i| fits(i)).min_by_key(|&i| {
            let k = &KERNELS[i];
            let ob = k.vectors * lanes;
            let work = g.w.output.div_ceil(k.rows) * k.rows * g.out_c.div_ceil(ob) * ob;
            (work, k.kernel == [0, 0], i)
        })
    }

    /// Plans `g`; the caller checked [`Direct::accepts`].
    pub(crate) fn new(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> Result<Direct, Error> {
        let kernel = Direct::choose(g, isa, forced).ok_or(Error::Unsupported { what: "direct kernel".into() })?;
        let entry = direct_entry(kernel, isa).ok_or(Error::Unsupported { what: "direct entry".into() })?;
        let k = &KERNELS[kernel];
        let lanes = isa.lanes();
        let (h, w) = (g.h, g.w);
        let ob = k.vectors * lanes;
        let ow_tiles = w.output.div_ceil(k.rows);
        let rows = h.input + h.pad_begin + h.pad_end;
        // The last tile reads pixel (ow_tiles * T - 1), tap kw - 1.
        let reach = (ow_tiles * k.rows - 1) * w.stride + (w.kernel - 1) * w.dilation + 1;
        let cols = (w.input + w.pad_begin + w.pad_end).max(reach);
        let icb = g.in_c.div_ceil(lanes);
        let n_ob = g.out_c.div_ceil(ob);
        let taps = (0..h.kernel)
            .flat_map(|i| (0..w.kernel).map(move |j| (i * h.dilation * cols + j * w.dilation) * lanes))
            .collect();
        let weights = try_zeroed(product("packed weights", &[n_ob, icb, h.kernel * w.kernel, lanes, ob])?)?;
        let blocked = try_zeroed(product("blocked input", &[g.batch, icb, rows, cols, lanes])?)?;
        Ok(Direct {
            kernel,
            entry,
            transpose: transpose_entry(isa),
            lanes,
            icb,
            ob,
            n_ob,
            rows,
            cols,
            ow_tiles,
            taps,
            weights,
            bias: try_zeroed(n_ob * ob)?,
            blocked,
        })
    }

    /// Index of the kernel in `KERNELS`.
    pub(crate) fn kernel(&self) -> usize {
        self.kernel
    }

    /// Packs `weight` `[oc][ic][kh][kw]` into `[oc / OB][icb][kh * kw][L][OB]`, zero-padded.
    pub(crate) fn set_weights(&mut self, g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>) {
        let (l, ob, ntaps) = (self.lanes, self.ob, self.taps.len());
        for (i, dst) in self.weights.iter_mut().enumerate() {
            let j = i % ob;
            let lane = (i / ob) % l;
            let t = (i / (ob * l)) % ntaps;
            let b = (i / (ob * l * ntaps)) % self.icb;
            let o = i / (ob * l * ntaps * self.icb);
            let (oc, ic) = (o * ob + j, b * l + lane);
            *dst = if oc < g.out_c && ic < g.in_c { weight[(oc * g.in_c + ic) * ntaps + t] } else { 0.0 };
        }
        for (oc, dst) in self.bias.iter_mut().enumerate() {
            *dst = bias.and_then(|b| b.get(oc)).copied().unwrap_or(0.0);
        }
    }

    /// Runs the convolution (lengths checked by the plan).
    pub(crate) fn run(&mut self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let (l, rows, cols, icb) = (self.lanes, self.rows, self.cols, self.icb);
        let (h, w) = (g.h, g.w);
        let in_plane = h.input * w.input;
        // 1. Reorder the input interior into the blocked layout (the padding stays zero from
        //    the allocation); one task per (image, channel block).
        //    Row by row, L channels x L pixels at a time through the block transpose.
        let transpose = self.transpose;
        self.blocked.par_chunks_mut(rows * cols * l).enumerate().for_each(|(i, dst)| {
            let (n, b) = (i / icb, i % icb);
            let channels = l.min(g.in_c - b * l);
            let src = &input[(n * g.in_c + b * l) * in_plane..][..channels * in_plane];
            for y in 0..h.input {
                let row = &mut dst[((y + h.pad_begin) * cols + w.pad_begin) * l..][..w.input * l];
                for x0 in (0..w.input).step_by(l) {
                    let px = l.min(w.input - x0);
                    // SAFETY: the ISA is the plan's. Reads channel i < channels, pixels
                    // x0..x0 + px of row y: inside `src`. Writes pixel j < px, lane
                    // i < channels of the row: inside `row`.
                    unsafe {
                        transpose(
                            src[y * w.input + x0..].as_ptr(),
                            in_plane,
                            channels,
                            px,
                            row[x0 * l..].as_mut_ptr(),
                            l,
                        )
                    };
                }
            }
        });
        // 2. Tiles. Bands of rows per task: enough tasks for 4 per thread (load balance),
        //    which at batch 1 splits the image between the cores.
        let threads = rayon::current_num_threads();
        let band = h.output.div_ceil((4 * threads).div_ceil(g.batch * self.n_ob).clamp(1, h.output));
        let bands = h.output.div_ceil(band);
        let per_image = self.n_ob * bands;
        let this = &*self;
        let out = OutPtr(output.as_mut_ptr());
        let out_len = output.len();
        (0..g.batch * per_image).into_par_iter().for_each(|task| {
            let n = task / per_image;
            let o = (task % per_image) / bands;
            let rows_range = (task % bands) * band..((task % bands + 1) * band).min(h.output);
            this.band(g, n, o, rows_range, out, out_len, relu);
        });
    }

    /// One task: image `n`, output-channel block `o`, output rows `oh_range`.
    #[allow(clippy::too_many_arguments)]
    fn band(
        &self,
        g: &ConvGeom,
        n: usize,
        o: usize,
        oh_range: std::ops::Range<usize>,
        out: OutPtr,
        out_len: usize,
        relu: bool,
    ) {
        let k = &KERNELS[self.kernel];
        let (l, ob, t) = (self.lanes, self.ob, k.rows);
        let (h, w) = (g.h, g.w);
        let plane = self.rows * self.cols * l;
        let image = &self.blocked[n * self.icb * plane..][..self.icb * plane];
        let weights = &self.weights[o * self.icb * self.taps.len() * l * ob..][..self.icb * self.taps.len() * l * ob];
        let mut tile = [0f32; MAX_TILE];
        let oc_valid = ob.min(g.out_c - o * ob);
        for oh in oh_range {
            for ti in 0..self.ow_tiles {
                let ow0 = ti * t;
                let args = DirectArgs {
                    // In bounds: row oh * s < rows, column ow0 * s < cols.
                    x: image[(oh * h.stride * self.cols + ow0 * w.stride) * l..].as_ptr(),
                    icb: self.icb,
                    icb_stride: plane,
                    taps: self.taps.as_ptr(),
                    ntaps: self.taps.len(),
                    w: weights.as_ptr(),
                    bias: self.bias[o * ob..][..ob].as_ptr(),
                    out: tile.as_mut_ptr(),
                    relu,
                };
                // SAFETY: the entry was fetched for self's ISA, which the plan checked the
                // CPU supports. Reads: block b < icb, tap t, pixel r < T, lane: row
                // oh*s + kh*dh < rows (output-size formula) and column (ow0 + r)*s + kw*dw
                // < cols (cols covers the last tile), so inside `image`; weights and bias
                // slices have exactly the lengths the contract reads; the tile has
                // T * OB <= MAX_TILE floats (checked in `choose`).
                unsafe { (self.entry)(&args) };
                let ow_valid = t.min(w.output - ow0);
                let plane = h.output * w.output;
                for v in (0..oc_valid).step_by(l) {
                    let at = ((n * g.out_c + o * ob + v) * h.output + oh) * w.output + ow0;
                    let channels = l.min(oc_valid - v);
                    debug_assert!(at + (channels - 1) * plane + ow_valid <= out_len);
                    // SAFETY: the ISA is the plan's. Reads tile rows i < ow_valid <= T,
                    // lanes v..v + channels < OB. Writes channel j < channels (< out_c),
                    // pixels ow0..ow0 + ow_valid of row oh: inside the output, in the
                    // region (n, channel block, row band) only this task writes.
                    unsafe { (self.transpose)(tile[v..].as_ptr(), ob, ow_valid, channels, out.add(at), plane) };
                }
            }
        }
    }
}
