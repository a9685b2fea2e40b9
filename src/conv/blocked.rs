//! The channel-blocked image layout shared by the direct and Winograd drivers, and the
//! way back from a pixel-major output tile to NCHW.
//!
//! ```text
//! input   NCHW  --reorder-->  blocked [n][icb][rows][cols][L]   zero padding included
//! output  scratch [rows][OWpad][OB] (pixel-major)  --L x L transposes-->  NCHW
//! ```
//!
//! `rows`/`cols` are the padded input plus whatever the last (partial) tiles of a driver
//! read, so kernels never need a bounds check. Only the interior is ever written; the
//! padding stays zero from the allocation.

use std::ops::Range;
use std::sync::Mutex;

use super::plan::{Aligned, OutPtr, Slots, misalignment};
use crate::error::Error;
use crate::isa::Isa;
use crate::kernels::{TransposeFn, transpose_entry};
use crate::spec::{ConvGeom, product};

/// Geometry of one blocked image and the ISA's block transpose.
pub(crate) struct Blocked {
    /// Lanes of the ISA (the block transpose's size).
    pub lanes: usize,
    /// Channels per block: `lanes`, or 1 for planar blocks (padded NCHW planes).
    pub cb: usize,
    /// Input-channel blocks of `cb` channels.
    pub icb: usize,
    pub rows: usize,
    pub cols: usize,
    image_len: usize,
    transpose: TransposeFn,
}

/// The size of a zero-padded `rows x cols` copy of a plane of `g`. `Err` if it overflows
/// or is more than 4 times the larger of the input and output planes (plus 4096 floats):
/// a padded copy far larger than the image it holds (huge padding or dilation around a
/// small image) is declined, and the planner then takes an algorithm that makes none.
pub(crate) fn padded_plane(g: &ConvGeom, rows: usize, cols: usize) -> Result<usize, Error> {
    let plane = product("padded plane", &[rows, cols])?;
    let data = (g.h.input * g.w.input).max(g.h.output * g.w.output);
    if plane > 4 * data + 4096 {
        return Err(Error::Unsupported { what: format!("a padded copy of {rows}x{cols} for a {data}-pixel image") });
    }
    Ok(plane)
}

impl Blocked {
    /// The layout of `g`'s input for `isa` (blocks of one channel if `planar`), at least
    /// `rows x cols` padded pixels per block. `Err` if a blocked image's size overflows or
    /// the padded plane is more than 4 times the larger of the input and output planes
    /// (plus 4096 floats).
    pub(crate) fn new(g: &ConvGeom, isa: Isa, rows: usize, cols: usize, planar: bool) -> Result<Blocked, Error> {
        let lanes = isa.lanes();
        let cb = if planar { 1 } else { lanes };
        let rows = rows.max(g.h.input + g.h.pad_begin + g.h.pad_end);
        let cols = cols.max(g.w.input + g.w.pad_begin + g.w.pad_end);
        let icb = g.in_c.div_ceil(cb);
        padded_plane(g, rows, cols)?;
        let image_len = product("blocked input", &[icb, rows, cols, cb])?;
        Ok(Blocked { lanes, cb, icb, rows, cols, image_len, transpose: transpose_entry(isa) })
    }

    /// Floats of one channel block (`rows * cols * cb`).
    pub(crate) fn block_len(&self) -> usize {
        self.rows * self.cols * self.cb
    }

    /// Floats of one blocked image.
    pub(crate) fn image_len(&self) -> usize {
        self.image_len
    }

    /// Reorders one NCHW image into `dst` (`[icb][rows][cols][L]`, one image).
    pub(crate) fn reorder(&self, g: &ConvGeom, input: &[f32], dst: &mut [f32]) {
        assert!(dst.len() >= self.image_len());
        for b in 0..self.icb {
            // SAFETY: block b of `dst` is inside it (asserted) and exclusively borrowed.
            unsafe { self.reorder_rows(g, input, b, 0..g.h.input, dst[b * self.block_len()..].as_mut_ptr()) }
        }
    }

    /// Reorders the whole NCHW batch into `blocked` (`[n][icb][rows][cols][L]`), in
    /// parallel tasks of input-row bands (all channel blocks), 2 per thread, in image then
    /// band order: on `tasks::for_each`'s fixed ranges a thread reorders the rows it will
    /// mostly compute from when the compute tasks are ordered the same way.
    pub(crate) fn reorder_batch(&self, g: &ConvGeom, input: &[f32], blocked: &mut [f32]) {
        assert!(blocked.len() >= g.batch * self.image_len());
        let in_image = g.in_c * g.h.input * g.w.input;
        let ih = g.h.input;
        let parts = (2 * rayon::current_num_threads()).div_ceil(g.batch).clamp(1, ih);
        let part = ih.div_ceil(parts);
        let bands = ih.div_ceil(part);
        let dst = OutPtr(blocked.as_mut_ptr());
        super::tasks::for_each(g.batch * bands, |task| {
            let (n, pi) = (task / bands, task % bands);
            let ys = pi * part..((pi + 1) * part).min(ih);
            for b in 0..self.icb {
                // SAFETY: block (n, b) of the batch-sized buffer starts at
                // (n * icb + b) * block_len < blocked.len() (asserted); this task writes
                // only its rows `ys` of it (disjoint from every other task's).
                unsafe {
                    let block = dst.add((n * self.icb + b) * self.block_len());
                    self.reorder_rows(g, &input[n * in_image..][..in_image], b, ys.clone(), block);
                }
            }
        });
    }

    /// Reorders input rows `ys` of channel block `b` of one NCHW image into the block at
    /// `dst` (`[rows][cols][cb]`): L channels x L pixels at a time through the block
    /// transpose, or row copies for planar blocks.
    ///
    /// # Safety
    /// `dst` points at `rows * cols * cb` floats, of which the padded rows of `ys` (rows
    /// `ys.start + pad_top..ys.end + pad_top`) are writable and not accessed by anyone
    /// else during the call; `ys.end <= h.input`.
    unsafe fn reorder_rows(&self, g: &ConvGeom, input: &[f32], b: usize, ys: Range<usize>, dst: *mut f32) {
        let (l, cb, cols) = (self.lanes, self.cb, self.cols);
        let (h, w) = (g.h, g.w);
        let in_plane = h.input * w.input;
        let channels = cb.min(g.in_c - b * cb);
        let src = &input[b * cb * in_plane..][..channels * in_plane];
        debug_assert!(ys.end <= h.input);
        for y in ys {
            let row = ((y + h.pad_begin) * cols + w.pad_begin) * cb;
            if cb == 1 {
                // A planar block: the row as is.
                // SAFETY: reads row y of the channel (inside `src`); writes w.input floats
                // from the row's first interior column, inside the padded row of `cols`
                // floats of padded row y + pad_top, which the caller lends us.
                unsafe { std::ptr::copy_nonoverlapping(src[y * w.input..][..w.input].as_ptr(), dst.add(row), w.input) };
                continue;
            }
            for x0 in (0..w.input).step_by(l) {
                let px = l.min(w.input - x0);
                // SAFETY: the ISA is the plan's. Reads channel i < channels, pixels
                // x0..x0 + px of row y: inside `src`. Writes pixel j < px (x0 + j <
                // w.input, so inside the padded row of `cols` floats), lane i < channels,
                // of padded row y + pad_top: inside the rows of `ys` the caller lends us.
                unsafe {
                    (self.transpose)(src[y * w.input + x0..].as_ptr(), in_plane, channels, px, dst.add(row + x0 * l), l)
                };
            }
        }
    }

    /// Writes output rows `oh0..oh0 + rows` of image `n`, channels `oc0..oc0 + oc_valid`,
    /// from the pixel-major `scratch` (`[rows][ow_pad][ob]`, channel `oc0 + c` at lane
    /// `c`) into the NCHW output, L x L blocks at a time.
    ///
    /// # Safety
    /// `out` is the output of `out_len` floats the plan checked (`[n][out_c][oh][ow]`);
    /// `oh0 + rows <= oh`, `oc0 + oc_valid <= out_c`, `oc_valid <= ob`, `ow <= ow_pad`,
    /// `scratch` holds `rows * ow_pad * ob` floats; no one else writes that output region
    /// during the call.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn store_rows(
        &self,
        g: &ConvGeom,
        scratch: &[f32],
        (ow_pad, ob): (usize, usize),
        (n, oc0, oc_valid): (usize, usize, usize),
        (oh0, rows): (usize, usize),
        out: OutPtr,
        out_len: usize,
    ) {
        let l = self.lanes;
        let (h, w) = (g.h, g.w);
        let out_plane = h.output * w.output;
        for r in 0..rows {
            let oh = oh0 + r;
            // Pixel blocks end where the stores are vector-aligned (an unaligned vector
            // store straddles two cache lines): a leading partial block, then full ones.
            // Only when every channel plane has the same alignment and a row spans more
            // than one block (a row of at most L pixels is one store either way).
            let row_at = ((n * g.out_c + oc0) * h.output + oh) * w.output;
            let aligned_planes = out_plane.is_multiple_of(l) && w.output > l;
            let lead = if aligned_planes { (l - misalignment(out.0, row_at, l)) % l } else { 0 };
            let mut x0 = 0;
            while x0 < w.output {
                let px = (if x0 == 0 && lead > 0 { lead } else { l }).min(w.output - x0);
                for v in (0..oc_valid).step_by(l) {
                    let channels = l.min(oc_valid - v);
                    let at = ((n * g.out_c + oc0 + v) * h.output + oh) * w.output + x0;
                    debug_assert!(at + (channels - 1) * out_plane + px <= out_len);
                    // SAFETY: the ISA is the plan's. Reads scratch pixels x0..x0 + px
                    // (< OWpad) of row r, lanes v..v + channels (< OB). Writes channel
                    // j < channels (< out_c), pixels x0..x0 + px (< OW) of row oh:
                    // inside the output, in the region the caller owns.
                    unsafe {
                        (self.transpose)(
                            scratch[(r * ow_pad + x0) * ob + v..].as_ptr(),
                            ob,
                            px,
                            channels,
                            out.add(at),
                            out_plane,
                        )
                    };
                }
                x0 += px;
            }
        }
    }
}

/// Images per thread from which a batch runs as per-image tasks on more than one thread.
/// A per-image task reorders its image into the thread's own buffer, which stays in L2,
/// but the threads can end up to one image apart: S7 (8 images) on 2 threads ran 5-6%
/// faster as row-band tasks on a batch buffer, S2 (64 images) 0.5-2% slower (paired
/// blocks in one process). With one thread, per-image tasks from 2 images (S7: 1.4%
/// faster).
const IMAGES_PER_THREAD: usize = 8;

/// A plan's copy of the input in a [`Blocked`] layout, and the way tasks get at it: with a
/// large batch (2 images or more on one thread, [`IMAGES_PER_THREAD`] a thread on more;
/// decided at plan time) one buffer per thread, reused image after image so it stays in
/// L2; otherwise one batch-sized buffer, filled in parallel before the tasks run.
pub(crate) struct BlockedInput {
    pub layout: Blocked,
    images: Option<Slots>,
    /// Locked for the length of a run (plans are `Sync`; a run has `&mut` to its plan, so
    /// the lock is never contended).
    batch: Mutex<Aligned>,
}

impl BlockedInput {
    /// The buffers for `g`'s batch in `layout`, sized for the current rayon pool.
    pub(crate) fn new(g: &ConvGeom, layout: Blocked) -> Result<BlockedInput, Error> {
        let threads = rayon::current_num_threads();
        let per_image = g.batch >= 2 && (threads == 1 || g.batch >= IMAGES_PER_THREAD * threads);
        let images = if per_image { Some(Slots::new(layout.image_len())?) } else { None };
        let batch =
            Aligned::zeroed(if per_image { 0 } else { product("blocked input", &[g.batch, layout.image_len()])? })?;
        Ok(BlockedInput { layout, images, batch: Mutex::new(batch) })
    }

    /// Whether each image is reordered by the task that computes it (large batch).
    pub(crate) fn per_image(&self) -> bool {
        self.images.is_some()
    }

    /// Runs `task(image, n, t)` for every image `n` of `input` and `t < tasks` (the
    /// blocked image as `image`). Per image: one parallel task per image reorders it and
    /// runs its `t` in order. Otherwise the batch is reordered first and every `(n, t)`
    /// is a parallel task, image-major then `t` (callers order `t` by rows, so a thread
    /// mostly computes from rows it reordered itself).
    pub(crate) fn run(&self, g: &ConvGeom, input: &[f32], tasks: usize, task: impl Fn(&[f32], usize, usize) + Sync) {
        let image_len = self.layout.image_len();
        let in_image = g.in_c * g.h.input * g.w.input;
        if let Some(images) = &self.images {
            let layout = &self.layout;
            super::tasks::for_each(g.batch, |n| {
                images.with(|image| {
                    layout.reorder(g, &input[n * in_image..][..in_image], image);
                    for t in 0..tasks {
                        task(image, n, t);
                    }
                });
            });
            return;
        }
        // A poisoned lock only means a task panicked in an earlier run; the buffer is
        // rewritten (interior) or never written (padding) before use.
        let mut guard = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        self.layout.reorder_batch(g, input, &mut guard);
        let batch = &**guard;
        super::tasks::for_each(g.batch * tasks, |i| {
            let n = i / tasks;
            task(&batch[n * image_len..][..image_len], n, i % tasks);
        });
    }
}
