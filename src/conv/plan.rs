//! [`Conv2dPlan`]: validate once, pick the algorithm and kernel, pre-pack the weights,
//! size the workspace; then run many times without allocating.
//!
//! Algorithms are tried in the order of [`Algorithm::ALL`], most specialised first; the
//! plan takes the first that accepts the problem (oneDNN's implementation list):
//!
//! | algorithm | accepts |
//! |---|---|
//! | [`Algorithm::Depthwise`] | `groups == in_channels == out_channels`, stride 1 |
//! | [`Algorithm::Gemm1x1`] | 1x1 kernel, stride 1, no padding (any groups) |
//! | [`Algorithm::Winograd`] | `groups == 1`, stride 1: 3x3 or a larger kernel whose 3x3 pieces save 1.5x (3x5, 5x5, 6x6); stride 2: kernels whose 3x3 pieces save 1.4x (sides multiples of 3: 3x3, 3x6, 6x6, ...); padding up to "same" (`(k - 1) / 2 * dilation`), at least `lanes / 2` input channels |
//! | [`Algorithm::PolyphaseWinograd`] | `groups == 1`, stride 2x2, no dilation, kernel sides up to 8 with `kh * kw >= 38` (7x7, 6x7, 8x8, ...), padding up to "same", fewer than `lanes / 2` input channels |
//! | [`Algorithm::IndirectGemm`] | `groups == 1`, column stride 1, fewer than `lanes / 2` input channels |
//! | [`Algorithm::Direct`] | `groups == 1`, stride 1x1 or 2x2, a generated tile for the ISA (channel-blocked from `lanes / 2` input channels, planar below) |
//! | [`Algorithm::ImplicitGemm`] | everything (any kernel, stride, dilation, padding, groups) |

use std::fmt;
use std::sync::Mutex;

use super::depthwise::Depthwise;
use super::direct::Direct;
use super::implicit_gemm::Gemm;
use super::indirect_gemm::Indirect;
use super::polyphase::Polyphase;
use super::winograd::Winograd;
use crate::error::{Error, check_len, try_zeroed};
use crate::isa::Isa;
use crate::kernels::{KERNELS, kernel_index};
use crate::spec::{Conv2dSpec, ConvGeom};

/// The convolution algorithms, in the order the planner tries them; a plan takes the first
/// that accepts its spec:
///
/// | algorithm | accepts |
/// |---|---|
/// | [`Algorithm::Depthwise`] | `groups == in_channels == out_channels`, stride 1 |
/// | [`Algorithm::Gemm1x1`] | 1x1 kernel, stride 1, no padding (any groups) |
/// | [`Algorithm::Winograd`] | `groups == 1`, stride 1: 3x3 or a larger kernel whose 3x3 pieces save 1.5x (3x5, 5x5, 6x6); stride 2: kernels whose 3x3 pieces save 1.4x (sides multiples of 3: 3x3, 3x6, 6x6, ...); padding up to "same" (`(k - 1) / 2 * dilation`), at least `lanes / 2` input channels |
/// | [`Algorithm::PolyphaseWinograd`] | `groups == 1`, stride 2x2, no dilation, kernel sides up to 8 with `kh * kw >= 38` (7x7, 6x7, 8x8, ...), padding up to "same", fewer than `lanes / 2` input channels |
/// | [`Algorithm::IndirectGemm`] | `groups == 1`, column stride 1, fewer than `lanes / 2` input channels |
/// | [`Algorithm::Direct`] | `groups == 1`, stride 1x1 or 2x2 (channel-blocked from `lanes / 2` input channels, planar below) |
/// | [`Algorithm::ImplicitGemm`] | everything (any kernel, stride, dilation, padding, groups) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// One vector kernel per channel plane (`groups == channels`), vectorised along rows.
    Depthwise,
    /// Direct convolution on the channel-blocked layout (`N, C/L, H, W, L`), or on
    /// zero-padded NCHW planes for few input channels, with pre-packed weights and register
    /// tiles of output pixels × output-channel vectors.
    Direct,
    /// 1x1 convolution as a GEMM whose `B` panels are row copies of the input (no im2col).
    Gemm1x1,
    /// GEMM over output rows for few input channels and column stride 1: `B` rows read in
    /// place from the zero-padded input planes through an offset table, output written as
    /// NCHW.
    IndirectGemm,
    /// Winograd F(2x2, 3x3) on the channel-blocked layout, larger kernels as 3x3 pieces:
    /// 2.25x fewer multiplications than direct convolution for 3x3 (1.56x for 5x5), the
    /// 16 products per tile done by the direct kernels; at stride 2 its polyphase form
    /// (5x5 patches, 25 products per tile: 1.44x fewer for 3x3).
    Winograd,
    /// Winograd F(2x2, 4x4) on the four phase planes of a stride-2 convolution with few
    /// input channels (the 7x7 stem): 25 products per output and input channel instead of
    /// `kh * kw` (1.96x fewer for 7x7), vectorised over tiles, the products kept in
    /// registers and folded into the output transform, output rows written in place.
    PolyphaseWinograd,
    /// Implicit GEMM: cache-sized panels of the unfolded input packed on the fly
    /// (BLIS-style KC/NC blocking), never a full im2col matrix. Handles every spec.
    ImplicitGemm,
}

impl Algorithm {
    /// Every algorithm, in the order the planner tries them.
    pub const ALL: [Algorithm; 7] = [
        Algorithm::Depthwise,
        Algorithm::Gemm1x1,
        Algorithm::Winograd,
        Algorithm::PolyphaseWinograd,
        Algorithm::IndirectGemm,
        Algorithm::Direct,
        Algorithm::ImplicitGemm,
    ];

    /// Short name, e.g. `"direct"`.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Depthwise => "depthwise",
            Algorithm::Direct => "direct",
            Algorithm::Gemm1x1 => "gemm1x1",
            Algorithm::Winograd => "winograd",
            Algorithm::PolyphaseWinograd => "polyphase_winograd",
            Algorithm::IndirectGemm => "indirect_gemm",
            Algorithm::ImplicitGemm => "implicit_gemm",
        }
    }

    /// Whether the algorithm can compute `g` with `isa`'s kernels.
    fn accepts(self, g: &ConvGeom, isa: Isa) -> bool {
        match self {
            Algorithm::Depthwise => Depthwise::accepts(g),
            Algorithm::Direct => Direct::accepts(g, isa, None),
            Algorithm::Gemm1x1 => Gemm::accepts_1x1(g),
            Algorithm::Winograd => Winograd::accepts(g, isa, None),
            Algorithm::PolyphaseWinograd => Polyphase::accepts(g, isa),
            Algorithm::IndirectGemm => Indirect::accepts(g, isa, None),
            Algorithm::ImplicitGemm => true,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The chosen algorithm with its packed weights and workspace.
enum Algo {
    Depthwise(Depthwise),
    Direct(Direct),
    Gemm(Gemm),
    Winograd(Winograd),
    Polyphase(Polyphase),
    Indirect(Indirect),
}

/// A zeroed `f32` buffer whose first element is 64-byte aligned (a cache line, an AVX-512
/// vector), so that the kernels' full-vector loads of packed weights, blocked input and
/// scratch tiles never straddle two cache lines.
#[derive(Default)]
pub(crate) struct Aligned {
    data: Vec<f32>,
    offset: usize,
    len: usize,
}

impl Aligned {
    /// `len` zeros, fallibly allocated.
    pub(crate) fn zeroed(len: usize) -> Result<Aligned, Error> {
        const LINE: usize = 64 / std::mem::size_of::<f32>();
        let data = try_zeroed(len.checked_add(LINE - 1).ok_or(Error::Overflow { what: "aligned buffer" })?)?;
        let offset = data.as_ptr().align_offset(64).min(LINE - 1);
        Ok(Aligned { data, offset, len })
    }
}

impl std::ops::Deref for Aligned {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.data[self.offset..self.offset + self.len]
    }
}

impl std::ops::DerefMut for Aligned {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.data[self.offset..self.offset + self.len]
    }
}

/// Per-thread scratch buffers: a task locks slot `thread index % slots`. Locks are never
/// held across a rayon call, so a slot shared by two threads only serialises them.
pub(crate) struct Slots(Vec<Mutex<Aligned>>);

impl Slots {
    /// One slot of `len` floats per thread of the current rayon pool.
    pub(crate) fn new(len: usize) -> Result<Slots, Error> {
        let n = rayon::current_num_threads().max(1);
        (0..n).map(|_| Aligned::zeroed(len).map(Mutex::new)).collect::<Result<Vec<_>, _>>().map(Slots)
    }

    /// Runs `f` with this thread's scratch buffer.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let i = rayon::current_thread_index().unwrap_or(0) % self.0.len();
        // A poisoned slot only means another task panicked mid-way; the buffer is scratch
        // whose contents are always rewritten before use.
        let mut guard = self.0[i].lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// A raw output pointer shared by parallel tasks that write disjoint elements.
#[derive(Clone, Copy)]
pub(crate) struct OutPtr(pub *mut f32);

impl OutPtr {
    /// `self + offset`.
    ///
    /// # Safety
    /// `offset` is inside the output slice the pointer was taken from.
    pub(crate) unsafe fn add(self, offset: usize) -> *mut f32 {
        // SAFETY: forwarded from the caller.
        unsafe { self.0.add(offset) }
    }
}

/// How many floats `ptr + offset` lies past a multiple of `l` floats (`l` a power of two
/// up to 16). When it is 0 a vector of `l` floats there is aligned to its size, so inside
/// one cache line. Address arithmetic only, nothing is dereferenced.
pub(crate) fn misalignment(ptr: *const f32, offset: usize, l: usize) -> usize {
    (ptr.addr() / std::mem::size_of::<f32>()).wrapping_add(offset) % l
}

// SAFETY: OutPtr is only dereferenced by tasks that write disjoint index sets of one
// `&mut [f32]` borrowed for the whole parallel region (each driver documents its split).
unsafe impl Send for OutPtr {}
// SAFETY: as above; shared references only copy the pointer.
unsafe impl Sync for OutPtr {}

/// Options of a plan: see [`Conv2dPlan::builder`].
#[derive(Clone, Debug)]
pub struct Conv2dPlanBuilder {
    spec: Conv2dSpec,
    relu: bool,
    isa: Option<Isa>,
    algorithm: Option<Algorithm>,
    kernel: Option<String>,
}

impl Conv2dPlanBuilder {
    /// Fuses `max(., 0)` into the output (inference).
    pub fn relu(mut self, relu: bool) -> Self {
        self.relu = relu;
        self
    }

    /// Uses `isa` instead of [`Isa::active`]; building fails if the CPU lacks it.
    pub fn isa(mut self, isa: Isa) -> Self {
        self.isa = Some(isa);
        self
    }

    /// Forces an algorithm; building fails if it does not accept the spec.
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// Forces a generated kernel by name (see [`crate::kernels::KERNELS`]); building fails
    /// if it does not fit the spec and ISA.
    pub fn kernel(mut self, name: &str) -> Self {
        self.kernel = Some(name.to_string());
        self
    }

    /// Validates the spec and weights, plans and packs.
    pub fn build(self, weight: &[f32], bias: Option<&[f32]>) -> Result<Conv2dPlan, Error> {
        let g = self.spec.geometry()?;
        check_len("weight", weight, g.weight_len)?;
        if let Some(b) = bias {
            check_len("bias", b, g.out_c)?;
        }
        let isa = match self.isa {
            Some(isa) if !isa.supports() => {
                return Err(Error::Unsupported { what: format!("ISA {isa} on this CPU") });
            }
            Some(isa) => isa,
            None => Isa::active(),
        };
        let kernel = match &self.kernel {
            Some(name) => {
                Some(kernel_index(name).ok_or_else(|| Error::Unsupported { what: format!("unknown kernel {name}") })?)
            }
            None => None,
        };
        let forced = match (self.algorithm, kernel) {
            (Some(a), _) => Some(a),
            (None, Some(k)) if KERNELS[k].family == crate::kernels::Family::Direct => Some(Algorithm::Direct),
            (None, Some(k)) if KERNELS[k].indirect => Some(Algorithm::IndirectGemm),
            (None, Some(_)) if Algorithm::Gemm1x1.accepts(&g, isa) => Some(Algorithm::Gemm1x1),
            (None, Some(_)) => Some(Algorithm::ImplicitGemm),
            (None, None) => None,
        };
        let (algorithm, algo) = match forced {
            Some(a) => (a, self.make(a, &g, isa, kernel)?),
            // The first algorithm that accepts the spec and can be planned: one that
            // declines at planning time (a padded copy far larger than the image, with
            // huge padding or dilation; a workspace that overflows or cannot be
            // allocated) falls through to the next, down to the implicit GEMM, whose
            // workspace is cache-sized.
            None => {
                let mut planned = Err(Error::Unsupported { what: format!("no algorithm for {}", self.spec) });
                for a in Algorithm::ALL.into_iter().filter(|a| a.accepts(&g, isa)) {
                    planned = self.make(a, &g, isa, None).map(|algo| (a, algo));
                    if planned.is_ok() {
                        break;
                    }
                }
                planned?
            }
        };
        let mut plan = Conv2dPlan { spec: self.spec, geom: g, isa, relu: self.relu, algorithm, algo };
        plan.set_weights(weight, bias)?;
        Ok(plan)
    }

    /// Plans `algorithm` (with the forced `kernel`, if any) for `g`.
    fn make(&self, algorithm: Algorithm, g: &ConvGeom, isa: Isa, kernel: Option<usize>) -> Result<Algo, Error> {
        let unsupported =
            || Error::Unsupported { what: format!("{algorithm} (kernel {:?}, {isa}) for {}", self.kernel, self.spec) };
        Ok(match algorithm {
            Algorithm::Depthwise if kernel.is_none() && Depthwise::accepts(g) => {
                Algo::Depthwise(Depthwise::new(g, isa)?)
            }
            Algorithm::Direct if Direct::accepts(g, isa, kernel) => Algo::Direct(Direct::new(g, isa, kernel)?),
            Algorithm::IndirectGemm if Indirect::accepts(g, isa, kernel) => {
                Algo::Indirect(Indirect::new(g, isa, kernel)?)
            }
            Algorithm::Winograd if Winograd::accepts(g, isa, kernel) => Algo::Winograd(Winograd::new(g, isa, kernel)?),
            Algorithm::PolyphaseWinograd if kernel.is_none() && Polyphase::accepts(g, isa) => {
                Algo::Polyphase(Polyphase::new(g, isa)?)
            }
            Algorithm::Gemm1x1 | Algorithm::ImplicitGemm if algorithm.accepts(g, isa) => {
                Algo::Gemm(Gemm::new(g, isa, algorithm == Algorithm::Gemm1x1, kernel).ok_or_else(unsupported)??)
            }
            _ => return Err(unsupported()),
        })
    }
}

/// A planned 2-D convolution: algorithm and kernel chosen, weights packed, workspace
/// allocated. [`Conv2dPlan::run`] then validates only slice lengths and allocates nothing.
///
/// ```
/// use sverka::{Conv2dPlan, Conv2dSpec, Padding};
/// let spec = Conv2dSpec {
///     batch: 1, in_channels: 16, out_channels: 32, input: [20, 20], kernel: [3, 3],
///     stride: [1, 1], padding: Padding::uniform(1), dilation: [1, 1], groups: 1,
/// };
/// let weight = vec![0.01; spec.weight_len()?];
/// let mut plan = Conv2dPlan::new(&spec, &weight, None)?;
/// let input = vec![1.0; spec.input_len()?];
/// let mut output = vec![0.0; spec.output_len()?];
/// plan.run(&input, &mut output)?;
/// assert!((output[21] - 16.0 * 9.0 * 0.01).abs() < 1e-4);
/// println!("{plan}"); // e.g. "direct_k3x3s1_ow14_oc2v/avx512 for n1c16k32..."
/// # Ok::<(), sverka::Error>(())
/// ```
pub struct Conv2dPlan {
    spec: Conv2dSpec,
    geom: ConvGeom,
    isa: Isa,
    relu: bool,
    algorithm: Algorithm,
    algo: Algo,
}

impl Conv2dPlan {
    /// Plans `spec` with `weight` (`[out_c, in_c / groups, kh, kw]`) and optional `bias`.
    pub fn new(spec: &Conv2dSpec, weight: &[f32], bias: Option<&[f32]>) -> Result<Conv2dPlan, Error> {
        Conv2dPlan::builder(spec).build(weight, bias)
    }

    /// Like [`Conv2dPlan::new`], with `max(., 0)` fused into the output (inference).
    pub fn with_relu(spec: &Conv2dSpec, weight: &[f32], bias: Option<&[f32]>) -> Result<Conv2dPlan, Error> {
        Conv2dPlan::builder(spec).relu(true).build(weight, bias)
    }

    /// A builder to set fused ReLU or force an ISA, algorithm or kernel (tests, benches).
    pub fn builder(spec: &Conv2dSpec) -> Conv2dPlanBuilder {
        Conv2dPlanBuilder { spec: *spec, relu: false, isa: None, algorithm: None, kernel: None }
    }

    /// Re-packs new weights (and bias) without re-planning, e.g. after a training step.
    pub fn set_weights(&mut self, weight: &[f32], bias: Option<&[f32]>) -> Result<(), Error> {
        check_len("weight", weight, self.geom.weight_len)?;
        if let Some(b) = bias {
            check_len("bias", b, self.geom.out_c)?;
        }
        match &mut self.algo {
            Algo::Depthwise(a) => a.set_weights(weight, bias),
            Algo::Direct(a) => a.set_weights(&self.geom, weight, bias),
            Algo::Gemm(a) => a.set_weights(&self.geom, weight, bias),
            Algo::Winograd(a) => a.set_weights(&self.geom, weight, bias),
            Algo::Polyphase(a) => a.set_weights(&self.geom, weight, bias),
            Algo::Indirect(a) => a.set_weights(&self.geom, weight, bias),
        }
        Ok(())
    }

    /// Computes `output = conv(input) + bias` (then ReLU if fused), in rayon's current
    /// pool. Bitwise identical results for any number of threads.
    pub fn run(&mut self, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
        check_len("input", input, self.geom.input_len)?;
        check_len("output", output, self.geom.output_len)?;
        let (g, relu) = (&self.geom, self.relu);
        match &mut self.algo {
            Algo::Depthwise(a) => a.run(g, input, output, relu),
            Algo::Direct(a) => a.run(g, input, output, relu),
            Algo::Gemm(a) => a.run(g, input, output, relu),
            Algo::Winograd(a) => a.run(g, input, output, relu),
            Algo::Polyphase(a) => a.run(g, input, output, relu),
            Algo::Indirect(a) => a.run(g, input, output, relu),
        }
        Ok(())
    }

    /// The spec this plan computes.
    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }

    /// The chosen algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The ISA the kernels run with.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The generated kernel's name, or the hand-written kernel's: `"depthwise"`, or
    /// `"polyphase_f24"` for polyphase Winograd.
    pub fn kernel(&self) -> &'static str {
        match &self.algo {
            Algo::Depthwise(_) => "depthwise",
            Algo::Direct(a) => KERNELS[a.kernel()].name,
            Algo::Gemm(a) => KERNELS[a.kernel()].name,
            Algo::Winograd(a) => KERNELS[a.kernel()].name,
            Algo::Polyphase(_) => "polyphase_f24",
            Algo::Indirect(a) => KERNELS[a.kernel()].name,
        }
    }
}

impl fmt::Display for Conv2dPlan {
    /// `algorithm:kernel/isa for <spec>`, e.g. `direct:direct_k3x3s1_ow14_oc2v/avx512 for n1c64...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}{} for {}",
            self.algorithm,
            self.kernel(),
            self.isa,
            if self.relu { "+relu" } else { "" },
            self.spec
        )
    }
}

impl fmt::Debug for Conv2dPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conv2dPlan({self})")
    }
}
