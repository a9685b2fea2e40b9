//! Depthwise convolution kernel (one channel plane, stride 1), vectorised along the
//! output row.
//!
//! The input plane is first copied into a zero-padded scratch plane, so the kernel has no
//! bounds logic: output pixel `(y, x)` is `bias + sum_{i,j} w[i][j] * p[(y + i*dh) * cols +
//! x + j*dw]`, computed in blocks of 2 rows × up to 4 vectors.

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

/// `R` output rows from `y` × `U` vectors from column `x0`: `R * U` independent
/// accumulator chains; `n` valid floats in the last vector of each row. With `K3` the
/// kernel is 3x3 without dilation, as constants: the tap loops unroll and a padded row
/// shared by the block's output rows is loaded once (2 rows x 4 vectors: 48 loads for 72
/// FMAs instead of 72).
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`DepthwiseArgs`] (and is 3x3
/// without dilation if `K3`), rows `y..y + R` are below `oh` and columns `x0..x0 + (U - 1)
/// * L + n` below `ow`.
#[inline(always)]
unsafe fn block<S: Simd, const R: usize, const U: usize, const K3: bool>(
    a: &DepthwiseArgs,
    y: usize,
    x0: usize,
    n: usize,
) {
    let l = S::LANES;
    let ([kh, kw], [dh, dw]) = if K3 { ([3, 3], [1, 1]) } else { (a.kernel, a.dilation) };
    // SAFETY: reads stay inside the padded plane (with its slack) and writes inside output
    // rows y..y + R, per the contract; the caller guarantees the ISA.
    unsafe {
        let mut acc = [[S::splat(a.bias); U]; R];
        for i in 0..kh {
            for j in 0..kw {
                let wv = S::broadcast(a.w.add(i * kw + j));
                for (r, row) in acc.iter_mut().enumerate() {
                    let p = a.x.add((y + r + i * dh) * a.cols + x0 + j * dw);
                    for (u, c) in row.iter_mut().enumerate() {
                        *c = S::fma(S::load(p.add(u * l)), wv, *c);
                    }
                }
            }
        }
        for (r, row) in acc.into_iter().enumerate() {
            let out = a.out.add((y + r) * a.ldo + x0);
            for (u, mut c) in row.into_iter().enumerate() {
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
}

/// The depthwise kernel for one plane: blocks of 2 rows × up to 4 vectors (8 independent
/// FMA chains hide the FMA latency), the last vector of a row masked; 3x3 kernels without
/// dilation take the unrolled blocks.
///
/// # Safety
/// The CPU supports `S`; `a` satisfies the contract of [`DepthwiseArgs`].
#[inline(always)]
unsafe fn depthwise<S: Simd>(a: &DepthwiseArgs) {
    // SAFETY: forwarded; the K3 blocks only for a 3x3 kernel without dilation.
    unsafe { if a.kernel == [3, 3] && a.dilation == [1, 1] { blocks::<S, true>(a) } else { blocks::<S, false>(a) } }
}

/// The rows and vectors of a plane in [`block`]s.
///
/// # Safety
/// As [`block`]'s.
#[inline(always)]
unsafe fn blocks<S: Simd, const K3: bool>(a: &DepthwiseArgs) {
    let l = S::LANES;
    let vectors = a.ow.div_ceil(l);
    let tail = a.ow - (vectors - 1) * l;
    let mut y = 0;
    while y < a.oh {
        let rows = (a.oh - y).min(2);
        let mut v = 0;
        while v < vectors {
            let u = (vectors - v).min(4);
            let n = if v + u == vectors { tail } else { l };
            // SAFETY: rows y..y + rows < oh, vectors v..v + u cover columns below ow with
            // the last one masked to n.
            unsafe {
                match (rows, u) {
                    (2, 4) => block::<S, 2, 4, K3>(a, y, v * l, n),
                    (2, 3) => block::<S, 2, 3, K3>(a, y, v * l, n),
                    (2, 2) => block::<S, 2, 2, K3>(a, y, v * l, n),
                    (2, _) => block::<S, 2, 1, K3>(a, y, v * l, n),
                    (_, 4) => block::<S, 1, 4, K3>(a, y, v * l, n),
                    (_, 3) => block::<S, 1, 3, K3>(a, y, v * l, n),
                    (_, 2) => block::<S, 1, 2, K3>(a, y, v * l, n),
                    _ => block::<S, 1, 1, K3>(a, y, v * l, n),
                }
            }
            v += u;
        }
        y += rows;
    }
}

entries!(
    depthwise,
    DepthwiseArgs,
    depthwise_entry,
    depthwise__portable<Portable>,
    depthwise__avx2<Avx2>,
    depthwise__avx512<Avx512>
);
