//! Winograd transforms with 2x2 output tiles (Lavin & Gray 2016), vectorised over `L`
//! channels of the channel-blocked layout. Two tiles, each a 1D transform applied along
//! both axes (`A` points a patch, `A x A` positions):
//!
//! ```text
//! F(2x2, 3x3), stride 1, A = 4:
//! input tile d (4x4 patch)    V = Bt d B      Bt = [1  0 -1  0]
//!                                                  [0  1  1  0]
//!                                                  [0 -1  1  0]
//!                                                  [0  1  0 -1]
//! weights g (3x3, at plan)    U = G g Gt      G  = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//! per position p of 16:       M_p = sum_c U_p[k][c] V_p[c]   (a GEMM, the direct kernels)
//! output tile (2x2)           Y = At M A      At = [1  1  1  0]
//!                                                  [0  1 -1 -1]
//!
//! F(2x2, 3x3), stride 2, A = 5: the polyphase split of a stride-2 tap row, the even taps
//! (g0, g2) on the even inputs by F(2, 2), the odd tap g1 on the odd inputs directly:
//!   y0 = d0 g0 + d1 g1 + d2 g2,  y1 = d2 g0 + d3 g1 + d4 g2
//!   Bt d = [d0 - d2, d2, d4 - d2, d1, d3]
//!   G g  = [g0, g0 + g2, g2, g1, g1]
//!   At m = [m0 + m1 + m3, m1 + m2 + m4]
//! 25 products per 2x2 outputs instead of 36 (1.44x fewer); integer coefficients (no
//! fractions in G), though, as in every Winograd form, a rounded sum such as d0 - d2 or
//! g0 + g2 can cancel later (an error far above the direct sum's for adversarial data).
//! ```
//!
//! With dilation `d` a tile is the 2x2 outputs `d` apart and its patch the `A x A` inputs
//! `d` apart, so the same transforms serve dilated convolutions.
//!
//! A third tile, F(2, 4) (`F24`, 5 points), serves polyphase Winograd, whose kernels
//! (`kernels::polyphase`) apply it vectorised over tiles instead of channels.

#[cfg(target_arch = "x86_64")]
use super::{Avx2, Avx512};
use super::{Isa, Portable, Simd};

/// The 1D transforms of a tile of 2 outputs of an `R`-tap kernel from an `A`-point
/// patch (`A = R + 1` at stride 1; the stride-2 form of F(2, 3) has 5 points).
pub(crate) trait Tile<const A: usize, const R: usize> {
    /// `G`, the weight transform's left factor (`A x R`).
    const G: [[f64; R]; A];
    /// `Bt x` for one column (or, transposed, one row) of a patch.
    ///
    /// # Safety
    /// The CPU supports `S`.
    unsafe fn bt<S: Simd>(x: [S::V; A]) -> [S::V; A];
    /// `At x` for one column (or row) of the transformed tile.
    ///
    /// # Safety
    /// The CPU supports `S`.
    unsafe fn at<S: Simd>(x: [S::V; A]) -> [S::V; 2];
}

/// F(2, 3), stride 1: 4-point patches.
struct F23;

impl Tile<4, 3> for F23 {
    const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
    #[inline(always)]
    unsafe fn bt<S: Simd>(x: [S::V; 4]) -> [S::V; 4] {
        // SAFETY: the caller guarantees the ISA.
        unsafe { [S::sub(x[0], x[2]), S::add(x[1], x[2]), S::sub(x[2], x[1]), S::sub(x[1], x[3])] }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(x: [S::V; 4]) -> [S::V; 2] {
        // SAFETY: the caller guarantees the ISA.
        unsafe { [S::add(S::add(x[0], x[1]), x[2]), S::sub(S::sub(x[1], x[2]), x[3])] }
    }
}

/// F(2, 3), stride 2: 5-point patches (the polyphase split above).
struct F23S2;

impl Tile<5, 3> for F23S2 {
    const G: [[f64; 3]; 5] = [[1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]];
    #[inline(always)]
    unsafe fn bt<S: Simd>(x: [S::V; 5]) -> [S::V; 5] {
        // SAFETY: the caller guarantees the ISA.
        unsafe { [S::sub(x[0], x[2]), x[2], S::sub(x[4], x[2]), x[1], x[3]] }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(x: [S::V; 5]) -> [S::V; 2] {
        // SAFETY: the caller guarantees the ISA.
        unsafe { [S::add(S::add(x[0], x[1]), x[3]), S::add(S::add(x[1], x[2]), x[4])] }
    }
}

/// F(2, 4), stride 1: 5-point patches, interpolation points 0, 1, -1, 2 and infinity
/// (Toom-Cook); the polyphase driver (`conv::polyphase`) runs it on the phase planes of
/// a stride-2 convolution.
///
/// ```text
/// y0 = d0 g0 + d1 g1 + d2 g2 + d3 g3,  y1 = d1 g0 + d2 g1 + d3 g2 + d4 g3
/// Bt d = [2 d0 - d1 - 2 d2 + d3, -2 d1 - d2 + d3, 2 d1 - 3 d2 + d3, d3 - d1, 2 d1 - d2 - 2 d3 + d4]
/// G g  = [g0 / 2, -(g0 + g1 + g2 + g3) / 2, (-g0 + g1 - g2 + g3) / 6, (g0 + 2 g1 + 4 g2 + 8 g3) / 6, g3]
/// At m = [m0 + m1 + m2 + m3, m1 - m2 + 2 m3 + m4]
/// ```
pub(crate) struct F24;

impl Tile<5, 4> for F24 {
    const G: [[f64; 4]; 5] = [
        [0.5, 0.0, 0.0, 0.0],
        [-0.5, -0.5, -0.5, -0.5],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0],
        [1.0 / 6.0, 1.0 / 3.0, 2.0 / 3.0, 4.0 / 3.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    #[inline(always)]
    unsafe fn bt<S: Simd>(x: [S::V; 5]) -> [S::V; 5] {
        // SAFETY: the caller guarantees the ISA.
        unsafe {
            let t = S::sub(x[3], x[1]);
            [
                S::fma(S::splat(2.0), S::sub(x[0], x[2]), t),
                S::sub(t, S::add(x[1], x[2])),
                S::fma(S::splat(3.0), S::sub(x[1], x[2]), t),
                t,
                S::fma(S::splat(-2.0), t, S::sub(x[4], x[2])),
            ]
        }
    }
    #[inline(always)]
    unsafe fn at<S: Simd>(x: [S::V; 5]) -> [S::V; 2] {
        // SAFETY: the caller guarantees the ISA.
        unsafe {
            [
                S::add(S::add(x[0], x[1]), S::add(x[2], x[3])),
                S::fma(S::splat(2.0), x[3], S::add(S::sub(x[1], x[2]), x[4])),
            ]
        }
    }
}

/// A Winograd transform a plan uses: the tile and the stride it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transform {
    /// F(2x2, 3x3) for stride 1 (16 positions).
    F2x3,
    /// F(2x2, 3x3) for stride 2 (25 positions).
    F2x3S2,
}

impl Transform {
    /// The transform for convolution stride `stride`, if there is one.
    pub(crate) fn for_stride(stride: usize) -> Option<Transform> {
        match stride {
            1 => Some(Transform::F2x3),
            2 => Some(Transform::F2x3S2),
            _ => None,
        }
    }

    /// Points of a patch per axis (`A`, the rows of its `G`).
    pub(crate) fn alpha(self) -> usize {
        match self {
            Transform::F2x3 => <F23 as Tile<4, 3>>::G.len(),
            Transform::F2x3S2 => <F23S2 as Tile<5, 3>>::G.len(),
        }
    }

    /// Positions of a transformed tile, `A * A`.
    pub(crate) fn positions(self) -> usize {
        self.alpha() * self.alpha()
    }

    /// Row `i < A` of `G` (the weight transform's left factor).
    pub(crate) fn g(self, i: usize) -> [f64; 3] {
        match self {
            Transform::F2x3 => <F23 as Tile<4, 3>>::G[i],
            Transform::F2x3S2 => <F23S2 as Tile<5, 3>>::G[i],
        }
    }

    /// The input transform compiled for `isa`.
    pub(crate) fn input(self, isa: Isa) -> unsafe fn(&InputArgs) {
        match self {
            Transform::F2x3 => input_f23(isa),
            Transform::F2x3S2 => input_f23s2(isa),
        }
    }

    /// The output transform compiled for `isa`.
    pub(crate) fn output(self, isa: Isa) -> unsafe fn(&OutputArgs) {
        match self {
            Transform::F2x3 => output_f23(isa),
            Transform::F2x3S2 => output_f23s2(isa),
        }
    }
}

/// Arguments of the input transform.
///
/// Contract (counts in floats), `A` the transform's points per axis: for tile
/// `t < tiles`, `i, j < A` and lane `l < L` the transform reads
/// `x[origins[t] + i * step[0] + j * step[1] + l]` and writes
/// `v[p * pos_stride + t * L + l]` for positions `p < A * A`; all of those must be readable
/// / writable, and `origins` holds `tiles` offsets.
pub(crate) struct InputArgs {
    pub x: *const f32,
    pub origins: *const usize,
    pub tiles: usize,
    pub step: [usize; 2],
    pub v: *mut f32,
    pub pos_stride: usize,
}

/// Arguments of the output transform.
///
/// Contract (counts in floats): for tile `t < tiles`, vector `u < ob / L`, position
/// `p < A * A` it reads `m[p * pos_stride + t * ob + u * L..][..L]` and `bias[u * L..][..L]`,
/// and writes output `(a, b)` (`a, b < 2`) of the tile to
/// `out[origins[t] + a * step[0] + b * step[1] + u * L..][..L]`, plus bias, then
/// `max(., 0)` if `relu`; `ob` is a multiple of `L`.
pub(crate) struct OutputArgs {
    pub m: *const f32,
    pub pos_stride: usize,
    pub ob: usize,
    pub tiles: usize,
    pub bias: *const f32,
    pub out: *mut f32,
    pub origins: *const usize,
    pub step: [usize; 2],
    pub relu: bool,
}

/// The input transform of every tile.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`InputArgs`].
#[inline(always)]
unsafe fn input<S: Simd, T: Tile<A, 3>, const A: usize>(a: &InputArgs) {
    let l = S::LANES;
    // SAFETY: every read and write is one the contract names.
    unsafe {
        for t in 0..a.tiles {
            let base = a.x.add(*a.origins.add(t));
            let d: [[S::V; A]; A] =
                std::array::from_fn(|i| std::array::from_fn(|j| S::load(base.add(i * a.step[0] + j * a.step[1]))));
            // Rows: Bt d (per column j), then columns: (Bt d) B (per row i).
            let cols: [[S::V; A]; A] = std::array::from_fn(|j| T::bt::<S>(std::array::from_fn(|i| d[i][j])));
            let rows: [[S::V; A]; A] = std::array::from_fn(|i| T::bt::<S>(std::array::from_fn(|j| cols[j][i])));
            for (i, row) in rows.into_iter().enumerate() {
                for (j, v) in row.into_iter().enumerate() {
                    S::store(a.v.add((i * A + j) * a.pos_stride + t * l), v);
                }
            }
        }
    }
}

/// The output transform of every tile, bias and ReLU included.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`OutputArgs`].
#[inline(always)]
unsafe fn output<S: Simd, T: Tile<A, 3>, const A: usize>(a: &OutputArgs) {
    let l = S::LANES;
    // SAFETY: every read and write is one the contract names.
    unsafe {
        for t in 0..a.tiles {
            for u in (0..a.ob).step_by(l) {
                let m = a.m.add(t * a.ob + u);
                let x: [[S::V; A]; A] =
                    std::array::from_fn(|i| std::array::from_fn(|j| S::load(m.add((i * A + j) * a.pos_stride))));
                let cols: [[S::V; 2]; A] = std::array::from_fn(|j| T::at::<S>(std::array::from_fn(|i| x[i][j])));
                let bias = S::load(a.bias.add(u));
                let out = a.out.add(*a.origins.add(t) + u);
                let rows: [[S::V; 2]; 2] = std::array::from_fn(|r| T::at::<S>(std::array::from_fn(|j| cols[j][r])));
                for (r, row) in rows.into_iter().enumerate() {
                    for (c, mut y) in row.into_iter().enumerate() {
                        y = S::add(y, bias);
                        if a.relu {
                            y = S::max(y, S::zero());
                        }
                        S::store(out.add(r * a.step[0] + c * a.step[1]), y);
                    }
                }
            }
        }
    }
}

entries!(input, InputArgs, input_f23, input_f23_portable<Portable, F23, 4>, input_f23_avx2<Avx2, F23, 4>, input_f23_avx512<Avx512, F23, 4>);
entries!(output, OutputArgs, output_f23, output_f23_portable<Portable, F23, 4>, output_f23_avx2<Avx2, F23, 4>, output_f23_avx512<Avx512, F23, 4>);
entries!(input, InputArgs, input_f23s2, input_f23s2_portable<Portable, F23S2, 5>, input_f23s2_avx2<Avx2, F23S2, 5>, input_f23s2_avx512<Avx512, F23S2, 5>);
entries!(output, OutputArgs, output_f23s2, output_f23s2_portable<Portable, F23S2, 5>, output_f23s2_avx2<Avx2, F23S2, 5>, output_f23s2_avx512<Avx512, F23S2, 5>);
