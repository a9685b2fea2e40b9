//! Depthwise convolution (`groups == in_channels == out_channels`, stride 1): one task per
//! channel plane, copied into a zero-padded scratch plane (prefetching the next plane into
//! L2 as it goes), then the vector kernel of [`crate::kernels::depthwise`] along the
//! output rows.

use super::blocked::padded_plane;
use super::plan::{OutPtr, Slots};
use crate::error::Error;
use crate::isa::{Isa, prefetch_l2};
use crate::kernels::depthwise::{DepthwiseArgs, depthwise_entry};
use crate::spec::ConvGeom;

/// A planned depthwise convolution.
pub(crate) struct Depthwise {
    entry: unsafe fn(&DepthwiseArgs),
    /// Padded row length, a multiple of `L`.
    cols: usize,
    /// Floats before the padded plane in the scratch, so that the first interior column
    /// is vector-aligned in every row.
    lead: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
    slots: Slots,
}

impl Depthwise {
    /// Depthwise with multiplier 1 and stride 1 (any kernel, dilation, padding).
    pub(crate) fn accepts(g: &ConvGeom) -> bool {
        g.groups == g.in_c && g.in_c == g.out_c && g.h.stride == 1 && g.w.stride == 1
    }

    /// Plans `g`; the caller checked [`Depthwise::accepts`].
    pub(crate) fn new(g: &ConvGeom, isa: Isa) -> Result<Depthwise, Error> {
        let l = isa.lanes();
        let rows = g.h.input + g.h.pad_begin + g.h.pad_end;
        // Rows a whole number of vectors long, the plane shifted so that the first
        // interior column (for a "same" 3x3, the middle tap's) is vector-aligned: one of
        // a 3x3's three loads of a row is aligned, and the others straddle cache lines.
        let cols = (g.w.input + g.w.pad_begin + g.w.pad_end).div_ceil(l) * l;
        let lead = (l - g.w.pad_begin % l) % l;
        // The last row's partial vector reads up to L - 1 floats past the plane.
        let scratch = padded_plane(g, rows, cols)?.checked_add(lead + l);
        let scratch = scratch.ok_or(Error::Overflow { what: "depthwise scratch" })?;
        Ok(Depthwise {
            entry: depthwise_entry(isa),
            cols,
            lead,
            weights: crate::error::try_zeroed(g.weight_len)?,
            bias: crate::error::try_zeroed(g.out_c)?,
            slots: Slots::new(scratch)?,
        })
    }

    /// Copies the weights (`[c][1][kh][kw]` is already the kernel's layout) and bias.
    pub(crate) fn set_weights(&mut self, weight: &[f32], bias: Option<&[f32]>) {
        self.weights.copy_from_slice(weight);
        match bias {
            Some(b) => self.bias.copy_from_slice(b),
            None => self.bias.fill(0.0),
        }
    }

    /// Runs the convolution (lengths checked by the plan).
    pub(crate) fn run(&mut self, g: &ConvGeom, input: &[f32], output: &mut [f32], relu: bool) {
        let out = OutPtr(output.as_mut_ptr());
        let this = &*self;
        // Runs of planes per task (8 tasks per thread): one scratch-slot lock per run.
        let planes = g.batch * g.in_c;
        let run = planes.div_ceil(8 * rayon::current_num_threads()).max(1);
        super::tasks::for_each(planes.div_ceil(run), |task| {
            this.slots.with(|buf| {
                for plane in task * run..((task + 1) * run).min(planes) {
                    this.plane(g, input, plane, buf, out, relu);
                }
            });
        });
    }

    /// One channel plane (`plane` = image * C + channel): copied into the padded `buf`,
    /// then the kernel.
    fn plane(&self, g: &ConvGeom, input: &[f32], plane: usize, buf: &mut [f32], out: OutPtr, relu: bool) {
        let (h, w) = (g.h, g.w);
        let (in_plane, out_plane, taps) = (h.input * w.input, h.output * w.output, h.kernel * w.kernel);
        let c = plane % g.in_c;
        let src = &input[plane * in_plane..][..in_plane];
        // The padding of the scratch plane is zero from allocation and never
        // written; only the interior is overwritten. Row by row, the same row of the next
        // plane is prefetched into L2, so that its copy does not wait for the LLC (S9, two
        // sets of 5 interleaved pairs, medians: 0.486 -> 0.449 and 0.459 -> 0.417 ms at 1
        // thread; 0.286 -> 0.247 and 0.247 -> 0.244 at 2).
        let next = input.get((plane + 1) * in_plane..(plane + 2) * in_plane);
        for (y, row) in src.chunks_exact(w.input).enumerate() {
            buf[self.lead + (y + h.pad_begin) * self.cols + w.pad_begin..][..w.input].copy_from_slice(row);
            for line in next.iter().flat_map(|next| next[y * w.input..][..w.input].chunks(64 / 4)) {
                prefetch_l2(line.as_ptr());
            }
        }
        let args = DepthwiseArgs {
            x: buf[self.lead..].as_ptr(),
            cols: self.cols,
            w: self.weights[c * taps..][..taps].as_ptr(),
            kernel: [h.kernel, w.kernel],
            dilation: [h.dilation, w.dilation],
            bias: self.bias[c],
            // SAFETY (pointer arithmetic): plane < batch * out_c, so the plane
            // starts inside the output slice.
            out: unsafe { out.add(plane * out_plane) },
            oh: h.output,
            ow: w.output,
            ldo: w.output,
            relu,
        };
        // SAFETY: the entry is for the plan's ISA. `x` is `lead` floats into the scratch,
        // which holds the rows x cols plane and L floats of slack after it. With stride 1,
        // rows = oh + (kh-1)*dh and cols >= ow + (kw-1)*dw (rounded up to L), so every
        // read is inside the padded plane except the last row's partial vector, which
        // stays within the slack; the output plane `plane` (oh x ow floats) is written by
        // this task only.
        unsafe { (self.entry)(&args) };
    }
}
