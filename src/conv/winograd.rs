//! Winograd F(2x2, 3x3) convolution: stride 1 or 2 (the transforms of
//! `kernels::winograd`: 4x4 or 5x5 patches, 16 or 25 positions), any dilation, 3x3 kernels
//! and larger ones cut into 3x3 pieces, on the channel-blocked layout ([`Blocked`]), with
//! the products done by the direct kernels.
//!
//! Per block row of output rows (one task) of an image:
//!
//! ```text
//! input transform   blocked patches -> V [P positions][icb][tiles][L]   (L channels a vector)
//! for each output-channel block o:
//!   P GEMMs         M_p [tiles][OB] = V_p x U_p   (a 1x1 direct kernel over the tiles,
//!                                                  U_p = packed [icb][L][OB] of block o)
//!   output transform M -> 2x2 outputs + bias (+ ReLU) -> row scratch [rows][OWpad][OB]
//!   store           row scratch -> NCHW (L x L transposes, shared with the direct path)
//! ```
//!
//! Stride 1: 16 products per 4 outputs instead of 36, 2.25x fewer multiplications than
//! direct convolution for 3x3; stride 2: 25 instead of 36, 1.44x fewer (GFLOP/s figures
//! count the direct convolution's operations). A
//! kernel larger than 3x3 is zero-padded to a multiple of 3 per axis and cut into 3x3
//! pieces, each reading the input shifted by its offset; the GEMM then reduces over
//! (piece, channel block) (5x5: 4 pieces, 16 instead of 25 multiplications per output).
//! The transforms add and subtract at most 16 values, so rounding errors stay within a
//! small multiple of the direct sum's (the tests hold it to the same bound as every other
//! path); the planner takes Winograd only with padding up to "same", so an output's window
//! is never mostly padding next to large neighbours whose contributions cancel in the
//! transforms.
//!
//! A tile with dilation `d` is the 2x2 outputs `d` apart: tiles are enumerated per
//! "block row" of `2d` output rows (`d` row phases × the column tiles, `d` column phases
//! each); its patch starts at the input pixel of its first output (output × stride).
//! Tiles past the output edge are computed into scratch and dropped.

use super::blocked::{Blocked, BlockedInput};
use super::direct::tile_cost;
use super::plan::{Aligned, OutPtr, Slots};
use crate::error::{Error, try_zeroed};
use crate::isa::{Isa, cache_sizes};
use crate::kernels::winograd::{InputArgs, OutputArgs, Transform};
use crate::kernels::{DirectArgs, DirectFn, Family, KERNELS, KernelInfo, direct_entry, pick};
use crate::spec::{ConvGeom, add, product};

/// Floats from one position to the next in V (`[P][blocks][tiles][L]`) and in M
/// (`[P][tiles][OB]`): one vector more than the data, so that the P positions of a
/// tile, written (V) or read (M) together, fall in different L1 sets even when the data
/// is a multiple of 4 KiB (S7: V positions exactly 8 KiB apart).
fn pos_strides(blocks: usize, tiles: usize, lanes: usize, ob: usize) -> Result<(usize, usize), Error> {
    let v = add("winograd V", product("winograd V", &[blocks, tiles, lanes])?, lanes)?;
    let m = add("winograd M", product("winograd M", &[tiles, ob])?, lanes)?;
    Ok((v, m))
}

/// A planned Winograd convolution.
pub(crate) struct Winograd {
    /// The transform (by stride); its `P = A * A` positions.
    transform: Transform,
    kernel: usize,
    entry: DirectFn,
    input_tf: unsafe fn(&InputArgs),
    output_tf: unsafe fn(&OutputArgs),
    /// The blocked input.
    input: BlockedInput,
    /// Output channels per block and the block count.
    ob: usize,
    n_ob: usize,
    /// Tiles of one band, and their input / scratch offsets relative to the band's first
    /// padded input row / first scratch row.
    in_origins: Vec<usize>,
    out_origins: Vec<usize>,
    /// Output rows per block row (`2 * dh`), block rows per task, tiles per block row,
    /// block rows per image.
    block_rows: usize,
    band: usize,
    tiles_per_row: usize,
    n_block_rows: usize,
    /// Tiles of a band rounded up to the kernel's tile width.
    tiles_pad: usize,
    /// Floats between positions in V and in M ([`pos_strides`]).
    v_pos: usize,
    m_pos: usize,
    /// Scratch row length in pixels (`2 * dw * column blocks`).
    ow_pad: usize,
    /// Tap offsets `(row, column)` of the 3x3 pieces a larger kernel is split into
    /// (`(0, 0)` only for 3x3), and the piece's input shift in floats.
    pieces: Vec<([usize; 2], usize)>,
    /// `[o][position][piece][icb][L][OB]`.
    u: Aligned,
    bias: Vec<f32>,
    zero_bias: Vec<f32>,
    /// Per task: V, M and the row scratch.
    slots: Slots,
}

impl Winograd {
    /// Whether Winograd fits `g` with `isa` (and the forced kernel, if any).
    pub(crate) fn accepts(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> bool {
        let Some(transform) = Transform::for_stride(g.h.stride).filter(|_| g.h.stride == g.w.stride) else {
            return false;
        };
        let axes_fit = [g.h, g.w].iter().all(|a| {
            let same = (a.kernel - 1) / 2 * a.dilation;
            a.kernel >= 3 && a.pad_begin <= same && a.pad_end <= same
        });
        // Worth it when the direct multiplications per output are at least 1.5x the
        // Winograd ones (P / 4 per 3x3 piece) at stride 1: 3x3 (2.25x), 3x5, 5x5 (1.56x),
        // 6x6; not 4x4 or 7x7. At stride 2, 1.4x: 3x3 (1.44x), not 5x5 (1.0x).
        let pieces = g.h.kernel.div_ceil(3) * g.w.kernel.div_ceil(3);
        let ratio_x10 = if transform == Transform::F2x3 { 15 } else { 14 };
        let (direct, wino) = (g.h.kernel * g.w.kernel, transform.alpha() * transform.alpha() * pieces);
        let pays = 10 * 4 * direct >= ratio_x10 * wino;
        g.groups == 1 && g.in_c * 2 >= isa.lanes() && axes_fit && pays && Winograd::choose(g, isa, forced, 1).is_some()
    }

    /// The direct kernel for the P GEMMs: any-size taps, stride 1, the least
    /// [`tile_cost`] over `tiles` tiles.
    fn choose(g: &ConvGeom, isa: Isa, forced: Option<usize>, tiles: usize) -> Option<usize> {
        let fits = |i: usize, k: &KernelInfo| {
            k.family == Family::Direct
                && !k.planar
                && k.kernel == [0, 0]
                && k.stride == 1
                && k.has_isa(isa)
                && direct_entry(i, isa).is_some()
        };
        pick(forced, fits, |k| tile_cost(k, isa.lanes(), tiles, g.out_c))
    }

    /// Plans `g`; the caller checked [`Winograd::accepts`].
    pub(crate) fn new(g: &ConvGeom, isa: Isa, forced: Option<usize>) -> Result<Winograd, Error> {
        let lanes = isa.lanes();
        let (h, w) = (g.h, g.w);
        let (dh, dw) = (h.dilation, w.dilation);
        let transform = Transform::for_stride(h.stride).ok_or(Error::Unsupported { what: "winograd stride".into() })?;
        let (alpha, s) = (transform.alpha(), h.stride);
        let pos = transform.positions();
        let block_rows = 2 * dh;
        let n_block_rows = h.output.div_ceil(block_rows);
        let col_blocks = w.output.div_ceil(2 * dw);
        let ow_pad = col_blocks * 2 * dw;
        // Every patch of every tile inside the blocked image. Per axis, with `n` outputs
        // rounded up to whole tile blocks (a multiple of 2d): a tile's first output is at
        // most n - d - 1 (the last block's phases start at n - 2d + p, p < d), its patch
        // starts at that times the stride and spans (A - 1) * d more, plus the last 3x3
        // piece's offset 3d(pieces - 1). (At stride 1 the same rows as before stride 2
        // existed, and d columns fewer: that bound was d more than the reads.)
        // Pieces: the kernel zero-padded to a multiple of 3 per axis, cut into 3x3 pieces.
        let (ph, pw) = (h.kernel.div_ceil(3), w.kernel.div_ceil(3));
        let reach = |outputs: usize, d: usize, pieces: usize| {
            let patch = add(
                "winograd patches",
                product("winograd patches", &[alpha - 1, d])?,
                product("winograd patches", &[3, d, pieces - 1])?,
            )?;
            let first = product("winograd patches", &[outputs - d - 1, s])?;
            add("winograd patches", add("winograd patches", first, patch)?, 1)
        };
        let rows = reach(product("winograd rows", &[n_block_rows, block_rows])?, dh, ph)?;
        let cols = reach(ow_pad, dw, pw)?;
        let layout = Blocked::new(g, isa, rows, cols, false)?;
        let (icb, cols) = (layout.icb, layout.cols);
        let pieces: Vec<([usize; 2], usize)> = (0..ph)
            .flat_map(|a| (0..pw).map(move |b| [3 * a, 3 * b]))
            .map(|[i, j]| ([i, j], (i * dh * cols + j * dw) * lanes))
            .collect();
        // The GEMM reduces over every (piece, channel block).
        let blocks = pieces.len() * icb;
        let columns: Vec<usize> =
            (0..col_blocks).flat_map(|bx| (0..dw).map(move |px| 2 * dw * bx + px)).filter(|&c| c < w.output).collect();
        let tiles_per_row = dh * columns.len();
        // A band of block rows per task, its V (P positions x blocks x tiles) and M close
        // to L1 between the transforms and the products: bands with V up to half of L2
        // measured 10-25% slower on S2, S3 and S7 than one block row (2.45, 1.05, 5.77 ms
        // vs 2.12, 0.91, 4.51 ms, one thread). More than one block row only when that
        // fills the kernel's tiles better (S2: 7 tiles a row, 2 rows fill 14) and V stays
        // within L2 / 32.
        let (_, l2) = cache_sizes();
        let v_bytes =
            |band: usize| product("winograd V", &[pos, blocks, lanes, band, tiles_per_row, 4]).unwrap_or(usize::MAX);
        let mut best: Option<(usize, usize, u128)> = None; // (band, kernel, cost)
        for band in 1..=n_block_rows.min(8) {
            if band > 1 && v_bytes(band) > l2 / 32 {
                break;
            }
            let tiles = band * tiles_per_row;
            let Some(kernel) = Winograd::choose(g, isa, forced, tiles) else { break };
            let cost = tile_cost(&KERNELS[kernel], lanes, tiles, g.out_c);
            // Cost per tile, compared exactly: cost / tiles < best_cost / best_tiles.
            if best.is_none_or(|(b, _, c)| {
                cost.saturating_mul((b * tiles_per_row) as u128) < c.saturating_mul(tiles as u128)
            }) {
                best = Some((band, kernel, cost));
            }
        }
        let (band, kernel, _) = best.ok_or(Error::Unsupported { what: "winograd kernel".into() })?;
        let entry = direct_entry(kernel, isa).ok_or(Error::Unsupported { what: "winograd entry".into() })?;
        let k = &KERNELS[kernel];
        let ob = k.vectors * lanes;
        let n_ob = g.out_c.div_ceil(ob);
        let tiles_pad = (band * tiles_per_row).div_ceil(k.rows) * k.rows;
        // Tile origins of a whole band, block row by block row.
        let mut in_origins = Vec::with_capacity(band * tiles_per_row);
        let mut out_origins = Vec::with_capacity(band * tiles_per_row);
        for r in 0..band {
            for py in 0..dh {
                for &c in &columns {
                    in_origins.push(((r * block_rows + py) * s * cols + c * s) * lanes);
                    out_origins.push(((r * block_rows + py) * ow_pad + c) * ob);
                }
            }
        }
        let (v_pos, m_pos) = pos_strides(blocks, tiles_pad, lanes, ob)?;
        let v_len = product("winograd V", &[pos, v_pos])?;
        let m_len = product("winograd M", &[pos, m_pos])?;
        let rows_len = product("winograd rows", &[band, block_rows, ow_pad, ob])?;
        Ok(Winograd {
            transform,
            kernel,
            entry,
            input_tf: transform.input(isa),
            output_tf: transform.output(isa),
            ob,
            n_ob,
            in_origins,
            out_origins,
            block_rows,
            band,
            tiles_per_row,
            n_block_rows,
            tiles_pad,
            v_pos,
            m_pos,
            ow_pad,
            u: Aligned::zeroed(product("winograd weights", &[n_ob, pos, blocks, lanes, ob])?)?,
            pieces,
            bias: try_zeroed(n_ob * ob)?,
            zero_bias: try_zeroed(ob)?,
            slots: Slots::new(add("winograd scratch", add("winograd scratch", v_len, m_len)?, rows_len)?)?,
            input: BlockedInput::new(g, layout)?,
        })
    }

    /// Index of the GEMM kernel in `KERNELS`.
    pub(crate) fn kernel(&self) -> usize {
        self.kernel
    }

    /// Transforms `weight` `[oc][ic][kh][kw]`, piece by piece, into `U = G g Gt` (in
    /// f64), packed `[o][position][piece][icb][L][OB]`, zero-padded.
    pub(crate) fn set_weights(&mut self, g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>) {
        let (l, ob, icb) = (self.input.layout.lanes, self.ob, self.input.layout.icb);
        let (kh, kw) = (g.h.kernel, g.w.kernel);
        let (alpha, pos) = (self.transform.alpha(), self.transform.positions());
        let gm: Vec<[f64; 3]> = (0..alpha).map(|i| self.transform.g(i)).collect();
        let per_pos = self.pieces.len() * icb * l * ob;
        for oc in 0..g.out_c {
            for ic in 0..g.in_c {
                let k = &weight[(oc * g.in_c + ic) * kh * kw..][..kh * kw];
                for (piece, &([i0, j0], _)) in self.pieces.iter().enumerate() {
                    let tap = |r: usize, c: usize| {
                        let (i, j) = (i0 + r, j0 + c);
                        if i < kh && j < kw { k[i * kw + j] as f64 } else { 0.0 }
                    };
                    // G g (A x 3), then (G g) Gt (A x A).
                    let gg: Vec<[f64; 3]> =
                        gm.iter().map(|gi| std::array::from_fn(|j| (0..3).map(|r| gi[r] * tap(r, j)).sum())).collect();
                    let (o, j) = (oc / ob, oc % ob);
                    let row = (piece * icb + ic / l) * l + ic % l;
                    for p in 0..pos {
                        let (i, c) = (p / alpha, p % alpha);
                        let value: f64 = (0..3).map(|r| gg[i][r] * gm[c][r]).sum();
                        self.u[(o * pos + p) * per_pos + row * ob + j] = value as f32;
                    }
                }
            }
        }
        for (oc, dst) in self.bias.iter_mut().enumerate() {
            *dst = bias.and_then(|b| b.get(oc)).copied().unwrap_or(0.0);
        }
    }

    /// Runs the convolution (lengths checked by the plan).
    pub(crate) fn run(&self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let out = OutPtr(output.as_mut_ptr());
        let out_len = output.len();
        self.input.run(g, input, self.n_block_rows.div_ceil(self.band), |image, n, br| {
            self.slots.with(|buf| self.block_row(g, image, n, br, out, out_len, relu, buf))
        });
    }

    /// One task: band `br` (of `band` block rows) of image `n` (blocked: `image`), every
    /// output channel.
    #[allow(clippy::too_many_arguments)]
    fn block_row(
        &self,
        g: &ConvGeom,
        image: &[f32],
        n: usize,
        br: usize,
        out: OutPtr,
        out_len: usize,
        relu: bool,
        buf: &mut [f32],
    ) {
        let (l, ob, icb) = (self.input.layout.lanes, self.ob, self.input.layout.icb);
        let (cols, block_len) = (self.input.layout.cols, self.input.layout.block_len());
        let (h, w) = (g.h, g.w);
        let br0 = br * self.band;
        let nb = self.band.min(self.n_block_rows - br0);
        let tiles = nb * self.tiles_per_row;
        let tp = self.tiles_pad;
        let blocks = self.pieces.len() * icb;
        let (v_pos, m_pos) = (self.v_pos, self.m_pos);
        let pos = self.transform.positions();
        let (v, rest) = buf.split_at_mut(pos * v_pos);
        let (m, rows) = rest.split_at_mut(pos * m_pos);
        let rows = &mut rows[..nb * self.block_rows * self.ow_pad * ob];
        for (piece, &(_, shift)) in self.pieces.iter().enumerate() {
            for b in 0..icb {
                let block = piece * icb + b;
                let args = InputArgs {
                    x: image[b * block_len + br0 * self.block_rows * g.h.stride * cols * l + shift..].as_ptr(),
                    origins: self.in_origins.as_ptr(),
                    tiles,
                    step: [h.dilation * cols * l, w.dilation * l],
                    v: v[block * tp * l..].as_mut_ptr(),
                    pos_stride: v_pos,
                };
                // SAFETY: the ISA is the plan's. Reads: tile patches start at padded row
                // ((br0 + r) * 2dh + phase) * s + piece row * dh (r < nb), column c * s +
                // piece column * dw, and the layout covers every tile's A x A patch (taps
                // d apart) of every piece, so all taps x L lanes are inside block b of
                // `image`. Writes: position p < P, tile t < tiles <= tp of `block`: p *
                // v_pos + (block * tp + t) * L < P * v_pos floats of `v` (v_pos >=
                // blocks * tp * L).
                unsafe { (self.input_tf)(&args) };
            }
        }
        let k = &KERNELS[self.kernel];
        let taps = [0usize];
        let per_pos = blocks * l * ob;
        for o in 0..self.n_ob {
            for p in 0..pos {
                for c in (0..tiles).step_by(k.rows) {
                    let args = DirectArgs {
                        x: v[p * v_pos + c * l..].as_ptr(),
                        icb: blocks,
                        icb_stride: tp * l,
                        taps: taps.as_ptr(),
                        ntaps: 1,
                        w: self.u[(o * pos + p) * per_pos..][..per_pos].as_ptr(),
                        bias: self.zero_bias.as_ptr(),
                        out: m[p * m_pos + c * ob..][..k.rows * ob].as_mut_ptr(),
                        accumulate: false,
                        relu: false,
                    };
                    // SAFETY: the entry is a direct kernel of the plan's ISA. Reads: block
                    // b < blocks, tap 0, pixel r < T: v[p * v_pos + (b * tp + c + r) *
                    // L..], c + r < tp (tiles_pad is a multiple of T), inside `v`; weights
                    // blocks * L * OB floats of (o, p); OB zero bias floats. Writes the T x OB
                    // tile at (p, c) of `m` (c + T <= tp).
                    unsafe { (self.entry)(&args) };
                }
            }
            let args = OutputArgs {
                m: m.as_ptr(),
                pos_stride: m_pos,
                ob,
                tiles,
                bias: self.bias[o * ob..][..ob].as_ptr(),
                out: rows.as_mut_ptr(),
                origins: self.out_origins.as_ptr(),
                step: [h.dilation * self.ow_pad * ob, w.dilation * ob],
                relu,
            };
            // SAFETY: the ISA is the plan's. Reads positions p < P of tiles t < tiles <=
            // tp of `m`, OB bias floats. Writes output (a, b) of tile t at row r * 2dh +
            // phase + a * dh < nb * 2dh and column c + b * dw < ow_pad, inside `rows` (nb *
            // 2dh rows of ow_pad x OB).
            unsafe { (self.output_tf)(&args) };
            let oh0 = br0 * self.block_rows;
            let valid_rows = (nb * self.block_rows).min(h.output - oh0);
            let oc_valid = ob.min(g.out_c - o * ob);
            // SAFETY: rows oh0..oh0 + valid_rows (< OH) of image n, channels of block o:
            // the region this task owns; `rows` holds valid_rows x ow_pad x OB floats.
            unsafe {
                self.input.layout.store_rows(
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
