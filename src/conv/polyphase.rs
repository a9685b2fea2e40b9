//! Polyphase Winograd: a stride-2 convolution with few input channels and a kernel of up
//! to 8x8 (S8's 7x7 stem) as Winograd F(2x2, 4x4) on the four phase planes of its input,
//! vectorised over tiles (`kernels::polyphase` has the kernels).
//!
//! A stride-2 convolution is the sum over the four phases `(a, b)` of stride-1
//! convolutions of the phase planes `P_ab[y][x] = Xp[2y + a][2x + b]` (`Xp` the padded
//! input) with the phase kernels `w_ab[i][j] = w[2i + a][2j + b]` (at most 4x4, zero past
//! the kernel):
//!
//! ```text
//! out[oc][oh][ow] = bias + sum_(ic, a, b) sum_(i, j < 4) w_ab[oc][ic][i][j] P_ab[ic][oh + i][ow + j]
//! ```
//!
//! Each is a 4x4 stride-1 convolution, which F(2x2, 4x4) computes with 25 products per 2x2
//! outputs; the phases and channels are summed in the transformed domain (`K = 4 *
//! in_c` terms). Per image and band of tile rows (one task; tiles numbered row-major
//! through the band):
//!
//! ```text
//! Q                 the band's input rows, each split into its 4 column phases
//! per chunk of W = NV * L tiles:
//!   input transform   V [25 positions][K][W]      (AVX-512: W = 32, 37.5 KiB for S8)
//!   per MR output channels, the products kernel:
//!     per position: U_p [MR][K] x V_p [K][W] in MR x NV registers, folded at once
//!                   into At along the row of positions (2 sums of MR x NV vectors)
//!     At along the columns -> 2x2 outputs (+ ReLU), interleaved into NCHW rows
//! ```
//!
//! The products never leave the registers (`kernels::polyphase::products` says why).
//!
//! Multiplications: 25 per output and input channel against `kh * kw` for direct
//! convolution (49 for 7x7: 1.96x fewer; GFLOP/s figures count the direct convolution's
//! operations). Output rows are written in place, no transposes. F(2, 4)'s `G` has
//! fractions (1/2, 1/6) and its `Bt` coefficients up to 3, so rounding grows somewhat more
//! than with F(2x2, 3x3); the tests hold it to the same bound as every other path, and
//! the planner takes it only with padding up to "same".
//!
//! The bias starts the sums of the position `At` maps to every output once. Tiles past
//! the output edge (odd output sizes) and the lanes of a band's last partial chunk are
//! computed and dropped. Each output is computed by the same operations in the same
//! order whatever the task split, so results are identical for any thread count. Extra
//! memory: per thread, one band's split rows and one chunk's V.

use super::plan::{Aligned, OutPtr, Slots};
use crate::error::{Error, try_zeroed};
use crate::isa::Isa;
use crate::kernels::polyphase::{self, ALPHA, POSITIONS, PhaseInputArgs, PhaseProductArgs, SplitArgs};
use crate::spec::{ConvGeom, add, product};

/// Tiles a task spans at least (whole tile rows).
const TASK_TILES: usize = 192;

/// A planned polyphase Winograd convolution.
pub(crate) struct Polyphase {
    split: unsafe fn(&SplitArgs),
    input_tf: unsafe fn(&PhaseInputArgs),
    products: unsafe fn(&PhaseProductArgs),
    /// The products kernel's output channels and vectors of tiles (a chunk is `NV * L`
    /// tiles); `L`.
    mr: usize,
    nv: usize,
    lanes: usize,
    /// Tile columns and rows of an image, tile rows per task.
    ntx: usize,
    nty: usize,
    band: usize,
    /// `K = 4 * in_c`: the products sum over (channel, row phase, column phase).
    k: usize,
    m_tiles: usize,
    /// Rows of a band's `Q` per channel (`4 * band + 6`) and floats per column phase of
    /// a row.
    hq: usize,
    tq: usize,
    /// `[m tile][position][K][MR]`, zero past the output channels.
    u: Aligned,
    /// `[m tile][MR]`.
    bias: Vec<f32>,
    /// Per thread: a band's split rows (`Q`, `[ic][hq][4][tq]`), then one chunk's V
    /// (`[25][K][NV * L]`, rewritten for each chunk).
    slots: Slots,
}

impl Polyphase {
    /// `groups == 1`, stride 2x2, no dilation, kernel sides up to 8 with at least 1.5x
    /// fewer multiplications than direct convolution (`kh * kw >= 38`: 7x7, 6x7, 8x8, ...),
    /// padding up to "same", and fewer than `lanes / 2` input channels (from there the
    /// channel-blocked paths fill their vectors).
    pub(crate) fn accepts(g: &ConvGeom, isa: Isa) -> bool {
        let axes_fit = [g.h, g.w].iter().all(|a| {
            a.stride == 2 && a.dilation == 1 && a.kernel <= 8 && a.pad_begin.max(a.pad_end) <= (a.kernel - 1) / 2
        });
        let pays = 10 * g.h.kernel * g.w.kernel >= 15 * POSITIONS;
        g.groups == 1 && g.in_c * 2 < isa.lanes() && axes_fit && pays
    }

    /// Plans `g`; the caller checked [`Polyphase::accepts`].
    pub(crate) fn new(g: &ConvGeom, isa: Isa) -> Result<Polyphase, Error> {
        let lanes = isa.lanes();
        let (mr, nv) = polyphase::product_tile(isa);
        let (ntx, nty) = (g.w.output.div_ceil(2), g.h.output.div_ceil(2));
        let band = TASK_TILES.div_ceil(ntx).min(nty);
        let k = product("polyphase K", &[4, g.in_c])?;
        let m_tiles = g.out_c.div_ceil(mr);
        // Q rows: band row y reads rows 4y + 2i + a (i < 5, a < 2) <= 4(band - 1) + 9.
        let hq = add("polyphase rows", product("polyphase rows", &[4, band])?, 6)?;
        // A column phase: a piece of a tile row loads up to float x + 2 + L - 1 <= ntx + L
        // (x < ntx, (2j + b) / 4 <= 2); rounded up to whole vectors, so that the phases
        // start at vector boundaries (S8 at one thread, paired blocks, against 74 floats:
        // 1.08x the time with 73, 0.99x with 80).
        let tq = add("polyphase columns", ntx, lanes + 1)?.div_ceil(lanes) * lanes;
        let q_len = product("polyphase input", &[g.in_c, hq, 4, tq])?;
        let v_len = product("polyphase V", &[POSITIONS, k, nv, lanes])?;
        Ok(Polyphase {
            split: polyphase::split_entry(isa),
            input_tf: polyphase::input_entry(isa),
            products: polyphase::products_entry(isa),
            mr,
            nv,
            lanes,
            ntx,
            nty,
            band,
            k,
            m_tiles,
            hq,
            tq,
            u: Aligned::zeroed(product("polyphase weights", &[m_tiles, POSITIONS, k, mr])?)?,
            bias: try_zeroed(product("polyphase bias", &[m_tiles, mr])?)?,
            slots: Slots::new(add("polyphase scratch", q_len, v_len)?)?,
        })
    }
    /// Transforms `weight` `[oc][ic][kh][kw]`, phase by phase, into `U = G w_ab Gt` (in
    /// f64), packed `[m tile][position][K][MR]` with `K` index `4 * ic + 2 * a + b`.
    pub(crate) fn set_weights(&mut self, g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>) {
        let (kh, kw, mr, k) = (g.h.kernel, g.w.kernel, self.mr, self.k);
        let gm: Vec<[f64; 4]> = (0..ALPHA).map(polyphase::g).collect();
        for oc in 0..g.out_c {
            for ic in 0..g.in_c {
                let w = &weight[(oc * g.in_c + ic) * kh * kw..][..kh * kw];
                for (a, b) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let tap = |i: usize, j: usize| {
                        let (y, x) = (2 * i + a, 2 * j + b);
                        if y < kh && x < kw { w[y * kw + x] as f64 } else { 0.0 }
                    };
                    // G w (5 x 4), then (G w) Gt (5 x 5).
                    let gw: Vec<[f64; 4]> =
                        gm.iter().map(|gi| std::array::from_fn(|j| (0..4).map(|r| gi[r] * tap(r, j)).sum())).collect();
                    let (t, r) = (oc / mr, oc % mr);
                    let row = 4 * ic + 2 * a + b;
                    for p in 0..POSITIONS {
                        let (i, c) = (p / ALPHA, p % ALPHA);
                        let value: f64 = (0..4).map(|x| gw[i][x] * gm[c][x]).sum();
                        self.u[((t * POSITIONS + p) * k + row) * mr + r] = value as f32;
                    }
                }
            }
        }
        for (oc, dst) in self.bias.iter_mut().enumerate() {
            *dst = bias.and_then(|b| b.get(oc)).copied().unwrap_or(0.0);
        }
    }

    /// Runs the convolution (lengths checked by the plan): one task per band of tile rows
    /// of each image.
    pub(crate) fn run(&mut self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let out = OutPtr(output.as_mut_ptr());
        let bands = self.nty.div_ceil(self.band);
        let this = &*self;
        super::tasks::for_each(g.batch * bands, |i| {
            let n = i / bands;
            let image = &input[n * g.in_c * g.h.input * g.w.input..][..g.in_c * g.h.input * g.w.input];
            this.slots.with(|buf| this.band_of(g, image, n, i % bands, out, relu, buf))
        });
    }

    /// One task: band `bi` of tile rows of image `n`, every output channel.
    #[allow(clippy::too_many_arguments)]
    fn band_of(&self, g: &ConvGeom, image: &[f32], n: usize, bi: usize, out: OutPtr, relu: bool, buf: &mut [f32]) {
        let (mr, k, l) = (self.mr, self.k, self.lanes);
        let cw = self.nv * l;
        let (h, w) = (g.h, g.w);
        let (oh, ow) = (h.output, w.output);
        let ty0 = bi * self.band;
        let rows_of_tiles = self.band.min(self.nty - ty0);
        let tiles = rows_of_tiles * self.ntx;
        let (tq, q_row) = (self.tq, 4 * self.tq);
        let (q, v) = buf.split_at_mut(g.in_c * self.hq * q_row);
        // The band's Q: padded rows 4 ty0 + R of each channel, split into their column
        // phases (input row 4 ty0 + R - pad_top, zero outside the image); the rows its
        // tile rows read, R < 4 rows_of_tiles + 6 (<= hq).
        let rows_read = 4 * rows_of_tiles + 6;
        for (i, row) in q.chunks_exact_mut(q_row).enumerate().filter(|(i, _)| i % self.hq < rows_read) {
            let (ic, r) = (i / self.hq, 4 * ty0 + i % self.hq);
            let src = r.checked_sub(h.pad_begin).filter(|&y| y < h.input).map(|y| (ic * h.input + y) * w.input);
            let args = SplitArgs {
                src: src.map_or(image.as_ptr(), |start| image[start..][..w.input].as_ptr()),
                len: if src.is_some() { w.input } else { 0 },
                pad: w.pad_begin,
                q: row.as_mut_ptr(),
                phase: tq,
            };
            // SAFETY: the ISA is the plan's; `src` is an input row of `len` floats (or
            // nothing is read), `row` holds 4 phases of `tq` floats.
            unsafe { (self.split)(&args) };
        }
        for c0 in (0..tiles).step_by(cw) {
            let valid = cw.min(tiles - c0);
            for ic in 0..g.in_c {
                for vi in 0..self.nv {
                    if vi * l >= valid {
                        break;
                    }
                    let args = PhaseInputArgs {
                        q: q[ic * self.hq * q_row..][..self.hq * q_row].as_ptr(),
                        row: q_row,
                        phase: tq,
                        first: c0 + vi * l,
                        tiles: l.min(valid - vi * l),
                        row_tiles: self.ntx,
                        v: v[4 * ic * cw + vi * l..].as_mut_ptr(),
                        width: cw,
                        pos_stride: k * cw,
                    };
                    // SAFETY: the ISA is the plan's. Reads: tile c0 + vi L + t (t < L, below
                    // `tiles`) is in band row y < rows_of_tiles, its Q rows 4y + 2i + a <=
                    // 4 rows_of_tiles + 5 (split above, < hq) of channel ic; a piece's loads
                    // run from up to L - 1 floats before its first tile (inside the
                    // channel's Q: band row >= 1 then) to float x + 2 + L - 1 <= ntx + L <
                    // tq of a column phase (x < ntx): inside `q`. Writes: position p < 25,
                    // row 4 ic + 2a + b < K, columns vi L.. vi L + L <= W of the chunk:
                    // below 25 * K * W floats of `v`.
                    unsafe { (self.input_tf)(&args) };
                }
            }
            for t in 0..self.m_tiles {
                let args = PhaseProductArgs {
                    v: v.as_ptr(),
                    k,
                    u: self.u[t * POSITIONS * k * mr..][..POSITIONS * k * mr].as_ptr(),
                    bias: self.bias[t * mr..][..mr].as_ptr(),
                    ocs: mr.min(g.out_c - t * mr),
                    first: c0,
                    tiles: valid,
                    row_tiles: self.ntx,
                    // SAFETY (pointer arithmetic): channel t * MR < out_c, row 2 ty0 < OH
                    // of image n: inside the output.
                    out: unsafe { out.add(((n * g.out_c + t * mr) * oh + 2 * ty0) * ow) },
                    plane: oh * ow,
                    row: ow,
                    rows: oh - 2 * ty0,
                    cols: ow,
                    relu,
                };
                // SAFETY: the ISA is the plan's and the kernel's tile is `(MR, NV)`.
                // Reads: the chunk's V (25 x K x W floats; columns past `valid` are stale
                // and their outputs dropped); U and bias of m tile t. Writes: tile c0 + i (i <
                // valid) is in band row (c0 + i) / ntx < rows_of_tiles, so output rows 2
                // (ty0 + row) + y below OH and columns below OW, of channels t * MR + r (r
                // < ocs) of image n, which only this task (image n, band bi) writes.
                unsafe { (self.products)(&args) };
            }
        }
    }
}
