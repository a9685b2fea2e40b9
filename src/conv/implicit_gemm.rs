//! Implicit GEMM (any convolution) and 1x1 convolution as GEMM, per group.
//!
//! Per image `n` and group `g`: `C[M x P] = A[M x K] * B[K x P]` with `M` output channels,
//! `P = oh * ow` output pixels (the NCHW output plane, so `C` is written in place) and
//! `K = ic_per_group * kh * kw`; `B[(ic, i, j)][(y, x)] = input[ic][y*sh + i*dh - pt][x*sw +
//! j*dw - pl]` (zero outside) is never materialised whole: a `KC x NC` block of it is packed
//! into the task's scratch at a time. For a 1x1 kernel, stride 1, no padding, `B` *is* the
//! input plane: each `KC x NR` micro-panel is copied contiguous, row by row. (Read in
//! place instead, every row of a micro-panel lies on another 4 KiB page, `P` floats
//! apart, and vector loads from an unaligned input straddle cache lines. S5 at one
//! thread, interleaved pairs: 0.65-0.68 ms in place from a `Vec`; 0.600 ms median in
//! place with the panels shifted to the input's alignment, 0.573 copied.)
//!
//! Blocking (BLIS, the microkernel is `MR x NR`, `A` broadcast, `B` vector-loaded):
//!
//! ```text
//! LOOP 5  for each task (n, g, NC pixels)        in parallel
//! LOOP 4    for kc0 in 0..K step KC              pack B[kc0.., NC]  (KC*NC in L2)
//! LOOP 3      for mc0 in 0..M step MC            A[mc0.., kc0..] pre-packed (MC*KC in L2)
//! LOOP 2        for each NR panel of the NC      B panel KC*NR stays in L1
//! LOOP 1          for each MR tile of the MC     microkernel, C += A*B
//! ```
//!
//! `KC` fills half of L1 with one `B` panel, `MC` half of L2 with `A`, `NC` a quarter of
//! L2 with the packed `B` block, capped at `NC_CAP` panels (TLB reach of the row-major
//! block) and shrunk so that there are 4 tasks per thread. The 1x1 path, whose packing is
//! a copy of contiguous micro-panels, takes one panel a task while all of `A` fits in half
//! of L2 (each task streams all of `A`); `tasks::for_each` steals single tasks, so the
//! threads end within one panel of each other, which matters because a woken worker
//! starts its first task some microseconds after the caller (10-25 us on some machines;
//! S5, 2 threads, 6 interleaved pairs, medians: 0.389 -> 0.382 ms against blocks of 3
//! panels). The last panel of a plane, if partial, runs on the tail
//! tile of just the vectors it has (`gemm_m8_n1v` for the 16 pixels past S5's 16 panels
//! of 48: one thread, interleaved pairs, ~3% faster). The per-element summation order
//! depends only on `KC`, never on the task split or the tile, so results are identical for
//! any thread count.

use rayon::prelude::*;

use super::plan::{Aligned, OutPtr, Slots};
use crate::error::{Error, try_zeroed};
use crate::isa::{Isa, cache_sizes};
use crate::kernels::{Family, GemmArgs, GemmFn, KERNELS, KernelInfo, gemm_entry, pick};
use crate::spec::{ConvGeom, product};

/// Largest pixel block, in panels. The packed block is `kc` rows `nc` floats apart, so a
/// micro-panel touches `kc` rows spread over `kc * nc * 4` bytes: more than ~8 panels of 48
/// put its rows on more 4 KiB pages than the L1 TLB holds (S8 measured 1.91 ms at 8
/// panels, 2.06 ms at 4 and 1.98 ms at 16).
const NC_CAP: usize = 8;

/// A planned implicit GEMM.
pub(crate) struct Gemm {
    kernel: usize,
    /// `entries[v - 1]` computes `v` vectors of pixels: the tails of the kernel's tile,
    /// then the kernel itself.
    entries: Vec<GemmFn>,
    mr: usize,
    nr: usize,
    /// 1x1, stride 1, no padding: `B`'s rows are runs of the input planes.
    copy_rows: bool,
    /// GEMM sizes per group.
    m: usize,
    k: usize,
    p: usize,
    kc: usize,
    mc: usize,
    nc: usize,
    m_tiles: usize,
    /// `[group][m tile][K][MR]`, zero-padded rows.
    a: Aligned,
    /// `[group][m tile][MR]`.
    bias: Vec<f32>,
    /// With a column stride `sw > 1`: the input with each row split into its `sw` column
    /// phases (`row[i]` at `(i % sw) * ceil(iw / sw) + i / sw`), so that packing copies
    /// contiguous runs. Empty for stride 1.
    phased: Aligned,
    /// Row length of the input the packing reads (`iw`, or `min(sw, iw) * wp`).
    row_len: usize,
    /// Length of one column phase of a phase-split row (`ceil(iw / sw)`).
    wp: usize,
    slots: Slots,
}

impl Gemm {
    /// 1x1 kernel, stride 1, no padding: `B` is the input itself.
    pub(crate) fn accepts_1x1(g: &ConvGeom) -> bool {
        [g.h, g.w].iter().all(|a| a.kernel == 1 && a.stride == 1 && a.pad_begin == 0 && a.pad_end == 0)
    }

    /// Plans `g`; `None` if the forced kernel is not a GEMM kernel of `isa`.
    pub(crate) fn new(g: &ConvGeom, isa: Isa, copy_rows: bool, forced: Option<usize>) -> Option<Result<Gemm, Error>> {
        let lanes = isa.lanes();
        let (m, k, p) = (g.out_c / g.groups, g.in_c / g.groups * g.h.kernel * g.w.kernel, g.h.output * g.w.output);
        let gemm = |i: usize, k: &KernelInfo| k.family == Family::Gemm && !k.indirect && gemm_entry(i, isa).is_some();
        // Tail tiles only when forced.
        let fits = |i: usize, k: &KernelInfo| gemm(i, k) && (forced == Some(i) || !k.is_tail(isa));
        // The work computed: rows padded to MR, full panels of NR pixels, and the last
        // partial panel on its tail tile (whole vectors).
        let kernel = pick(forced, fits, |k| {
            let (mr, nr) = (k.rows, k.vectors * lanes);
            let pixels = p / nr * nr + (p % nr).div_ceil(lanes) * lanes;
            (m.div_ceil(mr) * mr) as u128 * pixels as u128
        })?;
        let tile = (KERNELS[kernel].rows, KERNELS[kernel].vectors);
        // The kernel's tails: the same rows, fewer vectors. The generator emits them all;
        // if one were missing the kernel itself (which also computes partial panels) would
        // stand in, at the cost of speed only.
        let entries = (1..=tile.1)
            .map(|v| {
                let tail = (0..KERNELS.len()).find_map(|i| {
                    let t = &KERNELS[i];
                    let found = gemm(i, t) && (t.rows, t.vectors) == (tile.0, v);
                    found.then(|| gemm_entry(i, isa)).flatten()
                });
                debug_assert!(tail.is_some(), "no {}-vector tail of {}", v, KERNELS[kernel].name);
                tail.or_else(|| gemm_entry(kernel, isa))
            })
            .collect::<Option<Vec<GemmFn>>>()?;
        Some(Gemm::with_kernel(g, kernel, entries, lanes, copy_rows, (m, k, p)))
    }

    fn with_kernel(
        g: &ConvGeom,
        kernel: usize,
        entries: Vec<GemmFn>,
        lanes: usize,
        copy_rows: bool,
        (m, k, p): (usize, usize, usize),
    ) -> Result<Gemm, Error> {
        let (mr, nr) = (KERNELS[kernel].rows, KERNELS[kernel].vectors * lanes);
        let (l1, l2) = cache_sizes();
        let f = std::mem::size_of::<f32>();
        // KC: one KC x NR panel of B in half of L1, then evened out over K.
        let kc = (l1 / 2 / (nr * f)).max(16).min(k);
        let kc = k.div_ceil(k.div_ceil(kc));
        // MC: an MC x KC block of A in half of L2.
        let mc = (l2 / 2 / (kc * f) / mr * mr).max(mr);
        // NC: one panel for 1x1 while all of A fits in half of L2 (a task streams all of A
        // for its panels); otherwise the packed KC x NC block of B in a quarter of L2, at
        // most NC_CAP panels, and at least 4 tasks per thread when the image count is small.
        let one_panel = copy_rows && m.saturating_mul(k).saturating_mul(f) <= l2 / 2;
        let nc = if one_panel {
            nr
        } else {
            let nc_cache = (l2 / 4 / (kc * f) / nr * nr).max(nr);
            let tasks_wanted = (4 * rayon::current_num_threads()).div_ceil(g.batch * g.groups);
            let nc_split = p.div_ceil(tasks_wanted).div_ceil(nr) * nr;
            nc_cache.min(nc_split).min(NC_CAP * nr).max(nr)
        };
        let m_tiles = m.div_ceil(mr);
        // Phases at or past `iw` would be empty: a stride above the width keeps `iw` phases.
        let wp = g.w.input.div_ceil(g.w.stride);
        let row_len = if g.w.stride > 1 { g.w.stride.min(g.w.input) * wp } else { g.w.input };
        Ok(Gemm {
            kernel,
            entries,
            mr,
            nr,
            copy_rows,
            m,
            k,
            p,
            kc,
            mc,
            nc,
            m_tiles,
            a: Aligned::zeroed(product("packed weights", &[g.groups, m_tiles, k, mr])?)?,
            bias: try_zeroed(product("packed bias", &[g.groups, m_tiles, mr])?)?,
            slots: Slots::new(product("gemm scratch", &[kc, nc])?)?,
            phased: Aligned::zeroed(if g.w.stride > 1 {
                product("phased input", &[g.batch, g.in_c, g.h.input, row_len])?
            } else {
                0
            })?,
            row_len,
            wp,
        })
    }

    /// Index of the kernel in `KERNELS`.
    pub(crate) fn kernel(&self) -> usize {
        self.kernel
    }

    /// Packs `weight` (`[groups * M][K]` row-major) into `[group][m tile][K][MR]`.
    pub(crate) fn set_weights(&mut self, g: &ConvGeom, weight: &[f32], bias: Option<&[f32]>) {
        let (mr, k, m) = (self.mr, self.k, self.m);
        for (i, dst) in self.a.iter_mut().enumerate() {
            let r = i % mr;
            let kk = (i / mr) % k;
            let tile = i / (mr * k);
            let (grp, t) = (tile / self.m_tiles, tile % self.m_tiles);
            let row = t * mr + r;
            *dst = if row < m { weight[(grp * m + row) * k + kk] } else { 0.0 };
        }
        for (i, dst) in self.bias.iter_mut().enumerate() {
            let r = i % mr;
            let tile = i / mr;
            let (grp, t) = (tile / self.m_tiles, tile % self.m_tiles);
            let row = t * mr + r;
            *dst = if row < m { bias.map_or(0.0, |b| b[grp * m + row]) } else { 0.0 };
        }
        debug_assert_eq!(self.a.len(), g.groups * self.m_tiles * k * mr);
    }

    /// Runs the convolution (lengths checked by the plan).
    pub(crate) fn run(&mut self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let blocks = self.p.div_ceil(self.nc);
        let out = OutPtr(output.as_mut_ptr());
        let (sw, wp) = (g.w.stride, self.wp);
        if sw > 1 {
            self.phased.par_chunks_mut(self.row_len).zip(input.par_chunks(g.w.input)).for_each(|(dst, src)| {
                for (phase, run) in dst.chunks_exact_mut(wp).enumerate() {
                    for (d, &v) in run.iter_mut().zip(src.iter().skip(phase).step_by(sw)) {
                        *d = v;
                    }
                }
            });
        }
        let input = if sw > 1 { &self.phased[..] } else { input };
        let this = &*self;
        super::tasks::for_each(g.batch * g.groups * blocks, |task| {
            let (image, b) = (task / blocks, task % blocks);
            let (n, grp) = (image / g.groups, image % g.groups);
            this.slots.with(|buf| this.task(g, input, out, relu, n, grp, b * this.nc, buf));
        });
    }

    /// One task: image `n`, group `grp`, pixels `p0..p0 + NC`.
    #[allow(clippy::too_many_arguments)]
    fn task(
        &self,
        g: &ConvGeom,
        input: &[f32],
        out: OutPtr,
        relu: bool,
        n: usize,
        grp: usize,
        p0: usize,
        buf: &mut [f32],
    ) {
        let (mr, nr, kc, p) = (self.mr, self.nr, self.kc, self.p);
        // Floats per vector: the tile is NR floats in `entries.len()` vectors.
        let lanes = nr / self.entries.len();
        let icg = g.in_c / g.groups;
        let plane = g.h.input * self.row_len;
        let image = &input[(n * g.in_c + grp * icg) * plane..][..icg * plane];
        let pixels = self.nc.min(p - p0);
        let panels = pixels.div_ceil(nr);
        let a_group = &self.a[grp * self.m_tiles * self.k * mr..][..self.m_tiles * self.k * mr];
        // LOOP 4: KC slices of K.
        for kc0 in (0..self.k).step_by(kc) {
            let kcl = kc.min(self.k - kc0);
            // Pack the B block: 1x1, each micro-panel jr contiguous at jr * kcl * NR, rows
            // NR apart (a row copy from the input plane); otherwise kcl rows of `ld`
            // pixels (micro-panel jr is the column range jr*NR.., rows `ld` apart).
            let ld = panels * nr;
            if self.copy_rows {
                for (jr, dst) in buf[..panels * kcl * nr].chunks_exact_mut(kcl * nr).enumerate() {
                    let (q0, valid) = (p0 + jr * nr, nr.min(pixels - jr * nr));
                    for (kk, row) in dst.chunks_exact_mut(nr).enumerate() {
                        let src = &image[(kc0 + kk) * plane + q0..][..valid];
                        // An inline loop: the runs are short, a memcpy call costs more.
                        for (d, &v) in row.iter_mut().zip(src) {
                            *d = v;
                        }
                        row[valid..].fill(0.0);
                    }
                }
            } else {
                self.pack(g, image, &mut buf[..kcl * ld], ld, kc0, p0, pixels);
            }
            // LOOP 3: MC blocks of M.
            for mc0 in (0..self.m).step_by(self.mc) {
                let mcl = self.mc.min(self.m - mc0);
                // LOOP 2: NR panels.
                for jr in 0..panels {
                    let (q0, valid) = (p0 + jr * nr, nr.min(pixels - jr * nr));
                    // The narrowest tile that covers the panel's valid pixels.
                    let entry = self.entries[valid.div_ceil(lanes) - 1];
                    let (b, ldb) = if self.copy_rows {
                        (buf[jr * kcl * nr..].as_ptr(), nr)
                    } else {
                        (buf[jr * nr..].as_ptr(), ld)
                    };
                    // LOOP 1: MR tiles.
                    for t in mc0 / mr..(mc0 + mcl).div_ceil(mr) {
                        let row0 = grp * self.m + t * mr;
                        let args = GemmArgs {
                            k: kcl,
                            a: a_group[(t * self.k + kc0) * mr..].as_ptr(),
                            b,
                            ldb,
                            boffs: std::ptr::null(),
                            bias: self.bias[(grp * self.m_tiles + t) * mr..][..mr].as_ptr(),
                            // SAFETY (pointer arithmetic): row0 < out_c and q0 < P, so the
                            // offset is inside the output slice the plan checked.
                            c: unsafe { out.add((n * g.out_c + row0) * p + q0) },
                            ldc: p,
                            m: mr.min(self.m - t * mr),
                            n: valid,
                            load_c: kc0 > 0,
                            relu: relu && kc0 + kcl == self.k,
                        };
                        // SAFETY: the entry is for the plan's ISA, which the CPU supports,
                        // a tile of MR rows and v <= NR / L vectors, v * L >= valid. A:
                        // the tile's K x MR panel from kc0 holds >= kcl * MR floats. B:
                        // kcl rows `ldb` apart of v * L <= NR floats inside the packed block
                        // (panel-major: panels * kcl * NR floats; row-major: columns
                        // jr*NR.. + NR of rows ld = panels * NR long). C: rows below m
                        // (< M of this group) and columns below valid (< P - q0) of image
                        // n, a region only this task (n, group, pixel block) writes.
                        unsafe { entry(&args) };
                    }
                }
            }
        }
    }

    /// Packs rows `kc0..kc0 + dst.len() / ld` of `B` for pixels `q0..q0 + valid` into
    /// `dst` (`[row][ld]`, zero beyond `valid`).
    #[allow(clippy::too_many_arguments)]
    fn pack(&self, g: &ConvGeom, image: &[f32], dst: &mut [f32], ld: usize, kc0: usize, q0: usize, valid: usize) {
        let (h, w) = (g.h, g.w);
        let (kh, kw) = (h.kernel, w.kernel);
        let plane = h.input * self.row_len;
        let wp = self.wp;
        for (kk, row) in dst.chunks_exact_mut(ld).enumerate() {
            let kidx = kc0 + kk;
            let (ic, i, j) = (kidx / (kh * kw), (kidx / kw) % kh, kidx % kw);
            let src = &image[ic * plane..][..plane];
            row[valid..].fill(0.0);
            // Columns x with 0 <= x*s + j*d - pl < IW form the range lo..hi; input column
            // x*s + dc (dc = j*d - pl) is phase dc mod s, index x + floor(dc / s) of the
            // phase-split row (stride 1: the row itself).
            let off = j * w.dilation;
            let lo_all = w.pad_begin.saturating_sub(off).div_ceil(w.stride);
            let hi_all = (w.input + w.pad_begin).saturating_sub(off).div_ceil(w.stride);
            // In i128: strides and offsets may exceed isize (a valid spec with a stride of
            // usize::MAX has one output column).
            let dc = off as i128 - w.pad_begin as i128;
            let s = w.stride as i128;
            let (phase, base) = (dc.rem_euclid(s) as usize, dc.div_euclid(s));
            // Walk the pixels in segments of one output row each.
            let (mut y, mut x0) = (q0 / w.output, q0 % w.output);
            let mut q = 0;
            while q < valid {
                let len = (w.output - x0).min(valid - q);
                let seg = &mut row[q..q + len];
                let iy = (y * h.stride + i * h.dilation).checked_sub(h.pad_begin).filter(|&iy| iy < h.input);
                match iy {
                    None => seg.fill(0.0),
                    Some(iy) => {
                        let lo = lo_all.clamp(x0, x0 + len);
                        let hi = hi_all.clamp(lo, x0 + len);
                        seg[..lo - x0].fill(0.0);
                        seg[hi - x0..].fill(0.0);
                        if lo < hi {
                            // lo < hi: input column lo*s + dc = (lo + base)*s + phase is
                            // in 0..IW, so lo + base >= 0 and phase < IW.
                            let start = (lo as i128 + base) as usize + phase * wp;
                            let src_row = &src[iy * self.row_len..][..self.row_len];
                            // An inline loop: the runs are short, a memcpy call costs more.
                            for (d, &v) in seg[lo - x0..hi - x0].iter_mut().zip(&src_row[start..start + hi - lo]) {
                                *d = v;
                            }
                        }
                    }
                }
                q += len;
                (y, x0) = (y + 1, 0);
            }
        }
    }
}
