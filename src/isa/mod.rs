//! The SIMD abstraction every kernel is written against.
//!
//! [`Simd`] is a zero-sized "ISA token" type with an associated vector type and
//! `#[inline(always)]` operations. The kernels are generic over it and are instantiated
//! once per ISA inside a thin `#[target_feature(enable = ...)]` `#[inline(never)]` entry
//! point (see [`crate::kernels`]), so the trait methods inline into code compiled for that
//! ISA while the crate itself is built for the baseline target (no `-C target-cpu`).
//!
//! | type | lanes | target |
//! |---|---|---|
//! | [`Avx512`] | 16 | x86-64 with AVX-512F |
//! | [`Avx2`] | 8 | x86-64 with AVX2 + FMA |
//! | [`Portable`] | 8 | everything else (`wide::f32x8`: SSE pairs, NEON pairs, or scalar) |
//!
//! [`Isa::active`] picks the best level the CPU supports, once; the environment variable
//! `SVERKA_ISA=portable|avx2|avx512` can lower it (never raise it) so that tests and
//! benches reach every path on one machine.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod detect;
mod portable;

#[cfg(target_arch = "x86_64")]
pub use avx2::Avx2;
#[cfg(target_arch = "x86_64")]
pub use avx512::Avx512;
pub use detect::Isa;
pub(crate) use detect::cache_sizes;
pub use portable::Portable;

/// Asks the CPU to bring the cache line holding `p` into L2 (x86-64 `prefetcht1`; nothing
/// on other targets). A hint only: it reads nothing the program can observe and never
/// faults, whatever `p` points at.
#[inline(always)]
pub(crate) fn prefetch_l2(p: *const f32) {
    // SAFETY: a prefetch dereferences nothing architecturally and cannot fault for any
    // address; SSE, which has it, is part of the x86-64 baseline.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// One SIMD instruction set: a vector of [`Simd::LANES`] `f32` and the operations the
/// kernels need.
///
/// Every method is `unsafe` for one shared reason: it may only run on a CPU that supports
/// the ISA (see [`Isa::supports`]), and pointer arguments must be valid for the lanes
/// accessed. The methods are `#[inline(always)]` so they compile into the caller's
/// `#[target_feature]` context.
pub trait Simd: Copy + Send + Sync + 'static {
    /// `f32` lanes per vector.
    const LANES: usize;
    /// The vector register type.
    type V: Copy;

    /// Loads `LANES` floats from `p` (no alignment needed).
    ///
    /// # Safety
    /// The CPU supports the ISA; `p..p + LANES` is readable.
    unsafe fn load(p: *const f32) -> Self::V;
    /// Stores `LANES` floats to `p` (no alignment needed).
    ///
    /// # Safety
    /// The CPU supports the ISA; `p..p + LANES` is writable.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// Loads the first `n` lanes from `p` (`n <= LANES`), the other lanes are zero; reads
    /// nothing past `p + n`.
    ///
    /// # Safety
    /// The CPU supports the ISA; `p..p + n` is readable.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self::V;
    /// Stores the first `n` lanes of `v` to `p` (`n <= LANES`); writes nothing past `p + n`.
    ///
    /// # Safety
    /// The CPU supports the ISA; `p..p + n` is writable.
    unsafe fn store_partial(p: *mut f32, v: Self::V, n: usize);
    /// Every lane set to `*p`.
    ///
    /// # Safety
    /// The CPU supports the ISA; `p` is readable.
    unsafe fn broadcast(p: *const f32) -> Self::V;
    /// Every lane set to `x`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn splat(x: f32) -> Self::V;
    /// All lanes zero.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn zero() -> Self::V;
    /// `a * b + c` (fused where the ISA has FMA).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn fma(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `a + b`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    /// Lane-wise maximum (NaN handling differs between ISAs; the kernels use it only for
    /// ReLU, `max(x, 0)`).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn max(a: Self::V, b: Self::V) -> Self::V;
    /// Interleaves the lanes of `a` and `b`: `[a0, b0, a1, b1, ...]`, the first `LANES`
    /// of those in the first vector, the rest in the second (two output columns of a
    /// Winograd tile into one output row).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn interleave(a: Self::V, b: Self::V) -> [Self::V; 2];
    /// Splits `4 * LANES` consecutive floats, `x[4t + e]`, into their 4 phases: vector
    /// `e` of the result holds `x[4t + e]` for `t < LANES` (an input row into its column
    /// phases for stride 4).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn deinterleave4(x: [Self::V; 4]) -> [Self::V; 4];
    /// Lanes below `s` from `a`, the others from `b` (`s <= LANES`).
    ///
    /// # Safety
    /// The CPU supports the ISA.
    unsafe fn blend_from(a: Self::V, b: Self::V, s: usize) -> Self::V;

    /// Transposes one `LANES x LANES` block: `dst[j * ldd + i] = src[i * lds + j]` for
    /// `i < rows`, `j < cols` (`rows, cols <= LANES`). Reads only those `src` elements and
    /// writes only those `dst` elements.
    ///
    /// # Safety
    /// The CPU supports the ISA; the elements named above are readable / writable.
    #[inline(always)]
    unsafe fn transpose(src: *const f32, lds: usize, rows: usize, cols: usize, dst: *mut f32, ldd: usize) {
        for i in 0..rows {
            for j in 0..cols {
                // SAFETY: i < rows and j < cols, the caller's contract.
                unsafe { *dst.add(j * ldd + i) = *src.add(i * lds + j) };
            }
        }
    }
}
