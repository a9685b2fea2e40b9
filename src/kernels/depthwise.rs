//! Depthwise convolution kernel (one channel plane, stride 1), vectorised along the
//! output row.
//!
//! The input plane is first copied into a zero-padded scratch plane, so the kernel has no
//! bounds logic: output pixel `(y, x)` is `bias + sum_{i,j} w[i][j] * p[(y + i*dh) * cols +
//! x + j*dw]`. Each output row is processed 4 vectors at a time (4 independent
//! accumulator chains per tap), then single vectors, then one masked tail.

#[cfg(target_arch = "x86_64")]
use super::{Avx2, Avx512};
use super::{Isa, Portable, Simd};

/// Arguments of the depthwise kernel.
///
/// Contract: `x` is a padded plane of rows `cols` floats apart, readable at every
/// `x[(y + i*dh) * cols + c]` for `y < oh`, `i < kh`, `c < round_up(ow, L) + (kw-1)*dw`
/// (the plane buffer carries `L` floats of slack); `w` holds `kh * kw` floats; `out` is
/// `oh` rows of `ow` writable floats, `ldo` apart.
pub(crate) struct DepthwiseArgs {
    pub x: *const f32,
    pub cols: usize,
    pub w: *const f32,
    pub kernel: [usize; 2],
    pub dilation: [usize; 2],
    pub bias: f32,
    pub out: *mut f32,
    pub oh: usize,
    pub ow: usize,
    pub ldo: usize,
    pub relu: bool,
}

/// `U` vectors of one output row starting at column `x0`; `n` valid floats in the last.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`DepthwiseArgs`] and the columns
/// `x0..x0 + U * L` lie inside the row (the last `n` of them, partially).
#[inline(always)]
unsafe fn block<S: Simd, const U: usize>(a: &DepthwiseArgs, y: usize, x0: usize, n: usize) {
    let l = S::LANES;
    let [kh, kw] = a.kernel;
    let [dh, dw] = a.dilation;
    // SAFETY: reads stay inside the padded plane (with its slack) and writes inside output
    // row y, per the contract; the caller guarantees the ISA.
    unsafe {
        let mut acc = [S::splat(a.bias); U];
        for i in 0..kh {
            let row = a.x.add((y + i * dh) * a.cols + x0);
            for j in 0..kw {
                let wv = S::broadcast(a.w.add(i * kw + j));
                let p = row.add(j * dw);
                for (u, c) in acc.iter_mut().enumerate() {
                    *c = S::fma(S::load(p.add(u * l)), wv, *c);
                }
            }
        }
        let out = a.out.add(y * a.ldo + x0);
        for (u, mut c) in acc.into_iter().enumerate() {
            if a.relu {
                c = S::max(c, S::zero());
            }
            if u + 1 < U || n == l {
                S::store(out.add(u * l), c);
            } else {
                S::store_partial(out.add(u * l), c, n);
            }
        }
    }
}

/// The depthwise kernel for one plane.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`DepthwiseArgs`].
#[inline(always)]
unsafe fn depthwise<S: Simd>(a: &DepthwiseArgs) {
    let l = S::LANES;
    for y in 0..a.oh {
        let mut x = 0;
        // SAFETY: each call covers columns below ow (the last one masked to ow).
        unsafe {
            while x + 4 * l <= a.ow {
                block::<S, 4>(a, y, x, l);
                x += 4 * l;
            }
            while x + l <= a.ow {
                block::<S, 1>(a, y, x, l);
                x += l;
            }
            if x < a.ow {
                block::<S, 1>(a, y, x, a.ow - x);
            }
        }
    }
}

/// [`depthwise`] for the portable ISA.
///
/// # Safety
/// `a` satisfies the contract of [`DepthwiseArgs`].
#[inline(never)]
#[allow(non_snake_case)]
unsafe fn depthwise__portable(a: &DepthwiseArgs) {
    // SAFETY: forwarded; Portable runs everywhere.
    unsafe { depthwise::<Portable>(a) }
}

/// [`depthwise`] for AVX2.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `a` satisfies the contract of [`DepthwiseArgs`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
#[allow(non_snake_case)]
unsafe fn depthwise__avx2(a: &DepthwiseArgs) {
    // SAFETY: forwarded from this function's contract.
    unsafe { depthwise::<Avx2>(a) }
}

/// [`depthwise`] for AVX-512.
///
/// # Safety
/// The CPU supports AVX-512F; `a` satisfies the contract of [`DepthwiseArgs`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
#[allow(non_snake_case)]
unsafe fn depthwise__avx512(a: &DepthwiseArgs) {
    // SAFETY: forwarded from this function's contract.
    unsafe { depthwise::<Avx512>(a) }
}

/// The depthwise entry point for `isa`.
pub(crate) fn depthwise_entry(isa: Isa) -> unsafe fn(&DepthwiseArgs) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => depthwise__avx512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => depthwise__avx2,
        _ => depthwise__portable,
    }
}
