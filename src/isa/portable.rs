//! Portable fallback on `wide::f32x8`: two SSE registers on baseline x86-64, two NEON
//! registers on aarch64, plain arrays elsewhere.

use wide::f32x8;

use super::Simd;

/// Portable token (8 lanes); valid on every CPU.
#[derive(Clone, Copy, Debug)]
pub struct Portable;

impl Simd for Portable {
    const LANES: usize = 8;
    type V = f32x8;

    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32x8 {
        // SAFETY: the caller guarantees 8 readable floats at p; read_unaligned needs no
        // alignment.
        f32x8::new(unsafe { (p as *const [f32; 8]).read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32x8) {
        // SAFETY: the caller guarantees 8 writable floats at p.
        unsafe { (p as *mut [f32; 8]).write_unaligned(v.to_array()) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> f32x8 {
        let mut a = [0.0f32; 8];
        // SAFETY: the caller guarantees n <= 8 readable floats at p; a has 8 slots.
        unsafe { std::ptr::copy_nonoverlapping(p, a.as_mut_ptr(), n) };
        f32x8::new(a)
    }
    #[inline(always)]
    unsafe fn store_partial(p: *mut f32, v: f32x8, n: usize) {
        let a = v.to_array();
        // SAFETY: the caller guarantees n <= 8 writable floats at p.
        unsafe { std::ptr::copy_nonoverlapping(a.as_ptr(), p, n) };
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const f32) -> f32x8 {
        // SAFETY: the caller guarantees a readable p.
        f32x8::splat(unsafe { *p })
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> f32x8 {
        f32x8::splat(x)
    }
    #[inline(always)]
    unsafe fn zero() -> f32x8 {
        f32x8::ZERO
    }
    #[inline(always)]
    unsafe fn fma(a: f32x8, b: f32x8, c: f32x8) -> f32x8 {
        a.mul_add(b, c)
    }
    #[inline(always)]
    unsafe fn add(a: f32x8, b: f32x8) -> f32x8 {
        a + b
    }
    #[inline(always)]
    unsafe fn sub(a: f32x8, b: f32x8) -> f32x8 {
        a - b
    }
    #[inline(always)]
    unsafe fn max(a: f32x8, b: f32x8) -> f32x8 {
        a.max(b)
    }
    #[inline(always)]
    unsafe fn deinterleave4(x: [f32x8; 4]) -> [f32x8; 4] {
        let x = x.map(|v| v.to_array());
        let at = |i: usize| x[i / 8][i % 8];
        [0, 1, 2, 3].map(|e| f32x8::new(std::array::from_fn(|t| at(4 * t + e))))
    }
    #[inline(always)]
    unsafe fn blend_from(a: f32x8, b: f32x8, s: usize) -> f32x8 {
        let (a, b) = (a.to_array(), b.to_array());
        f32x8::new(std::array::from_fn(|i| if i < s { a[i] } else { b[i] }))
    }
    #[inline(always)]
    unsafe fn interleave(a: f32x8, b: f32x8) -> [f32x8; 2] {
        let (a, b) = (a.to_array(), b.to_array());
        let pair = |i: usize| if i.is_multiple_of(2) { a[i / 2] } else { b[i / 2] };
        [f32x8::new(std::array::from_fn(pair)), f32x8::new(std::array::from_fn(|i| pair(8 + i)))]
    }
}
