//! Reference conv2d and its two gradients.

use super::{at, bias_grad, biased, store, tap};
use crate::buffers;
use crate::error::Error;
use crate::spec::Conv2dSpec;

/// Reference [`crate::conv2d`]:
/// `y[n,oc,oh,ow] = b[oc] + sum_{icg,kh,kw} x[n, g*icpg+icg, oh*s-p+kh*d, ow*s-p+kw*d] * w[oc,icg,kh,kw]`.
pub fn conv2d(
    s: &Conv2dSpec,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::conv2d(s, input, weight, bias, output)?;
    let mut acc = biased(g.output_len, s.out_channels, g.out_plane(), bias);
    for_each_mac(s, |i, o, k| acc[o] += input[i] as f64 * weight[k] as f64)?;
    store(output, &acc);
    Ok(())
}

/// Calls `f(input_index, output_index, weight_index)` for every multiply-add of the
/// convolution, in the order of the loops of [`conv2d`]. Both gradients are sums over
/// exactly these triples.
fn for_each_mac(s: &Conv2dSpec, mut f: impl FnMut(usize, usize, usize)) -> Result<(), Error> {
    let g = s.geometry()?;
    let (ih, iw, oh, ow) = (s.input[0], s.input[1], g.h.output, g.w.output);
    let (kh, kw) = (s.kernel[0], s.kernel[1]);
    let (icpg, ocpg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    for n in 0..s.batch {
        for oc in 0..s.out_channels {
            let grp = oc / ocpg;
            for y in 0..oh {
                for x in 0..ow {
                    for icg in 0..icpg {
                        let ic = grp * icpg + icg;
                        for ky in 0..kh {
                            let Some(iy) = tap(y, s.stride[0], s.padding.top, ky, s.dilation[0], ih) else { continue };
                            for kx in 0..kw {
                                let Some(ix) = tap(x, s.stride[1], s.padding.left, kx, s.dilation[1], iw) else {
                                    continue;
                                };
                                f(
                                    at(n, ic, iy, ix, s.in_channels, ih, iw),
                                    at(n, oc, y, x, s.out_channels, oh, ow),
                                    at(oc, icg, ky, kx, icpg, kh, kw),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Reference [`crate::conv2d_backward_input`]: `dx[i] = sum over (i, o, k) of dy[o] * w[k]`.
pub fn conv2d_backward_input(
    s: &Conv2dSpec,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    let g = buffers::conv2d_backward_input(s, grad_output, weight, grad_input)?;
    let mut acc = vec![0f64; g.input_len];
    for_each_mac(s, |i, o, k| acc[i] += grad_output[o] as f64 * weight[k] as f64)?;
    store(grad_input, &acc);
    Ok(())
}

/// Reference [`crate::conv2d_backward_weight`]: `dw[k] = sum over (i, o, k) of x[i] * dy[o]`,
/// `db[oc] = sum of dy over batch and pixels`.
pub fn conv2d_backward_weight(
    s: &Conv2dSpec,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) -> Result<(), Error> {
    let g = buffers::conv2d_backward_weight(s, input, grad_output, grad_weight, grad_bias.as_deref())?;
    let mut acc = vec![0f64; g.weight_len];
    for_each_mac(s, |i, o, k| acc[k] += input[i] as f64 * grad_output[o] as f64)?;
    store(grad_weight, &acc);
    if let Some(b) = grad_bias {
        bias_grad(grad_output, s.out_channels, g.out_plane(), b);
    }
    Ok(())
}
