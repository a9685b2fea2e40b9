//! Reference max and average pooling.

use super::tap;
use crate::buffers;
use crate::error::Error;
use crate::spec::Pool2dSpec;

/// Output `[oh, ow]` of a validated spec.
fn out_size(s: &Pool2dSpec) -> Result<[usize; 2], Error> {
    s.output()
}

/// Calls `f(output_index, input_index)` for every output element and every window tap
/// inside the input, windows in output order, taps row by row.
fn for_each_tap(s: &Pool2dSpec, mut f: impl FnMut(usize, usize)) -> Result<(), Error> {
    let [oh, ow] = out_size(s)?;
    let [ih, iw] = s.input;
    for plane in 0..s.batch * s.channels {
        for y in 0..oh {
            for x in 0..ow {
                let o = (plane * oh + y) * ow + x;
                for ky in 0..s.kernel[0] {
                    let Some(iy) = tap(y, s.stride[0], s.padding.top, ky, s.dilation[0], ih) else { continue };
                    for kx in 0..s.kernel[1] {
                        let Some(ix) = tap(x, s.stride[1], s.padding.left, kx, s.dilation[1], iw) else { continue };
                        f(o, (plane * ih + iy) * iw + ix);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Reference [`crate::max_pool2d`]: the maximum over each window's taps inside the input;
/// a NaN tap makes the output NaN. `indices` get the in-plane position `iy * w + ix` of
/// the first maximal tap (of the first NaN, if any).
pub fn max_pool2d(s: &Pool2dSpec, input: &[f32], output: &mut [f32], indices: Option<&mut [u32]>) -> Result<(), Error> {
    let out_len = buffers::pool2d(s, input, output, indices.as_deref())?.output_len;
    let mut best: Vec<Option<usize>> = vec![None; out_len];
    for_each_tap(s, |o, i| {
        let better = match best[o] {
            None => true,
            Some(b) => !input[b].is_nan() && (input[i] > input[b] || input[i].is_nan()),
        };
        if better {
            best[o] = Some(i);
        }
    })?;
    let plane = s.input[0] * s.input[1];
    let mut indices = indices;
    for (o, b) in best.iter().enumerate() {
        let b = b.expect("validation guarantees every window has a tap inside the input");
        output[o] = input[b];
        if let Some(ix) = indices.as_deref_mut() {
            ix[o] = (b % plane) as u32;
        }
    }
    Ok(())
}

/// Reference [`crate::max_pool2d_backward`]: each `grad_output` element is added to the
/// input element its index names.
pub fn max_pool2d_backward(
    s: &Pool2dSpec,
    grad_output: &[f32],
    indices: &[u32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    buffers::pool2d_backward(s, grad_output, Some(indices), grad_input)?;
    let plane = s.input[0] * s.input[1];
    let out_plane = grad_output.len() / (s.batch * s.channels);
    let mut acc = vec![0f64; grad_input.len()];
    for (o, (&dy, &ix)) in grad_output.iter().zip(indices).enumerate() {
        acc[o / out_plane * plane + ix as usize] += dy as f64;
    }
    super::store(grad_input, &acc);
    Ok(())
}

/// Divisor of each output element: the taps inside the input, or with
/// `count_include_pad` the taps inside the padded input `[-pad_begin, size + pad_end)`.
fn divisors(s: &Pool2dSpec) -> Result<Vec<f64>, Error> {
    let out_len = s.output_len()?;
    let mut count = vec![0f64; out_len];
    if s.count_include_pad {
        let [oh, ow] = out_size(s)?;
        let p = s.padding;
        let padded = |o: usize, axis: usize, begin: usize, end: usize| {
            (0..s.kernel[axis])
                .filter(|&k| tap(o, s.stride[axis], 0, k, s.dilation[axis], s.input[axis] + begin + end).is_some())
                .count()
        };
        for (o, c) in count.iter_mut().enumerate() {
            let (y, x) = ((o / ow) % oh, o % ow);
            *c = (padded(y, 0, p.top, p.bottom) * padded(x, 1, p.left, p.right)) as f64;
        }
    } else {
        for_each_tap(s, |o, _| count[o] += 1.0)?;
    }
    Ok(count)
}

/// Reference [`crate::avg_pool2d`]: the sum of each window's taps inside the input,
/// divided by the window's divisor (see [`crate::Pool2dSpec::count_include_pad`]).
pub fn avg_pool2d(s: &Pool2dSpec, input: &[f32], output: &mut [f32]) -> Result<(), Error> {
    let out_len = buffers::pool2d(s, input, output, None)?.output_len;
    let mut acc = vec![0f64; out_len];
    for_each_tap(s, |o, i| acc[o] += input[i] as f64)?;
    for (a, d) in acc.iter_mut().zip(divisors(s)?) {
        *a /= d;
    }
    super::store(output, &acc);
    Ok(())
}

/// Reference [`crate::avg_pool2d_backward`]: each `grad_output` element, divided by its
/// window's divisor, is added to every tap of the window inside the input.
pub fn avg_pool2d_backward(s: &Pool2dSpec, grad_output: &[f32], grad_input: &mut [f32]) -> Result<(), Error> {
    let in_len = buffers::pool2d_backward(s, grad_output, None, grad_input)?.input_len;
    let div = divisors(s)?;
    let mut acc = vec![0f64; in_len];
    for_each_tap(s, |o, i| acc[i] += grad_output[o] as f64 / div[o])?;
    super::store(grad_input, &acc);
    Ok(())
}
