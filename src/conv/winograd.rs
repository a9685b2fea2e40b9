//! Winograd F(2x2, 3x3) convolution: 3x3 kernels, stride 1, any dilation, on the
//! channel-blocked layout ([`Blocked`]), with the products done by the direct kernels.
//!
//! Per band of output rows and per image:
//!
//! ```text
//! input transform   blocked patches -> V [16 positions][icb][tiles][L]   (L channels a vector)
//! for each output-channel block o:
//!   16 GEMMs        M_p [tiles][OB] = V_p x U_p   (a 1x1 direct kernel over the tiles,
//!                                                  U_p = packed [icb][L][OB] of block o)
//!   output transform M -> 2x2 outputs + bias (+ ReLU) -> row scratch [rows][OWpad][OB]
//!   store           row scratch -> NCHW (L x L transposes, shared with the direct path)
//! ```
//!
//! 16 products per 4 outputs instead of 36: 2.25x fewer multiplications than direct
//! convolution (GFLOP/s figures count the direct convolution's operations). The
//! transforms add and subtract at most 16 values, so rounding errors stay within a small
//! multiple of the direct sum's; the planner only picks Winograd when every window overlaps
//! the image in at least 2 x 2 taps (padding at most the dilation on each side), so no
//! output is a cancellation of large neighbours.
//!
//! A tile with dilation `d` is the 2x2 outputs `d` apart: tiles are enumerated per
//! "block row" of `2d` output rows (`d` row phases × the column tiles, `d` column phases
//! each). Tiles past the output edge are computed into scratch and dropped.

use rayon::prelude::*;

use super::blocked::Blocked;
use super::direct::tile_cost;
use super::plan::{Aligned, OutPtr, Slots};
use crate::error::{Error, try_zeroed};
use crate::isa::{Isa, cache_sizes};
use crate::kernels::winograd::{G, InputArgs, OutputArgs, input_entry, output_entry};
use crate::kernels::{DirectArgs, DirectFn, Family, KERNELS, direct_entry};
use crate::spec::{ConvGeom, product};

/// Positions of the 4x4 transformed tile.
const POS: usize = 16;

/// A planned Winograd convolution.
pub(crate) struct Winograd {
    kernel: usize,
    entry: DirectFn,
    input_tf: unsafe fn(&InputArgs),
    output_tf: unsafe fn(&OutputArgs),
    layout: Blocked,
    /// Output channels per block and the block count.
    ob: usize,
    n_ob: usize,
    /// Tiles of one block row, and their input / scratch offsets relative to the block
    /// row's first padded input row / first scratch row.
    in_origins: Vec<usize>,
    out_origins: Vec<usize>,
    /// Output rows per block row (`2 * dh`), block rows per band and per image.
    block_rows: usize,
    band: usize,
    n_block_rows: usize,
    /// Tiles of a full band rounded up to the kernel's tile width.
    tiles_pad: usize,
    /// Scratch row length in pixels (`2 * dw * column blocks`).
    ow_pad: usize,
    /// `[o][position][icb][L][OB]`.
    u: Aligned,
    bias: Vec<f32>,
    zero_bias: Vec<f32>,
    /// Per task: V, M and the row scratch.
    slots: Slots,
    images: Option<Slots>,
    blocked: Aligned,
}

impl Winograd {
    /// Whether Winograd fits `g` with `isa` (and the forced kernel, if any).
    pub(crate) fn accepts(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> bool {
        let axes_fit = [g.h, g.w]
            .iter()
            .all(|a| a.kernel == 3 && a.stride == 1 && a.pad_begin <= a.dilation && a.pad_end <= a.dilation);
        g.groups == 1 && g.in_c * 2 >= isa.lanes() && axes_fit && Winograd::choose(g, isa, forced, 1).is_some()
    }

    /// The direct kernel for the 16 GEMMs: any-size taps, stride 1, the least
    /// [`tile_cost`] over `tiles` tiles.
    fn choose(g: &ConvGeom, isa: Isa, forced: Option<usize>, tiles: usize) -> Option<usize> {
        let fits = |i: usize| {
            let k = &KERNELS[i];
            k.family == Family::Direct
                && k.kernel == [0, 0]
                && k.stride == 1
                && k.has_isa(isa)
                && direct_entry(i, isa).is_some()
        };
        if let Some(i) = forced {
            return fits(i).then_some(i);
        }
        (0..KERNELS.len())
            .filter(|&i| fits(i))
            .min_by_key(|&i| (tile_cost(&KERNELS[i], isa.lanes(), tiles, g.out_c), i))
    }

    /// Plans `g`; the caller checked [`Winograd::accepts`].
    pub(crate) fn new(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> Result<Winograd, Error> {
        let lanes = isa.lanes();
        let (h, w) = (g.h, g.w);
        let (dh, dw) = (h.dilation, w.dilation);
        let block_rows = 2 * dh;
        let n_block_rows = h.output.div_ceil(block_rows);
        let col_blocks = w.output.div_ceil(2 * dw);
        let ow_pad = col_blocks * 2 * dw;
        // Every patch of every tile inside the blocked image: rows up to the last block
        // row's last phase + 3 * dh, columns likewise.
        let layout = Blocked::new(g, isa, (n_block_rows + 1) * block_rows, ow_pad + 3 * dw)?;
        let (icb, cols) = (layout.icb, layout.cols);
        let columns: Vec<usize> =
            (0..col_blocks).flat_map(|bx| (0..dw).map(move |px| 2 * dw * bx + px)).filter(|&c| c < w.output).collect();
        let tiles_per_row = dh * columns.len();
        // Bands: 8 tasks per thread when there are few images, V within half of L2.
        let (_, l2) = cache_sizes();
        let f = std::mem::size_of::<f32>();
        let threads = rayon::current_num_threads();
        let v_row = POS * icb * lanes * tiles_per_row * f;
        let cap = (l2 / 2 / v_row).max(1);
        let wanted = (8 * threads).div_ceil(g.batch).clamp(1, n_block_rows);
        let band = n_block_rows.div_ceil(wanted).min(cap);
        let kernel = Winograd::choose(g, isa, forced, band * tiles_per_row)
            .ok_or(Error::Unsupported { what: "winograd kernel".into() })?;
        let entry = direct_entry(kernel, isa).ok_or(Error::Unsupported { what: "winograd entry".into() })?;
        let k = &KERNELS[kernel];
        let ob = k.vectors * lanes;
        let n_ob = g.out_c.div_ceil(ob);
        let tiles_pad = (band * tiles_per_row).div_ceil(k.rows) * k.rows;
        let mut in_origins = Vec::with_capacity(tiles_per_row);
        let mut out_origins = Vec::with_capacity(tiles_per_row);
        for py in 0..dh {
            for &c in &columns {
                in_origins.push((py * cols + c) * lanes);
                out_origins.push((py * ow_pad + c) * ob);
            }
        }
        let v_len = product("winograd V", &[POS, icb, tiles_pad, lanes])?;
        let m_len = product("winograd M", &[POS, tiles_pad, ob])?;
        let rows_len = product("winograd rows", &[band * block_rows, ow_pad, ob])?;
        let image_len = layout.image_len();
        let per_image = g.batch >= 2 * threads;
        Ok(Winograd {
            kernel,
            entry,
            input_tf: input_entry(isa),
            output_tf: output_entry(isa),
            ob,
            n_ob,
            in_origins,
            out_origins,
            block_rows,
            band,
            n_block_rows,
            tiles_pad,
            ow_pad,
            u: Aligned::zeroed(product("winograd weights", &[n_ob, POS, icb, lanes, ob])?)?,
            bias: try_zeroed(n_ob * ob)?,
            zero_bias: try_zeroed(ob)?,
            slots: Slots::new(v_len + m_len + rows_len)?,
            images: if per_image { Some(Slots::new(image_len)?) } else { None },
            blocked: Aligned::zeroed(if per_image { 0 } else { product("blocked input", &[g.batch, image_len])? })?,
            layout,
        })
    }

    /// Index of the GEMM kernel in `KERNELS`.
    pub(crate) fn kernel(&self) -> usize {
        self.kernel
    }

    /// Transforms `weight` `[oc][ic][3][3]` into `U = G g Gt` (in f64), packed
    /// `[o][position][icb][L][OB]`, zero-padded.
    pub(crate) fn set_weights(&mut self, g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>) {
        let (l, ob, icb) = (self.layout.lanes, self.ob, self.layout.icb);
        let per_pos = icb * l * ob;
        for oc in 0..g.out_c {
            for ic in 0..g.in_c {
                let k = &weight[(oc * g.in_c + ic) * 9..][..9];
                // G g (4x3), then (G g) Gt (4x4).
                let gg: [[f64; 3]; 4] = std::array::from_fn(|i| {
                    std::array::from_fn(|j| (0..3).map(|r| G[i][r] * k[r * 3 + j] as f64).sum())
                });
                let (o, j) = (oc / ob, oc % ob);
                let (b, lane) = (ic / l, ic % l);
                for p in 0..POS {
                    let (i, c) = (p / 4, p % 4);
                    let value: f64 = (0..3).map(|r| gg[i][r] * G[c][r]).sum();
                    self.u[(o * POS + p) * per_pos + (b * l + lane) * ob + j] = value as f32;
                }
            }
        }
        for (oc, dst) in self.bias.iter_mut().enumerate() {
            *dst = bias.and_then(|b| b.get(oc)).copied().unwrap_or(0.0);
        }
    }

    /// Runs the convolution (lengths checked by the plan).
    pub(crate) fn run(&mut self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let image_len = self.layout.image_len();
        let in_image = g.in_c * g.h.input * g.w.input;
        let out = OutPtr(output.as_mut_ptr());
        let out_len = output.len();
        let bands = self.n_block_rows.div_ceil(self.band);
        let this = &*self;
        if let Some(images) = &this.images {
            // Large batch: one task per image, reordered into this thread's image buffer.
            (0..g.batch).into_par_iter().for_each(|n| {
                images.with(|image| {
                    this.layout.reorder(g, &input[n * in_image..][..in_image], image);
                    this.slots.with(|buf| {
                        for bi in 0..bands {
                            this.band(g, image, n, bi, out, out_len, relu, buf);
                        }
                    });
                });
            });
            return;
        }
        // Few images: reorder the batch, then one task per (image, band).
        let mut blocked = std::mem::take(&mut self.blocked);
        self.layout.reorder_batch(g, input, &mut blocked);
        let this = &*self;
        let blocked_ref = &blocked;
        (0..g.batch * bands).into_par_iter().for_each(|task| {
            let (n, bi) = (task / bands, task % bands);
            let image = &blocked_ref[n * image_len..][..image_len];
            this.slots.with(|buf| this.band(g, image, n, bi, out, out_len, relu, buf));
        });
        self.blocked = blocked;
    }

    /// One task: band `bi` of image `n` (blocked: `image`), every output channel.
    #[allow(clippy::too_many_arguments)]
    fn band(
        &self,
        g: &ConvGeom,
        image: &[f32],
        n: usize,
        bi: usize,
        out: OutPtr,
        out_len: usize,
        relu: bool,
        buf: &mut [f32],
    ) {
        let (l, ob, icb) = (self.layout.lanes, self.ob, self.layout.icb);
        let (cols, block_len) = (self.layout.cols, self.layout.block_len());
        let (h, w) = (g.h, g.w);
        let tb = self.in_origins.len();
        let br0 = bi * self.band;
        let nb = self.band.min(self.n_block_rows - br0);
        let tiles = nb * tb;
        let tp = self.tiles_pad;
        let (v, rest) = buf.split_at_mut(POS * icb * tp * l);
        let (m, rows) = rest.split_at_mut(POS * tp * ob);
        let rows = &mut rows[..nb * self.block_rows * self.ow_pad * ob];
        for b in 0..icb {
            for k in 0..nb {
                let args = InputArgs {
                    x: image[b * block_len + (br0 + k) * self.block_rows * cols * l..].as_ptr(),
                    origins: self.in_origins.as_ptr(),
                    tiles: tb,
                    step: [h.dilation * cols * l, w.dilation * l],
                    v: v[(b * tp + k * tb) * l..].as_mut_ptr(),
                    pos_stride: icb * tp * l,
                };
                // SAFETY: the ISA is the plan's. Reads: tile patches start at padded row
                // (br0 + k) * 2dh + phase < rows - 3dh and column < cols - 3dw (the
                // layout covers every block row + 1), so all 16 taps x L lanes are inside
                // block b of `image`. Writes: position p, tile k * tb + t < tp of block
                // b: (p * icb + b) * tp + k * tb + t < POS * icb * tp vectors of `v`.
                unsafe { (self.input_tf)(&args) };
            }
        }
        let k = &KERNELS[self.kernel];
        let taps = [0usize];
        let per_pos = icb * l * ob;
        for o in 0..self.n_ob {
            for p in 0..POS {
                for c in (0..tiles).step_by(k.rows) {
                    let args = DirectArgs {
                        x: v[(p * icb * tp + c) * l..].as_ptr(),
                        icb,
                        icb_stride: tp * l,
                        taps: taps.as_ptr(),
                        ntaps: 1,
                        w: self.u[(o * POS + p) * per_pos..][..per_pos].as_ptr(),
                        bias: self.zero_bias.as_ptr(),
                        out: m[(p * tp + c) * ob..][..k.rows * ob].as_mut_ptr(),
                        accumulate: false,
                        relu: false,
                    };
                    // SAFETY: the entry is a direct kernel of the plan's ISA. Reads: block
                    // b < icb, tap 0, pixel r < T: v[((p * icb + b) * tp + c + r) * L..],
                    // c + r < tp (tiles_pad is a multiple of T), inside `v`; weights
                    // icb * L * OB floats of (o, p); OB zero bias floats. Writes the T x OB
                    // tile at (p, c) of `m` (c + T <= tp).
                    unsafe { (self.entry)(&args) };
                }
            }
            for kr in 0..nb {
                let args = OutputArgs {
                    m: m[kr * tb * ob..].as_ptr(),
                    pos_stride: tp * ob,
                    ob,
                    tiles: tb,
                    bias: self.bias[o * ob..][..ob].as_ptr(),
                    out: rows[kr * self.block_rows * self.ow_pad * ob..].as_mut_ptr(),
                    origins: self.out_origins.as_ptr(),
                    step: [h.dilation * self.ow_pad * ob, w.dilation * ob],
                    relu,
                };
                // SAFETY: the ISA is the plan's. Reads positions p < 16 of tiles
                // kr * tb + t < tiles <= tp of `m`, OB bias floats. Writes output
                // (a, b) of tile t at row phase + a * dh < 2dh and column c + b * dw <
                // ow_pad of block row kr, inside `rows` (nb * 2dh rows of ow_pad x OB).
                unsafe { (self.output_tf)(&args) };
            }
            let oh0 = br0 * self.block_rows;
            let valid_rows = (nb * self.block_rows).min(h.output - oh0);
            let oc_valid = ob.min(g.out_c - o * ob);
            // SAFETY: rows oh0..oh0 + valid_rows (< OH) of image n, channels of block o:
            // the region this task owns; `rows` holds valid_rows x ow_pad x OB floats.
            unsafe {
                self.layout.store_rows(
                    g,
                    rows,
                    (self.ow_pad, ob),
                    (n, o * ob, oc_valid),
                    (oh0, valid_rows),
                    out,
                    out_len,
                )
            };
        }
    }
}
