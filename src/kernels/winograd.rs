//! Winograd F(2x2, 3x3) transforms (Lavin & Gray 2016), vectorised over `L` channels of
//! the channel-blocked layout:
//!
//! ```text
//! input tile d (4x4 patch)    V = Bt d B      Bt = [1  0 -1  0]
//!                                                  [0  1  1  0]
//!                                                  [0 -1  1  0]
//!                                                  [0  1  0 -1]
//! weights g (3x3, at plan)    U = G g Gt      G  = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//! per position p of 16:       M_p = sum_c U_p[k][c] V_p[c]   (a GEMM, the direct kernels)
//! output tile (2x2)           Y = At M A      At = [1  1  1  0]
//!                                                  [0  1 -1 -1]
//! ```
//!
//! With dilation `d` a tile is the 2x2 outputs `d` apart and its patch the 4x4 inputs `d`
//! apart, so the same transforms serve dilated convolutions.

#[cfg(target_arch = "x86_64")]
use super::{Avx2, Avx512};
use super::{Isa, Portable, Simd};

/// `G`, the weight transform's left factor.
pub(crate) const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// Arguments of the input transform.
///
/// Contract (counts in floats): for tile `t < tiles`, `i, j < 4` and lane `l < L` the
/// transform reads `x[origins[t] + i * step[0] + j * step[1] + l]` and writes
/// `v[p * pos_stride + t * L + l]` for positions `p < 16`; all of those must be readable
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
/// `p < 16` it reads `m[p * pos_stride + t * ob + u * L..][..L]` and `bias[u * L..][..L]`,
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

/// `Bt x` for one column (or, transposed, one row) of a 4x4 tile.
#[inline(always)]
unsafe fn bt<S: Simd>(x: [S::V; 4]) -> [S::V; 4] {
    // SAFETY: the caller guarantees the ISA.
    unsafe { [S::sub(x[0], x[2]), S::add(x[1], x[2]), S::sub(x[2], x[1]), S::sub(x[1], x[3])] }
}

/// `At x` for one column (or row) of a 4x4 tile.
#[inline(always)]
unsafe fn at<S: Simd>(x: [S::V; 4]) -> [S::V; 2] {
    // SAFETY: the caller guarantees the ISA.
    unsafe { [S::add(S::add(x[0], x[1]), x[2]), S::sub(S::sub(x[1], x[2]), x[3])] }
}

/// The input transform of every tile.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`InputArgs`].
#[inline(always)]
unsafe fn input<S: Simd>(a: &InputArgs) {
    let l = S::LANES;
    // SAFETY: every read and write is one the contract names.
    unsafe {
        for t in 0..a.tiles {
            let base = a.x.add(*a.origins.add(t));
            let d: [[S::V; 4]; 4] =
                std::array::from_fn(|i| std::array::from_fn(|j| S::load(base.add(i * a.step[0] + j * a.step[1]))));
            // Rows: Bt d (per column j), then columns: (Bt d) B (per row i).
            let cols: [[S::V; 4]; 4] = std::array::from_fn(|j| bt::<S>([d[0][j], d[1][j], d[2][j], d[3][j]]));
            let rows: [[S::V; 4]; 4] = std::array::from_fn(|i| bt::<S>(std::array::from_fn(|j| cols[j][i])));
            for (i, row) in rows.into_iter().enumerate() {
                for (j, v) in row.into_iter().enumerate() {
                    S::store(a.v.add((i * 4 + j) * a.pos_stride + t * l), v);
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
unsafe fn output<S: Simd>(a: &OutputArgs) {
    let l = S::LANES;
    // SAFETY: every read and write is one the contract names.
    unsafe {
        for t in 0..a.tiles {
            for u in (0..a.ob).step_by(l) {
                let m = a.m.add(t * a.ob + u);
                let x: [[S::V; 4]; 4] =
                    std::array::from_fn(|i| std::array::from_fn(|j| S::load(m.add((i * 4 + j) * a.pos_stride))));
                let cols: [[S::V; 2]; 4] = std::array::from_fn(|j| at::<S>([x[0][j], x[1][j], x[2][j], x[3][j]]));
                let bias = S::load(a.bias.add(u));
                let out = a.out.add(*a.origins.add(t) + u);
                let rows: [[S::V; 2]; 2] = std::array::from_fn(|r| at::<S>(std::array::from_fn(|j| cols[j][r])));
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

/// Declares the per-ISA entry points of a transform and the function picking one.
macro_rules! entries {
    ($generic:ident, $args:ty, $pick:ident, $portable:ident, $avx2:ident, $avx512:ident) => {
        /// The transform compiled for the portable ISA.
        ///
        /// # Safety
        /// `a` satisfies the arguments' contract.
        #[inline(never)]
        unsafe fn $portable(a: &$args) {
            // SAFETY: forwarded; Portable runs everywhere.
            unsafe { $generic::<Portable>(a) }
        }

        /// The transform compiled for AVX2.
        ///
        /// # Safety
        /// The CPU supports AVX2 and FMA; `a` satisfies the arguments' contract.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[inline(never)]
        unsafe fn $avx2(a: &$args) {
            // SAFETY: forwarded from this function's contract.
            unsafe { $generic::<Avx2>(a) }
        }

        /// The transform compiled for AVX-512.
        ///
        /// # Safety
        /// The CPU supports AVX-512F; `a` satisfies the arguments' contract.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[inline(never)]
        unsafe fn $avx512(a: &$args) {
            // SAFETY: forwarded from this function's contract.
            unsafe { $generic::<Avx512>(a) }
        }

        /// The entry point for `isa`.
        pub(crate) fn $pick(isa: Isa) -> unsafe fn(&$args) {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => $avx512,
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => $avx2,
                _ => $portable,
            }
        }
    };
}

entries!(input, InputArgs, input_entry, input_portable, input_avx2, input_avx512);
entries!(output, OutputArgs, output_entry, output_portable, output_avx2, output_avx512);
