//! Direct convolution on the channel-blocked layout, or on planar blocks (one channel a
//! block: zero-padded NCHW planes, a row copy instead of a transpose) with the `c1_`
//! kernels, which the planner takes when blocks of `L` channels would be mostly padding
//! (S8: 3 input channels, 7x7 stride 2, 1.88 -> 1.74 ms against the implicit GEMM, one
//! thread; S1 with 1 channel equal).
//!
//! Layouts (`L` = lanes of the ISA, `T` = tile pixels, `V` = tile vectors, `OB = V * L`):
//!
//! ```text
//! input   NCHW  --reorder-->  blocked [n][icb][rows][cols][L]   zero padding included
//! weight  [oc][ic][kh][kw] --pack-->  [oc / OB][icb][kh * kw][L][OB]
//! kernel  tile = T pixels of one output row x OB output channels, accumulated in
//!         registers over the (input block, tap chunk) of a pass; the partial sums live
//!         pixel-major in a per-thread row scratch [rows][OWpad][OB] between passes,
//!         then L x L blocks of it are transposed into the NCHW output.
//! ```
//!
//! `rows`/`cols` are the padded input plus, on the right, the columns the last (partial)
//! tile of a row reads, so the kernel never needs a bounds check. The reorder is the one
//! extra copy of the input a plan owns.
//!
//! Tasks: with a large batch (`BlockedInput`'s rule, at plan time), one task per image
//! reorders it into the thread's own blocked-image buffer (reused image after image, so it
//! stays in L2 instead of a batch-sized buffer streaming through memory) and computes all
//! of it; with fewer images every image is reordered into a batch-sized buffer first (2
//! bands of input rows per thread) and split into (band of output rows, output-channel
//! block) tasks, 8 per thread, so that batch 1 uses every core. Both phases are
//! band-major and run on `tasks::for_each`'s fixed ranges, so a thread computes mostly
//! from input rows it reordered into its own L2 (S4 at 2 threads: 0.50-0.55 -> 0.445 ms,
//! S3 0.81-0.87 -> 0.78 ms, paired runs, when rayon's halving split did this most of the
//! time). Within a task:
//!
//! ```text
//! for group of R rows in the band              R rows x OW x OB accumulators: L1/4
//!   for pass (input block b, chunk of taps)    its weights L * taps * OB: <= L1/2
//!     for oh in group, for ow tile:            kernel: acc (+)= x * w over the pass
//!   transpose the R rows into the NCHW output  (L x L blocks)
//! ```
//!
//! A pass's weights stay in L1 while every tile of the group uses them, instead of
//! streaming all the weights from L2 for every tile; the partial sums round-trip through
//! the L1-resident row scratch once per pass (2 x 28 vector moves per ~4000 FMAs).

use super::blocked::{Blocked, BlockedInput};
use super::plan::{Aligned, OutPtr, Slots};
use crate::error::{Error, try_zeroed};
use crate::isa::{Isa, cache_sizes};
use crate::kernels::{DirectArgs, DirectFn, Family, KERNELS, KernelInfo, direct_entry, pick};
use crate::spec::{ConvGeom, add, product};

/// The relative cost of direct kernel `k` on rows of `pixels` output pixels (tiles) and
/// `out_c` output channels: the padded work (pixels rounded up to the tile width, channels
/// to the channel block) weighted by the tile's load overhead. Each weight vector serves
/// `rows` pixels, so narrow tiles pay relatively more loads; (rows + 2) / rows matches the
/// measured ratios at equal work (AVX-512 ow14 ~10% faster than ow8, AVX2 ow6 ~28% faster
/// than ow3). 840 is divisible by every tile width. In `u128`, saturating: any valid spec
/// (up to 2^61 pixels and channels each) compares without overflow.
pub(crate) fn tile_cost(k: &KernelInfo, lanes: usize, pixels: usize, out_c: usize) -> u128 {
    let round = |n: usize, to: usize| n.div_ceil(to) as u128 * to as u128;
    let work = round(pixels, k.rows).saturating_mul(round(out_c, k.vectors * lanes));
    work.saturating_mul(((k.rows + 2) * (840 / k.rows)) as u128)
}

/// A planned direct convolution.
pub(crate) struct Direct {
    kernel: usize,
    entry: DirectFn,
    /// The blocked input.
    input: BlockedInput,
    /// Output channels per block (`V * lanes`) and the block count.
    ob: usize,
    n_ob: usize,
    /// Tiles per output row.
    ow_tiles: usize,
    /// Tap offsets in floats, `(kh * dh * cols + kw * dw) * cb`.
    taps: Vec<usize>,
    /// Taps per pass (all of them for the unrolled 3x3 and the planar kernels).
    chunk: usize,
    /// Input blocks per pass (1 unless planar).
    pass_blocks: usize,
    /// Output rows per group (rows of accumulators kept in the scratch).
    group: usize,
    slots: Slots,
    weights: Aligned,
    bias: Vec<f32>,
}

impl Direct {
    /// Whether a direct kernel of `isa` fits `g` (the forced kernel, if given).
    pub(crate) fn accepts(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> bool {
        Direct::choose(g, isa, forced).is_some()
    }

    /// The best fitting kernel: the least [`tile_cost`], then a 3x3-specialised kernel over
    /// a generic one, then registry order.
    fn choose(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> Option<usize> {
        let lanes = isa.lanes();
        if g.groups != 1 || g.h.stride != g.w.stride {
            return None;
        }
        let (kernel, stride) = ([g.h.kernel, g.w.kernel], [g.h.stride, g.w.stride]);
        // Channel blocks pad the input channels to a multiple of L: below L/2 channels
        // most of that work would be multiplications by zero, so only planar kernels.
        let fits = |i: usize, k: &KernelInfo| {
            k.family == Family::Direct
                && k.has_isa(isa)
                && k.fits(kernel, stride)
                && k.rows <= lanes
                && (k.planar || g.in_c * 2 >= lanes)
                && direct_entry(i, isa).is_some()
        };
        // The work with the input channels padded to the block.
        let channels = |k: &KernelInfo| if k.planar { g.in_c } else { g.in_c.div_ceil(lanes) * lanes };
        pick(forced, fits, |k| {
            (tile_cost(k, lanes, g.w.output, g.out_c).saturating_mul(channels(k) as u128), k.kernel == [0, 0])
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
        // The last tile reads pixel (ow_tiles * T - 1), tap kw - 1.
        let reach = add("direct reach", (ow_tiles * k.rows - 1) * w.stride, (w.kernel - 1) * w.dilation + 1)?;
        let layout = Blocked::new(g, isa, 0, reach, k.planar)?;
        let (icb, cols, cb) = (layout.icb, layout.cols, layout.cb);
        let n_ob = g.out_c.div_ceil(ob);
        let taps = (0..h.kernel)
            .flat_map(|i| (0..w.kernel).map(move |j| (i * h.dilation * cols + j * w.dilation) * cb))
            .collect();
        let ntaps = h.kernel * w.kernel;
        let (l1, _) = cache_sizes();
        let f = std::mem::size_of::<f32>();
        // A pass's weights (blocks * cb * chunk * OB floats) in half of L1, chunks evened
        // out; the unrolled 3x3 kernels always take their 9 taps. Channel blocks: one
        // block a pass, taps chunked; planar blocks: all taps, as many blocks (channels)
        // as fit, at least one.
        let pass_floats = l1 / 2 / f;
        let (chunk, pass_blocks) = if k.planar {
            (ntaps, (pass_floats / (ntaps * ob)).clamp(1, icb))
        } else if k.kernel == [0, 0] {
            ((pass_floats / (cb * ob)).clamp(1, ntaps), 1)
        } else {
            (ntaps, 1)
        };
        let chunk = ntaps.div_ceil(ntaps.div_ceil(chunk));
        let pass_blocks = icb.div_ceil(icb.div_ceil(pass_blocks));
        // A group's accumulators (group * OWpad * OB floats) in a quarter of L1.
        let ow_pad = ow_tiles * k.rows;
        let group = (l1 / 4 / ow_pad.saturating_mul(ob * f)).clamp(1, h.output);
        let weights = Aligned::zeroed(product("packed weights", &[n_ob, icb, ntaps, cb, ob])?)?;
        Ok(Direct {
            kernel,
            entry,
            input: BlockedInput::new(g, layout)?,
            ob,
            n_ob,
            ow_tiles,
            taps,
            chunk,
            pass_blocks,
            group,
            slots: Slots::new(product("direct scratch", &[group, ow_pad, ob])?)?,
            weights,
            bias: try_zeroed(n_ob * ob)?,
        })
    }

    /// Index of the kernel in `KERNELS`.
    pub(crate) fn kernel(&self) -> usize {
        self.kernel
    }

    /// Packs `weight` `[oc][ic][kh][kw]` into `[oc / OB][icb][kh * kw][cb][OB]`, zero-padded.
    pub(crate) fn set_weights(&mut self, g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>) {
        let (l, ob, ntaps, icb) = (self.input.layout.cb, self.ob, self.taps.len(), self.input.layout.icb);
        for (i, dst) in self.weights.iter_mut().enumerate() {
            let j = i % ob;
            let lane = (i / ob) % l;
            let t = (i / (ob * l)) % ntaps;
            let b = (i / (ob * l * ntaps)) % icb;
            let o = i / (ob * l * ntaps * icb);
            let (oc, ic) = (o * ob + j, b * l + lane);
            *dst = if oc < g.out_c && ic < g.in_c { weight[(oc * g.in_c + ic) * ntaps + t] } else { 0.0 };
        }
        for (oc, dst) in self.bias.iter_mut().enumerate() {
            *dst = bias.and_then(|b| b.get(oc)).copied().unwrap_or(0.0);
        }
    }

    /// Runs the convolution (lengths checked by the plan).
    pub(crate) fn run(&self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let out = OutPtr(output.as_mut_ptr());
        let out_len = output.len();
        let oh = g.h.output;
        if self.input.per_image() {
            // Large batch: each image's task computes all its output channels.
            self.input.run(g, input, self.n_ob, |image, n, o| {
                self.slots.with(|scratch| self.band(g, image, n, o, 0..oh, out, out_len, relu, scratch))
            });
            return;
        }
        // Few images: (band of rows, output-channel block) tasks, 8 per thread for load
        // balance, so that batch 1 uses every core. Band-major: consecutive tasks (which
        // `tasks::for_each` hands to one thread) share input rows, so a thread reads
        // mostly its own part of the blocked image.
        let band = oh.div_ceil((8 * rayon::current_num_threads()).div_ceil(g.batch * self.n_ob).clamp(1, oh));
        self.input.run(g, input, oh.div_ceil(band) * self.n_ob, |image, n, task| {
            let (bi, o) = (task / self.n_ob, task % self.n_ob);
            let rows = bi * band..((bi + 1) * band).min(oh);
            self.slots.with(|scratch| self.band(g, image, n, o, rows, out, out_len, relu, scratch))
        });
    }

    /// One task: image `n` (blocked: `image`), output-channel block `o`, output rows
    /// `oh_range`.
    #[allow(clippy::too_many_arguments)]
    fn band(
        &self,
        g: &ConvGeom,
        image: &[f32],
        n: usize,
        o: usize,
        oh_range: std::ops::Range<usize>,
        out: OutPtr,
        out_len: usize,
        relu: bool,
        scratch: &mut [f32],
    ) {
        let k = &KERNELS[self.kernel];
        // `l`: channels per input block (L, or 1 when planar).
        let (l, ob, t, ntaps) = (self.input.layout.cb, self.ob, k.rows, self.taps.len());
        let icb = self.input.layout.icb;
        let (h, w) = (g.h, g.w);
        let ow_pad = self.ow_tiles * t;
        let (plane, cols) = (self.input.layout.block_len(), self.input.layout.cols);
        let weights = &self.weights[o * icb * ntaps * l * ob..][..icb * ntaps * l * ob];
        let bias = &self.bias[o * ob..][..ob];
        let oc_valid = ob.min(g.out_c - o * ob);
        let mut oh0 = oh_range.start;
        while oh0 < oh_range.end {
            let rows = self.group.min(oh_range.end - oh0);
            let chunks = ntaps.div_ceil(self.chunk);
            let groups = icb.div_ceil(self.pass_blocks);
            for pass in 0..groups * chunks {
                let (b, t0) = (pass / chunks * self.pass_blocks, (pass % chunks) * self.chunk);
                let (nb, nt) = (self.pass_blocks.min(icb - b), self.chunk.min(ntaps - t0));
                let last = pass + 1 == groups * chunks;
                for r in 0..rows {
                    let oh = oh0 + r;
                    for ti in 0..self.ow_tiles {
                        let ow0 = ti * t;
                        let args = DirectArgs {
                            // In bounds: row oh * s < rows, column ow0 * s < cols.
                            x: image[b * plane + (oh * h.stride * cols + ow0 * w.stride) * l..].as_ptr(),
                            icb: nb,
                            icb_stride: plane,
                            taps: self.taps[t0..t0 + nt].as_ptr(),
                            ntaps: nt,
                            // Blocks b..b + nb with taps t0..t0 + nt are contiguous: nb > 1
                            // only with all taps in the pass.
                            w: weights[(b * ntaps + t0) * l * ob..][..nb * nt * l * ob].as_ptr(),
                            bias: bias.as_ptr(),
                            out: scratch[(r * ow_pad + ow0) * ob..][..t * ob].as_mut_ptr(),
                            accumulate: pass > 0,
                            relu: relu && last,
                        };
                        // SAFETY: the entry was fetched for self's ISA, which the plan
                        // checked the CPU supports. Reads: blocks b..b + nb (< icb), taps
                        // t0..t0 + nt, pixel r < T, lane < l: row oh*s + kh*dh < rows
                        // (output-size formula) and column (ow0 + r)*s + kw*dw < cols (cols
                        // covers the last tile), so inside `image`; the weight slice holds
                        // the nb * nt * l * OB floats read, bias OB floats; `out` is T * OB
                        // floats of scratch.
                        unsafe { (self.entry)(&args) };
                    }
                }
            }
            // SAFETY: rows oh0..oh0 + rows of image n, channels of block o: the region
            // this task owns; the scratch holds rows x OWpad x OB floats.
            unsafe {
                self.input.layout.store_rows(g, scratch, (ow_pad, ob), (n, o * ob, oc_valid), (oh0, rows), out, out_len)
            };
            oh0 += rows;
        }
    }
}
