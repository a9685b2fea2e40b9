//! AVX2 + FMA: 8 lanes of `__m256`, masked tails with `vmaskmovps`.

use std::arch::x86_64::*;

use super::Simd;

/// AVX2 + FMA token (8 lanes). Only use it on a CPU where [`Isa::supports`] is true.
#[derive(Clone, Copy, Debug)]
pub struct Avx2;

/// `MASKS[8 - n..16 - n]` has its first `n` entries all-ones: the `vmaskmovps` mask of a
/// tail of `n` lanes.
static MASKS: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];

/// Lane mask with the first `n` lanes set (`n <= 8`).
#[inline(always)]
unsafe fn mask(n: usize) -> __m256i {
    // SAFETY: 8 - n is in 0..=8 for n <= 8, so the 8 loaded i32 lie inside MASKS; the
    // caller guarantees AVX.
    unsafe { _mm256_loadu_si256(MASKS.as_ptr().add(8 - n) as *const __m256i) }
}

impl Simd for Avx2 {
    const LANES: usize = 8;
    type V = __m256;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees AVX2 and 8 readable floats at p.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        // SAFETY: the caller guarantees AVX2 and 8 writable floats at p.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> __m256 {
        // SAFETY: vmaskmovps does not access (or fault on) masked-off lanes; n <= 8 lanes
        // are readable per the caller.
        unsafe { _mm256_maskload_ps(p, mask(n)) }
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, v: __m256, n: usize) {
        // SAFETY: masked-off lanes are not written; n lanes are writable per the caller.
        unsafe { _mm256_maskstore_ps(p, mask(n), v) }
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const f32) -> __m256 {
        // SAFETY: the caller guarantees AVX and a readable p.
        unsafe { _mm256_broadcast_ss(&*p) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn zero() -> __m256 {
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: the caller guarantees FMA.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn max(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the caller guarantees AVX.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn deinterleave4(x: [__m256; 4]) -> [__m256; 4] {
        // SAFETY: the caller guarantees AVX2. Each 128-bit half of x[m] is one t's 4
        // phases (t = 2m, 2m + 1); a 4x4 transpose within the halves gives phase e of t =
        // 0, 2, 4, 6 | 1, 3, 5, 7, which one permutation puts in order.
        unsafe {
            let t0 = _mm256_unpacklo_ps(x[0], x[1]);
            let t1 = _mm256_unpackhi_ps(x[0], x[1]);
            let t2 = _mm256_unpacklo_ps(x[2], x[3]);
            let t3 = _mm256_unpackhi_ps(x[2], x[3]);
            let (t0, t1, t2, t3) =
                (_mm256_castps_pd(t0), _mm256_castps_pd(t1), _mm256_castps_pd(t2), _mm256_castps_pd(t3));
            let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            [
                _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2)), order),
                _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2)), order),
                _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3)), order),
                _mm256_permutevar8x32_ps(_mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3)), order),
            ]
        }
    }
    #[inline(always)]
    unsafe fn blend_from(a: __m256, b: __m256, s: usize) -> __m256 {
        // SAFETY: the caller guarantees AVX2; lane i takes `b` where i > s - 1 (all lanes
        // for s = 0: -1 is below every index).
        unsafe {
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let take_b = _mm256_cmpgt_epi32(lanes, _mm256_set1_epi32(s as i32 - 1));
            _mm256_blendv_ps(a, b, _mm256_castsi256_ps(take_b))
        }
    }
    #[inline(always)]
    unsafe fn interleave(a: __m256, b: __m256) -> [__m256; 2] {
        // SAFETY: the caller guarantees AVX. Per 128-bit half: lo = a0 b0 a1 b1 | a4 b4 a5
        // b5, hi = a2 b2 a3 b3 | a6 b6 a7 b7; then the low halves and the high halves.
        unsafe {
            let (lo, hi) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
            [_mm256_permute2f128_ps::<0x20>(lo, hi), _mm256_permute2f128_ps::<0x31>(lo, hi)]
        }
    }

    #[inline(always)]
    unsafe fn transpose(src: *const f32, lds: usize, rows: usize, cols: usize, dst: *mut f32, ldd: usize) {
        // SAFETY: row i < rows is loaded masked to `cols` floats, rows past `rows` are zero;
        // output row j < cols is stored masked to `rows` floats. The shuffles are the
        // standard 3-stage 8x8 transpose.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|i| {
                if i < rows { _mm256_maskload_ps(src.add(i * lds), mask(cols)) } else { _mm256_setzero_ps() }
            });
            let mut t = [_mm256_setzero_ps(); 8];
            for k in 0..4 {
                t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
                t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
            }
            let mut u = [_mm256_setzero_ps(); 8];
            for k in 0..2 {
                let b = 4 * k;
                u[b] = _mm256_shuffle_ps::<0x44>(t[b], t[b + 2]);
                u[b + 1] = _mm256_shuffle_ps::<0xee>(t[b], t[b + 2]);
                u[b + 2] = _mm256_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
                u[b + 3] = _mm256_shuffle_ps::<0xee>(t[b + 1], t[b + 3]);
            }
            let m = mask(rows);
            for k in 0..4 {
                if k < cols {
                    _mm256_maskstore_ps(dst.add(k * ldd), m, _mm256_permute2f128_ps::<0x20>(u[k], u[4 + k]));
                }
                if k + 4 < cols {
                    _mm256_maskstore_ps(dst.add((k + 4) * ldd), m, _mm256_permute2f128_ps::<0x31>(u[k], u[4 + k]));
                }
            }
        }
    }
}
