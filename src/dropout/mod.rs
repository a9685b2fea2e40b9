//! Dropout2d: whole `(n, c)` planes dropped, the rest scaled by `1 / (1 - p)`.

use rayon::prelude::*;

use crate::buffers;
use crate::error::Error;
use crate::rng::dropout_scale;
use crate::spec::Dropout2dSpec;

/// Training-mode Dropout2d (PyTorch's `nn.Dropout2d`): each plane `n * channels + c` is
/// zeroed with probability `p`, the others multiplied by `1 / (1 - p)`.
///
/// `channel_scale` (`batch * channels`) receives each plane's factor (0 or `1/(1-p)`),
/// which [`dropout2d_backward`] needs. The mask depends only on `seed` and the plane
/// index, so it is reproducible and independent of the thread count. In evaluation mode
/// dropout is the identity: do not call this function.
///
/// ```
/// use sverka::Dropout2dSpec;
/// let spec = Dropout2dSpec { batch: 1, channels: 4, input: [1, 2], p: 0.5 };
/// let input = [1.0; 8];
/// let (mut out, mut scale) = ([0.0; 8], [0.0; 4]);
/// sverka::dropout2d(&spec, 7, &input, &mut out, &mut scale)?;
/// for (plane, s) in out.chunks(2).zip(scale) {
///     assert!(s == 0.0 || s == 2.0);
///     assert_eq!(plane, [s, s]);
/// }
/// # Ok::<(), sverka::Error>(())
/// ```
pub fn dropout2d(
    s: &Dropout2dSpec,
    seed: u64,
    input: &[f32],
    output: &mut [f32],
    channel_scale: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::dropout2d(s, ("input", input), channel_scale, ("output", output))?;
    for (plane, scale) in channel_scale.iter_mut().enumerate() {
        *scale = dropout_scale(seed, plane, s.p);
    }
    scale_planes(input, channel_scale, g.plane, output);
    Ok(())
}

/// Gradient of [`dropout2d`]: `grad_input = grad_output * channel_scale` of its plane.
pub fn dropout2d_backward(
    s: &Dropout2dSpec,
    grad_output: &[f32],
    channel_scale: &[f32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::dropout2d(s, ("grad_output", grad_output), channel_scale, ("grad_input", grad_input))?;
    scale_planes(grad_output, channel_scale, g.plane, grad_input);
    Ok(())
}

/// `out[plane] = x[plane] * scale[plane]` for every plane.
fn scale_planes(x: &[f32], scale: &[f32], plane: usize, out: &mut [f32]) {
    out.par_chunks_mut(plane).zip(x.par_chunks(plane)).zip(scale).for_each(|((o, x), &s)| {
        o.iter_mut().zip(x).for_each(|(o, &x)| *o = x * s);
    });
}
