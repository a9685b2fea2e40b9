//! The microkernels: the generated register-blocked kernels (`$OUT_DIR/kernels.rs`,
//! rendered by `codegen/mod.rs`), the hand-written ones (depthwise, the Winograd
//! transforms, polyphase Winograd), their contracts and the registry that dispatch, tests
//! and benches share.
//!
//! Each kernel is a generic `#[inline(always)]` function over the crate's `Simd` trait, instantiated per
//! ISA in an `#[inline(never)]` `#[target_feature]` entry point named `<kernel>__<isa>`
//! (so a profiler shows `direct_k3x3s1_ow14_oc2v__avx512`). Drivers fetch the entry for the
//! active ISA from the entry tables; nothing outside this module calls a kernel directly.

/// Declares the three per-ISA `#[inline(never)]` entry points of a hand-written generic
/// kernel and the function picking one for an ISA: `entries!(kernel, Args, pick,
/// name_portable<generic args>, name_avx2<...>, name_avx512<...>)` instantiates
/// `kernel::<generic args>` (the first of them the ISA token) inside each, compiled with
/// that ISA's target features.
macro_rules! entries {
    ($generic:ident, $args:ty, $pick:ident,
     $portable:ident<$($pg:tt),*>, $avx2:ident<$($ag:tt),*>, $avx512:ident<$($xg:tt),*>) => {
        /// The kernel compiled for the portable ISA.
        ///
        /// # Safety
        /// `a` satisfies the arguments' contract.
        #[inline(never)]
        #[allow(non_snake_case)]
        unsafe fn $portable(a: &$args) {
            // SAFETY: forwarded; Portable runs everywhere.
            unsafe { $generic::<$($pg),*>(a) }
        }

        /// The kernel compiled for AVX2.
        ///
        /// # Safety
        /// The CPU supports AVX2 and FMA; `a` satisfies the arguments' contract.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[inline(never)]
        #[allow(non_snake_case)]
        unsafe fn $avx2(a: &$args) {
            // SAFETY: forwarded from this function's contract.
            unsafe { $generic::<$($ag),*>(a) }
        }

        /// The kernel compiled for AVX-512.
        ///
        /// # Safety
        /// The CPU supports AVX-512F; `a` satisfies the arguments' contract.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        #[inline(never)]
        #[allow(non_snake_case)]
        unsafe fn $avx512(a: &$args) {
            // SAFETY: forwarded from this function's contract.
            unsafe { $generic::<$($xg),*>(a) }
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

pub(crate) mod depthwise;
pub(crate) mod polyphase;
pub(crate) mod winograd;

#[cfg(target_arch = "x86_64")]
use crate::isa::{Avx2, Avx512};
use crate::isa::{Isa, Portable, Simd};

/// Kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Direct convolution on the channel-blocked layout; the tile is `rows` output pixels
    /// of one output row × `vectors` vectors of output channels.
    Direct,
    /// GEMM microkernel for implicit GEMM and 1x1 convolution; the tile is `rows` output
    /// channels × `vectors` vectors of output pixels.
    Gemm,
}

/// Metadata of one generated kernel (one row of [`KERNELS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelInfo {
    /// Name, `<family>_<geometry>_<tile>`, e.g. `direct_k3x3s1_ow14_oc2v`.
    pub name: &'static str,
    /// Family.
    pub family: Family,
    /// Kernel size `[kh, kw]` the kernel is specialised for; `[0, 0]` means any.
    pub kernel: [usize; 2],
    /// Convolution stride the kernel is specialised for (0 for GEMM kernels).
    pub stride: usize,
    /// Tile rows: output pixels (direct) or output channels `mr` (GEMM).
    pub rows: usize,
    /// Tile vectors: output-channel vectors (direct) or pixel vectors `nr / lanes` (GEMM).
    pub vectors: usize,
    /// A direct kernel on one-channel input blocks (zero-padded NCHW planes, `c1_` in the
    /// name) instead of `L`-channel blocks.
    pub planar: bool,
    /// A GEMM kernel reading row `k` of B at `b + boffs[k]` (`_ind` in the name) instead of
    /// `b + k * ldb`.
    pub indirect: bool,
    /// Bit `i` set: instantiated for `Isa::ALL[i]`.
    isas: u8,
    /// Bit `i` set: on `Isa::ALL[i]` a tail of a wider GEMM tile only (see
    /// [`KernelInfo::is_tail`]).
    tail_isas: u8,
}

impl KernelInfo {
    /// Whether the kernel has an entry point for `isa` (tiles are sized to the register
    /// file: the widest tiles exist for AVX-512 only, some narrow ones for every ISA).
    pub fn has_isa(&self, isa: Isa) -> bool {
        self.isas & (1 << isa_index(isa)) != 0
    }

    /// Whether, on `isa`, the GEMM kernel is only a tail of a wider tile (`gemm_m8_n1v`
    /// of `gemm_m8_n3v` on AVX-512): it computes a GEMM's last partial panel and is never
    /// picked for a whole GEMM, unless forced.
    pub fn is_tail(&self, isa: Isa) -> bool {
        self.tail_isas & (1 << isa_index(isa)) != 0
    }

    /// Whether the kernel computes convolutions with this kernel size and stride.
    pub fn fits(&self, kernel: [usize; 2], stride: [usize; 2]) -> bool {
        self.family == Family::Direct
            && (self.kernel == [0, 0] || self.kernel == kernel)
            && stride == [self.stride, self.stride]
    }
}

/// Arguments of a direct-convolution kernel with tile `ow` pixels × `ocv` vectors (`L`
/// lanes each) of output channels.
///
/// Contract (all counts in floats):
/// - the input is channel-blocked, `[icb][rows][cols][L]`; `x` points at block 0, padded
///   row `oh * stride`, padded column `ow0 * stride`, lane 0, of the tile's first pixel.
///   For block `b < icb`, tap `t < ntaps`, pixel `r < ow`, lane `l < L` the kernel reads
///   `x[b * icb_stride + taps[t] + r * stride * L + l]`, all of which must be readable.
///   Planar kernels (`KernelInfo::planar`) read blocks of one channel, `[icb][rows][cols]`:
///   `x[b * icb_stride + taps[t] + r * stride]`, and `L` is 1 in the weight layout below;
/// - `taps` holds `ntaps` offsets (`(kh * dh * cols + kw * dw) * L`, or without the `* L`
///   for planar kernels; the `k3x3` kernels read exactly 9);
/// - `w` holds the packed weights `[icb][ntaps][L][ocv * L]`: for input channel
///   `b * L + l` and tap `t`, the `ocv * L` output channels of the tile;
/// - `bias` holds `ocv * L` floats;
/// - `out` holds the tile `[ow][ocv * L]` (pixel-major): read as the starting
///   accumulators if `accumulate` (else the accumulators start at `bias`), then written
///   back, `max(., 0)`-clamped if `relu`.
///
/// The kernel reads nothing else and writes nothing but `out[..ow * ocv * L]`. With
/// `accumulate`, a convolution can be summed over several calls (passes over input
/// blocks and tap chunks) in the same order as one call, bit for bit.
pub(crate) struct DirectArgs {
    pub x: *const f32,
    pub icb: usize,
    pub icb_stride: usize,
    pub taps: *const usize,
    pub ntaps: usize,
    pub w: *const f32,
    pub bias: *const f32,
    pub out: *mut f32,
    pub accumulate: bool,
    pub relu: bool,
}

/// Arguments of a GEMM microkernel with tile `mr` rows × `nrv` vectors (`L` lanes each):
/// `C[mr x nr] = (load_c ? C : bias) + A * B`, then `max(., 0)` if `relu`.
///
/// Contract (counts in floats):
/// - `a`: `k * mr` floats, packed `[k][mr]` (rows past the valid `m` are zero-padded);
/// - `b`: `k` rows of `nrv * L` readable floats, row `p` at `b + p * ldb`, or for the
///   indirect kernels (`KernelInfo::indirect`) at `b + boffs[p]` (`boffs` holds `k`
///   offsets; null for the others);
/// - `bias`: `mr` floats;
/// - `c`: rows `0..m` (`m <= mr`) of `n` floats (`n <= nrv * L`), row `i` at `c + i * ldc`;
///   read if `load_c`, always written; nothing else is touched.
pub(crate) struct GemmArgs {
    pub k: usize,
    pub a: *const f32,
    pub b: *const f32,
    pub ldb: usize,
    pub boffs: *const usize,
    pub bias: *const f32,
    pub c: *mut f32,
    pub ldc: usize,
    pub m: usize,
    pub n: usize,
    pub load_c: bool,
    pub relu: bool,
}

/// A direct kernel's entry point.
pub(crate) type DirectFn = unsafe fn(&DirectArgs);
/// A GEMM kernel's entry point.
pub(crate) type GemmFn = unsafe fn(&GemmArgs);

/// `Some(entry)` on x86-64, `None` elsewhere (the AVX entries do not exist there).
#[cfg(target_arch = "x86_64")]
macro_rules! x86_entry {
    ($f:ident) => {
        Some($f as _)
    };
}
#[cfg(not(target_arch = "x86_64"))]
macro_rules! x86_entry {
    ($f:ident) => {
        None
    };
}

/// Loads `N` vectors from `p`, the first `n` floats only (the rest are zero).
///
/// # Safety
/// The CPU supports `S`; `p..p + n` is readable.
#[inline(always)]
unsafe fn load_row<S: Simd, const N: usize>(p: *const f32, n: usize) -> [S::V; N] {
    let l = S::LANES;
    // SAFETY: vector v covers floats v*l.. of which only those below n are read.
    unsafe {
        std::array::from_fn(|v| {
            if (v + 1) * l <= n {
                S::load(p.add(v * l))
            } else if v * l < n {
                S::load_partial(p.add(v * l), n - v * l)
            } else {
                S::zero()
            }
        })
    }
}

/// Stores the first `n` floats of the `N` vectors `c` to `p`, after `max(., 0)` if `relu`.
///
/// # Safety
/// The CPU supports `S`; `p..p + n` is writable.
#[inline(always)]
unsafe fn store_row<S: Simd, const N: usize>(p: *mut f32, c: [S::V; N], n: usize, relu: bool) {
    let l = S::LANES;
    // SAFETY: vector v covers floats v*l.. of which only those below n are written.
    unsafe {
        for (v, mut x) in c.into_iter().enumerate() {
            if relu {
                x = S::max(x, S::zero());
            }
            if (v + 1) * l <= n {
                S::store(p.add(v * l), x);
            } else if v * l < n {
                S::store_partial(p.add(v * l), x, n - v * l);
            }
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// Index of `isa` in [`Isa::ALL`] (the column of the entry tables).
fn isa_index(isa: Isa) -> usize {
    Isa::ALL.iter().position(|&i| i == isa).unwrap_or(0)
}

/// The direct kernel `KERNELS[index]` compiled for `isa`, if it exists.
pub(crate) fn direct_entry(index: usize, isa: Isa) -> Option<DirectFn> {
    DIRECT_ENTRIES.iter().find(|e| e.0 == index).and_then(|e| e.1[isa_index(isa)])
}

/// The GEMM kernel `KERNELS[index]` compiled for `isa`, if it exists.
pub(crate) fn gemm_entry(index: usize, isa: Isa) -> Option<GemmFn> {
    GEMM_ENTRIES.iter().find(|e| e.0 == index).and_then(|e| e.1[isa_index(isa)])
}

/// The kernel a driver takes: the forced one if it `fits`, else the fitting kernel of
/// least `cost` (ties: registry order). Every driver's choice goes through here.
pub(crate) fn pick<C: Ord>(
    forced: Option<usize>,
    fits: impl Fn(usize, &KernelInfo) -> bool,
    cost: impl Fn(&KernelInfo) -> C,
) -> Option<usize> {
    match forced {
        Some(i) => fits(i, &KERNELS[i]).then_some(i),
        None => (0..KERNELS.len()).filter(|&i| fits(i, &KERNELS[i])).min_by_key(|&i| (cost(&KERNELS[i]), i)),
    }
}

/// Looks a kernel up by name.
pub fn kernel_index(name: &str) -> Option<usize> {
    KERNELS.iter().position(|k| k.name == name)
}

/// A block transpose entry: `(src, lds, rows, cols, dst, ldd)`, see [`Simd::transpose`].
pub(crate) type TransposeFn = unsafe fn(*const f32, usize, usize, usize, *mut f32, usize);

/// Instantiates [`Simd::transpose`] for one ISA as an `#[inline(never)]` entry point.
macro_rules! transpose_entry {
    ($name:ident, $token:ty $(, $feature:literal)?) => {
        /// [`Simd::transpose`] compiled for one ISA.
        ///
        /// # Safety
        /// The CPU supports the ISA; the arguments satisfy [`Simd::transpose`]'s contract.
        $(#[cfg(target_arch = "x86_64")] #[target_feature(enable = $feature)])?
        #[inline(never)]
        unsafe fn $name(src: *const f32, lds: usize, rows: usize, cols: usize, dst: *mut f32, ldd: usize) {
            // SAFETY: forwarded from this function's contract.
            unsafe { <$token>::transpose(src, lds, rows, cols, dst, ldd) }
        }
    };
}
transpose_entry!(transpose_portable, Portable);
#[cfg(target_arch = "x86_64")]
transpose_entry!(transpose_avx2, Avx2, "avx2,fma");
#[cfg(target_arch = "x86_64")]
transpose_entry!(transpose_avx512, Avx512, "avx512f");

/// The block transpose of `isa` (an `isa.lanes()`-square block).
pub(crate) fn transpose_entry(isa: Isa) -> TransposeFn {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => transpose_avx512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => transpose_avx2,
        _ => transpose_portable,
    }
}

/// The lane-shuffling [`Simd`] operations against their definitions, on every ISA the CPU
/// has.
#[cfg(test)]
mod simd_tests {
    use std::cell::RefCell;

    #[cfg(target_arch = "x86_64")]
    use crate::isa::{Avx2, Avx512};
    use crate::isa::{Isa, Portable, Simd};

    /// Checks `interleave`, `blend_from` and `deinterleave4` for `S`, pushing a message
    /// per wrong result.
    ///
    /// # Safety
    /// The CPU supports `S`.
    #[inline(always)]
    unsafe fn shuffles<S: Simd>(failures: &RefCell<Vec<String>>) {
        let l = S::LANES;
        let x: Vec<f32> = (0..4 * l).map(|i| i as f32).collect();
        let mut out = vec![0.0f32; 4 * l];
        let fail = |what: &str, got: &[f32], want: &[f32]| {
            if got != want {
                failures.borrow_mut().push(format!("{what} ({l} lanes): got {got:?}, want {want:?}"));
            }
        };
        // SAFETY: the caller guarantees the ISA; every load and store is inside `x` /
        // `out` (4L floats each).
        unsafe {
            let (a, b) = (S::load(x.as_ptr()), S::load(x.as_ptr().add(l)));
            let [lo, hi] = S::interleave(a, b);
            S::store(out.as_mut_ptr(), lo);
            S::store(out.as_mut_ptr().add(l), hi);
            let want: Vec<f32> = (0..2 * l).map(|i| x[(i % 2) * l + i / 2]).collect();
            fail("interleave", &out[..2 * l], &want);
            for s in 0..=l {
                S::store(out.as_mut_ptr(), S::blend_from(a, b, s));
                let want: Vec<f32> = (0..l).map(|i| if i < s { x[i] } else { x[l + i] }).collect();
                fail(&format!("blend_from {s}"), &out[..l], &want);
            }
            let v = [0, 1, 2, 3].map(|m| S::load(x.as_ptr().add(m * l)));
            for (e, phase) in S::deinterleave4(v).into_iter().enumerate() {
                S::store(out.as_mut_ptr().add(e * l), phase);
            }
            let want: Vec<f32> = (0..4 * l).map(|i| x[4 * (i % l) + i / l]).collect();
            fail("deinterleave4", &out, &want);
        }
    }

    entries!(
        shuffles,
        RefCell<Vec<String>>,
        shuffles_entry,
        shuffles_portable<Portable>,
        shuffles_avx2<Avx2>,
        shuffles_avx512<Avx512>
    );

    #[test]
    fn shuffles_match_their_definitions() {
        // As in the integration tests: a missing ISA is reported, and is a failure if
        // `SVERKA_REQUIRE_ISA` asks for it (or a higher level).
        let required = std::env::var("SVERKA_REQUIRE_ISA").ok().and_then(|v| Isa::parse(&v));
        for isa in Isa::ALL {
            if !isa.supports() {
                assert!(required.is_none_or(|r| isa > r), "SVERKA_REQUIRE_ISA: {isa} required but not supported");
                println!("skipping {isa}: not supported by this CPU");
                continue;
            }
            let failures = RefCell::new(Vec::new());
            // SAFETY: the CPU supports `isa`.
            unsafe { shuffles_entry(isa)(&failures) };
            assert!(failures.borrow().is_empty(), "{isa}: {:#?}", failures.borrow());
        }
    }
}
