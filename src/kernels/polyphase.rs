//! The kernels of polyphase Winograd (`conv::polyphase`): F(2x2, 4x4) on the four phase
//! planes of a stride-2 convolution, vectorised over tiles (the channel-blocked kernels
//! of `kernels::winograd` are vectorised over channels, which few input channels would
//! leave mostly empty).
//!
//! Phase plane `(a, b)` of the zero-padded input `Xp` is `P_ab[y][x] = Xp[2y + a][2x + b]`;
//! tile `(ty, tx)` (outputs `2ty..2ty + 2` x `2tx..2tx + 2`) reads the 5x5 patch
//! `P_ab[2ty + i][2tx + j] = Xp[4ty + 2i + a][4tx + 2j + b]` of each phase. A band's input
//! rows are held as `Q[R][e][t] = Xp[4 ty0 + R][4t + e]` (each padded row split into its 4
//! column phases, `ty0` the band's first tile row), so that for fixed `(i, j, a, b)` the
//! values of consecutive tiles `tx` of band row `y` are consecutive floats:
//! `Q[4y + 2i + a][(2j + b) % 4][tx + (2j + b) / 4]`.
//!
//! Tiles are numbered row-major through a band of tile rows and grouped in chunks of
//! `W = NV * L` (the products kernel's width); the transformed input of a chunk is
//! `V[position][K][W]`, contiguous, `K = 4 * in_c` rows `(ic, a, b)`.

use std::mem::MaybeUninit;

use super::winograd::{F24, Tile};
#[cfg(target_arch = "x86_64")]
use super::{Avx2, Avx512};
use super::{Isa, Portable, Simd, store_row};

/// Points of a patch per axis.
pub(crate) const ALPHA: usize = 5;
/// Transformed positions of a tile.
pub(crate) const POSITIONS: usize = ALPHA * ALPHA;

/// The position whose products reach every output of a tile with coefficient 1 (`At`'s
/// column 1 is `[1, 1]`, so `At[r][1] * At[c][1] = 1`): the bias starts its sums.
const BIAS_POSITION: usize = ALPHA + 1;

/// Row `i < 5` of F(2, 4)'s `G` (the weight transform's left factor).
pub(crate) fn g(i: usize) -> [f64; 4] {
    <F24 as Tile<ALPHA, 4>>::G[i]
}

/// Arguments of the input transform: one input channel, one vector of `L` tiles.
///
/// Contract (counts in floats): the vector's tiles are tiles `first..first + L` of a band
/// of tile rows, `row_tiles` a row; only the first `tiles` are computed (the other lanes
/// are garbage). Tile `first + t` is column `x = (first + t) % row_tiles` of band row `y
/// = (first + t) / row_tiles`; for it the transform reads, for `i, j < 5` and `a, b < 2`,
/// `q[(4y + 2i + a) * row + ((2j + b) % 4) * phase + (2j + b) / 4 + x]` and, as the rest
/// of the vector loads that start there, the following `L - 1` floats and the `L - 1`
/// before them (every vector load of a piece of one tile row stays inside `q`). It writes
/// `v[p * pos_stride + (2a + b) * width + l]` for positions `p < 25` and lanes `l < L`
/// (the transformed patch of phase `(a, b)`).
pub(crate) struct PhaseInputArgs {
    pub q: *const f32,
    pub row: usize,
    pub phase: usize,
    pub first: usize,
    pub tiles: usize,
    pub row_tiles: usize,
    pub v: *mut f32,
    pub width: usize,
    pub pos_stride: usize,
}

/// Arguments of the row split: one padded input row into its 4 column phases.
///
/// Contract (counts in floats): reads `src[..len]` (nothing if `len` is 0, a padding
/// row); writes `q[e * phase + t]` for `e < 4`, `t < phase`: `src[4t + e - pad]` where
/// that is inside `src`, zero elsewhere.
pub(crate) struct SplitArgs {
    pub src: *const f32,
    pub len: usize,
    pub pad: usize,
    pub q: *mut f32,
    pub phase: usize,
}

/// The row split: whole vectors of `4 L` input floats through [`Simd::deinterleave4`],
/// the padding and the ends one float at a time.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`SplitArgs`].
#[inline(always)]
unsafe fn split<S: Simd>(a: &SplitArgs) {
    let l = S::LANES;
    // Vector blocks t0..t0 + L: floats 4 t0 - pad .. 4 t0 - pad + 4L all inside (t0 + L
    // <= (len + pad) / 4), and t0 + L <= phase.
    let first = a.pad.div_ceil(4);
    let blocks = ((a.len + a.pad) / 4).min(a.phase).saturating_sub(first) / l;
    let vector = first..first + blocks * l;
    // Past `data` every phase reads past the row: zeros.
    let data = (a.len + a.pad).div_ceil(4).min(a.phase);
    // SAFETY: vector loads read src[4t - pad..][..4L] for the blocks' t, inside `src` by
    // the choice of `blocks`; the scalar reads are checked against `len`; every write is
    // q[e * phase + t] with e < 4, t < phase.
    unsafe {
        for e in 0..4 {
            std::ptr::write_bytes(a.q.add(e * a.phase + data), 0, a.phase - data);
        }
        for t in (0..vector.start.min(data)).chain(vector.end.min(data)..data) {
            for e in 0..4 {
                let x = (4 * t + e).checked_sub(a.pad).filter(|&i| i < a.len).map_or(0.0, |i| *a.src.add(i));
                *a.q.add(e * a.phase + t) = x;
            }
        }
        for t0 in vector.step_by(l) {
            let src = a.src.add(4 * t0 - a.pad);
            let x = [S::load(src), S::load(src.add(l)), S::load(src.add(2 * l)), S::load(src.add(3 * l))];
            for (e, phase) in S::deinterleave4(x).into_iter().enumerate() {
                S::store(a.q.add(e * a.phase + t0), phase);
            }
        }
    }
}

/// Arguments of the products kernel: one chunk of `W = NV * L` tiles, `MR` output
/// channels.
///
/// Contract (counts in floats): reads the chunk's `v[(p * k + kk) * W + x]` for `p < 25`,
/// `kk < k` (a multiple of 4), `x < W`; `u[(p * k + kk) * MR + r]` for `r < MR` (packed
/// `U` of the channels, zero past `ocs`); `bias[r]` for `r < MR`. Tile `t < tiles` (at
/// most `W`) of the chunk is tile `first + t` of a band of tile rows (`row_tiles` a row):
/// band row `(first + t) / row_tiles`, column `(first + t) % row_tiles`. Its output `(y,
/// x)` (`y, x < 2`) of channel `r < ocs`, plus bias, then `max(., 0)` if `relu`, goes to
/// `out[r * plane + (2 * band_row + y) * row + 2 * column + x]` where `2 * band_row + y
/// < rows` and `2 * column + x < cols`. Also `cols <= 2 * row_tiles`, and every tile's
/// band row is below `rows / 2` rounded up.
pub(crate) struct PhaseProductArgs {
    pub v: *const f32,
    pub k: usize,
    pub u: *const f32,
    pub bias: *const f32,
    pub ocs: usize,
    pub first: usize,
    pub tiles: usize,
    pub row_tiles: usize,
    pub out: *mut f32,
    pub plane: usize,
    pub row: usize,
    pub rows: usize,
    pub cols: usize,
    pub relu: bool,
}

/// The transformed 5x5 patch of phase `(ra, cb)` for the tiles whose vector loads
/// start at `base` (Q row `2i + ra` of the tiles' band row, column phase `cb`, their
/// first tile): the 1D transform along each patch row as it is loaded (two base pointers
/// a row), then along each column.
///
/// # Safety
/// The CPU supports `S`; the loads named in [`PhaseInputArgs`] are readable.
#[inline(always)]
unsafe fn patch<S: Simd>(base: *const f32, row: usize, phase: usize, ra: usize) -> [[S::V; ALPHA]; ALPHA] {
    const A: usize = ALPHA;
    // SAFETY: point j of patch row i is column phase (2j + cb) % 4 = cb or 2 + cb, float
    // (2j + cb) / 4 = j / 2 further, of Q row 2i + ra: loads the contract names.
    unsafe {
        let mut rows = [[S::zero(); A]; A];
        for (i, r) in rows.iter_mut().enumerate() {
            let even = base.wrapping_add((2 * i + ra) * row);
            let odd = even.wrapping_add(2 * phase);
            let mut x = [S::zero(); A];
            for (j, xj) in x.iter_mut().enumerate() {
                *xj = S::load(if j % 2 == 0 { even } else { odd }.wrapping_add(j / 2));
            }
            *r = F24::bt::<S>(x);
        }
        let mut out = [[S::zero(); A]; A];
        for j in 0..A {
            let mut col = [S::zero(); A];
            for (i, ci) in col.iter_mut().enumerate() {
                *ci = rows[i][j];
            }
            for (i, y) in F24::bt::<S>(col).into_iter().enumerate() {
                out[i][j] = y;
            }
        }
        out
    }
}

/// The input transform of one channel's vector of tiles, the four phases. A vector that
/// runs past the end of a tile row is transformed once per tile row it touches, the
/// lanes of each piece blended in. (Loops, not closures: a closure's body does not
/// inherit the entry point's target features, so the intrinsics called in it would not
/// be inlined.)
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`PhaseInputArgs`].
#[inline(always)]
unsafe fn input<S: Simd>(a: &PhaseInputArgs) {
    const A: usize = ALPHA;
    // SAFETY: the loads are the contract's: a piece from lane s0 (tile x of band row y)
    // starts its vector loads s0 floats before that tile's, at x - s0 >= -s0, and s0 > 0
    // only for a band row y >= 1, whose Q rows 4y + ... have at least 4 rows of `q`
    // before them. The stores are the contract's.
    unsafe {
        for (ra, cb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let mut out = [[S::zero(); A]; A];
            let mut s0 = 0;
            while s0 < a.tiles {
                let pos = a.first + s0;
                let (y, x) = (pos / a.row_tiles, pos % a.row_tiles);
                let base = a.q.wrapping_add(4 * y * a.row + cb * a.phase + x).wrapping_sub(s0);
                let piece = patch::<S>(base, a.row, a.phase, ra);
                for (oi, pi) in out.iter_mut().zip(&piece) {
                    for (o, &p) in oi.iter_mut().zip(pi) {
                        *o = if s0 == 0 { p } else { S::blend_from(*o, p, s0) };
                    }
                }
                s0 = a.tiles.min(s0 + a.row_tiles - x);
            }
            let v = a.v.add((2 * ra + cb) * a.width);
            for (i, oi) in out.iter().enumerate() {
                for (j, &o) in oi.iter().enumerate() {
                    S::store(v.add((i * A + j) * a.pos_stride), o);
                }
            }
        }
    }
}

/// Adds the products of position column `j` into the two sums of `At` along a row:
/// `sums[c] += At[c][j] * acc` (`At = [1, 1, 1, 1, 0; 0, 1, -1, 2, 1]`), spelled out per
/// column so that no coefficient is tested at run time.
///
/// # Safety
/// The CPU supports `S`.
#[inline(always)]
unsafe fn fold_at<S: Simd, const MR: usize, const NV: usize>(
    j: usize,
    sums: &mut [[[S::V; NV]; MR]; 2],
    acc: &[[S::V; NV]; MR],
) {
    let [s0, s1] = sums;
    // SAFETY: the caller guarantees the ISA.
    unsafe {
        for ((r0, r1), ar) in s0.iter_mut().zip(s1.iter_mut()).zip(acc) {
            for ((x0, x1), &x) in r0.iter_mut().zip(r1.iter_mut()).zip(ar) {
                match j {
                    0 => *x0 = S::add(*x0, x),
                    1 => (*x0, *x1) = (S::add(*x0, x), S::add(*x1, x)),
                    2 => (*x0, *x1) = (S::add(*x0, x), S::sub(*x1, x)),
                    3 => (*x0, *x1) = (S::add(*x0, x), S::fma(S::splat(2.0), x, *x1)),
                    _ => *x1 = S::add(*x1, x),
                }
            }
        }
    }
}

/// The products of one chunk (`NV * L` tiles) and `MR` output channels, and their output
/// transform.
///
/// Per row `i` of positions, per position: the GEMM `MR x K` by `K x NV * L` in `MR x
/// NV` accumulators (the bias as the starting value at [`BIAS_POSITION`]), folded at once
/// into the 2 sums of `At` along the row, which go to a stack scratch. Then per channel
/// and vector of tiles `At` along the column, ReLU, and the two outputs of a tile
/// interleaved into the output rows (a vector of tiles that runs past the end of a tile
/// row is stored in pieces, one per tile row, through a stack copy). With `K = 12` a
/// product is only 12 FMAs deep: storing the 25 positions' products and reading them back
/// for the output transform would cost about as much as computing them, so they never
/// leave the registers.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`PhaseProductArgs`].
#[inline(always)]
unsafe fn products<S: Simd, const MR: usize, const NV: usize>(a: &PhaseProductArgs) {
    let l = S::LANES;
    let w = NV * l;
    // `[i * 2 + c][r][n]`: every element is written (the loop over i) before it is read.
    let mut half = [[[MaybeUninit::<S::V>::uninit(); NV]; MR]; 2 * ALPHA];
    let mut spill = [0.0f32; 64];
    // SAFETY: reads and writes are the contract's; `half` is read only after the loop
    // over i wrote all of it. The stores: a piece of tiles s0..s1 of one tile row writes
    // the first `width` floats of its 2 (s1 - s0) interleaved outputs from column 2 *
    // tile, clipped to `cols`; the spill holds 2L floats (L <= 16) and a piece starting at
    // s0 < L reads 2L floats from 2 s0 < 2L: inside its 64.
    unsafe {
        for i in 0..ALPHA {
            let mut sums = [[[S::zero(); NV]; MR]; 2];
            for j in 0..ALPHA {
                let p = i * ALPHA + j;
                let mut acc = [[S::zero(); NV]; MR];
                if p == BIAS_POSITION {
                    for (r, x) in acc.iter_mut().enumerate() {
                        *x = [S::broadcast(a.bias.add(r)); NV];
                    }
                }
                let mut pv = a.v.add(p * a.k * w);
                let mut pu = a.u.add(p * a.k * MR);
                for _ in 0..a.k / 4 {
                    for step in 0..4 {
                        let mut b = [S::zero(); NV];
                        for (n, bn) in b.iter_mut().enumerate() {
                            *bn = S::load(pv.add(step * w + n * l));
                        }
                        for (r, x) in acc.iter_mut().enumerate() {
                            let u = S::broadcast(pu.add(step * MR + r));
                            for (xn, &bn) in x.iter_mut().zip(&b) {
                                *xn = S::fma(u, bn, *xn);
                            }
                        }
                    }
                    pv = pv.add(4 * w);
                    pu = pu.add(4 * MR);
                }
                fold_at::<S, MR, NV>(j, &mut sums, &acc);
            }
            for (c, sum) in sums.iter().enumerate() {
                for (h, sr) in half[i * 2 + c].iter_mut().zip(sum) {
                    for (hn, &x) in h.iter_mut().zip(sr) {
                        hn.write(x);
                    }
                }
            }
        }
        for r in 0..a.ocs {
            for n in 0..NV {
                let v0 = n * l;
                if v0 >= a.tiles {
                    break;
                }
                let mut by_column = [[S::zero(); 2]; 2];
                for (c, yc) in by_column.iter_mut().enumerate() {
                    let mut col = [S::zero(); ALPHA];
                    for (ci, pair) in col.iter_mut().zip(half.chunks_exact(2)) {
                        *ci = pair[c][r][n].assume_init();
                    }
                    *yc = F24::at::<S>(col);
                }
                let mut rows = [[S::zero(); 2]; 2];
                for (y, out_row) in rows.iter_mut().enumerate() {
                    *out_row = S::interleave(by_column[0][y], by_column[1][y]);
                }
                let valid = l.min(a.tiles - v0);
                let mut s0 = 0;
                while s0 < valid {
                    let pos = a.first + v0 + s0;
                    let (band_row, tile) = (pos / a.row_tiles, pos % a.row_tiles);
                    let s1 = valid.min(s0 + a.row_tiles - tile);
                    let width = (2 * (s1 - s0)).min(a.cols - 2 * tile);
                    for (y, &out_row) in rows.iter().enumerate().take(a.rows - 2 * band_row) {
                        let values = if s0 == 0 {
                            out_row
                        } else {
                            S::store(spill.as_mut_ptr(), out_row[0]);
                            S::store(spill.as_mut_ptr().add(l), out_row[1]);
                            [S::load(spill.as_ptr().add(2 * s0)), S::load(spill.as_ptr().add(2 * s0 + l))]
                        };
                        let dst = a.out.add(r * a.plane + (2 * band_row + y) * a.row + 2 * tile);
                        store_row::<S, 2>(dst, values, width, a.relu);
                    }
                    s0 = s1;
                }
            }
        }
    }
}

entries!(
    input,
    PhaseInputArgs,
    input_entry,
    polyphase_input__portable<Portable>,
    polyphase_input__avx2<Avx2>,
    polyphase_input__avx512<Avx512>
);
entries!(
    split,
    SplitArgs,
    split_entry,
    polyphase_split__portable<Portable>,
    polyphase_split__avx2<Avx2>,
    polyphase_split__avx512<Avx512>
);

/// The products kernel's tile `(MR, NV)` on AVX-512: `MR x NV` accumulators and twice as
/// many sums, plus `NV + 1` vectors, within the 32 registers; two vectors of tiles per
/// broadcast weight (S8 took 0.956x the time of an 8 x 1 tile at 1 thread, 0.946x at 2,
/// in paired blocks).
#[cfg(target_arch = "x86_64")]
const TILE_AVX512: (usize, usize) = (4, 2);
/// The same for AVX2's 16 registers.
#[cfg(target_arch = "x86_64")]
const TILE_AVX2: (usize, usize) = (2, 2);
/// The same for portable's 8-lane vectors (two 4-lane registers each on x86-64 and
/// aarch64).
const TILE_PORTABLE: (usize, usize) = (2, 1);

/// The products kernel's tile for `isa`: `MR` output channels by `NV` vectors of tiles
/// (a chunk is `NV * L` tiles).
pub(crate) fn product_tile(isa: Isa) -> (usize, usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => TILE_AVX512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => TILE_AVX2,
        _ => TILE_PORTABLE,
    }
}

entries!(
    products,
    PhaseProductArgs,
    products_entry,
    polyphase_products__portable<Portable, { TILE_PORTABLE.0 }, { TILE_PORTABLE.1 }>,
    polyphase_products__avx2<Avx2, { TILE_AVX2.0 }, { TILE_AVX2.1 }>,
    polyphase_products__avx512<Avx512, { TILE_AVX512.0 }, { TILE_AVX512.1 }>
);
