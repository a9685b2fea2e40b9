//! AVX-512F: 16 lanes of `__m512`, masked tails with `k` registers.

use std::arch::x86_64::*;

use super::Simd;

/// AVX-512F token (16 lanes). Only use it on a CPU where [`Isa::supports`] is true.
#[derive(Clone, Copy, Debug)]
pub struct Avx512;

/// Mask with the low `n` bits set (`n <= 16`).
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

impl Simd for Avx512 {
    const LANES: usize = 16;
    type V = __m512;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F and 16 readable floats at p.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        // SAFETY: the caller guarantees AVX-512F and 16 writable floats at p.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> __m512 {
        // SAFETY: masked-off lanes are not accessed (no fault), the caller guarantees n
        // readable floats and AVX-512F.
        unsafe { _mm512_maskz_loadu_ps(mask(n), p) }
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, v: __m512, n: usize) {
        // SAFETY: masked-off lanes are not written, the caller guarantees n writable floats.
        unsafe { _mm512_mask_storeu_ps(p, mask(n), v) }
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F and a readable p.
        unsafe { _mm512_set1_ps(*p) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn zero() -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn max(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn deinterleave4(x: [__m512; 4]) -> [__m512; 4] {
        // SAFETY: the caller guarantees AVX-512F. Index i < 16 of `permutex2var` takes lane
        // i of the first source, 16 + i lane i of the second. First, per pair of inputs
        // (8 t's): phases 0 and 1, phases 2 and 3, 8 lanes each; then the halves of the
        // two pairs side by side.
        unsafe {
            let p01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
            let p23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
            let lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
            let hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
            let (a01, a23) = (_mm512_permutex2var_ps(x[0], p01, x[1]), _mm512_permutex2var_ps(x[0], p23, x[1]));
            let (b01, b23) = (_mm512_permutex2var_ps(x[2], p01, x[3]), _mm512_permutex2var_ps(x[2], p23, x[3]));
            [
                _mm512_permutex2var_ps(a01, lo, b01),
                _mm512_permutex2var_ps(a01, hi, b01),
                _mm512_permutex2var_ps(a23, lo, b23),
                _mm512_permutex2var_ps(a23, hi, b23),
            ]
        }
    }
    #[inline(always)]
    unsafe fn blend_from(a: __m512, b: __m512, s: usize) -> __m512 {
        // SAFETY: the caller guarantees AVX-512F; mask bit i set takes lane i of `b`.
        unsafe { _mm512_mask_blend_ps(!mask(s), a, b) }
    }
    #[inline(always)]
    unsafe fn interleave(a: __m512, b: __m512) -> [__m512; 2] {
        // SAFETY: the caller guarantees AVX-512F. Index i < 16 of `permutex2var` takes lane
        // i of `a`, 16 + i lane i of `b`.
        unsafe {
            let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
            [_mm512_permutex2var_ps(a, lo, b), _mm512_permutex2var_ps(a, hi, b)]
        }
    }

    #[inline(always)]
    unsafe fn transpose(src: *const f32, lds: usize, rows: usize, cols: usize, dst: *mut f32, ldd: usize) {
        // SAFETY: row i < rows is loaded masked to `cols` floats, rows past `rows` are zero
        // registers; output row j < cols is stored masked to `rows` floats (the contract's
        // elements only). A full 16 x 16 block, where those are all 16 floats of each row,
        // uses plain loads and stores (S2, S3, S8: 1.5-3% faster than full masks). The
        // shuffles are the standard 4-stage 16x16 transpose.
        unsafe {
            let full = rows == 16 && cols == 16;
            let mut r: [__m512; 16] = std::array::from_fn(|i| {
                if full {
                    _mm512_loadu_ps(src.add(i * lds))
                } else if i < rows {
                    _mm512_maskz_loadu_ps(mask(cols), src.add(i * lds))
                } else {
                    _mm512_setzero_ps()
                }
            });
            let mut t = [_mm512_setzero_ps(); 16];
            for k in 0..8 {
                t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
                t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
            }
            for k in 0..4 {
                let b = 4 * k;
                let pd = |x: __m512| _mm512_castps_pd(x);
                r[b] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[b]), pd(t[b + 2])));
                r[b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[b]), pd(t[b + 2])));
                r[b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[b + 1]), pd(t[b + 3])));
                r[b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[b + 1]), pd(t[b + 3])));
            }
            for h in 0..2 {
                let b = 8 * h;
                for k in 0..4 {
                    t[b + k] = _mm512_shuffle_f32x4::<0x88>(r[b + k], r[b + 4 + k]);
                    t[b + 4 + k] = _mm512_shuffle_f32x4::<0xdd>(r[b + k], r[b + 4 + k]);
                }
            }
            for k in 0..8 {
                r[k] = _mm512_shuffle_f32x4::<0x88>(t[k], t[8 + k]);
                r[8 + k] = _mm512_shuffle_f32x4::<0xdd>(t[k], t[8 + k]);
            }
            for (j, v) in r.iter().enumerate().take(cols) {
                if full {
                    _mm512_storeu_ps(dst.add(j * ldd), *v);
                } else {
                    _mm512_mask_storeu_ps(dst.add(j * ldd), mask(rows), *v);
                }
            }
        }
    }
}
