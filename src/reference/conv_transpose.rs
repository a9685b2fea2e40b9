//! Reference conv_transpose2d and its two gradients, written as the scatter that defines
//! a transposed convolution (not by reusing the conv reference).

use super::{at, bias_grad, biased, store};
use crate::buffers;
use crate::error::Error;
use crate::spec::ConvTranspose2dSpec;

/// Calls `f(input_index, output_index, weight_index)` for every multiply-add of the
/// transposed convolution: input pixel `(iy, ix)` of channel `ic` meets weight tap
/// `(ky, kx)` of output channel `oc` at output pixel `(iy*s - p + ky*d, ix*s - p + kx*d)`.
fn for_each_mac(s: &ConvTranspose2dSpec, mut f: impl FnMut(usize, usize, usize)) -> Result<(), Error> {
    let [oh, ow] = s.output()?;
    let (ih, iw) = (s.input[0], s.input[1]);
    let (kh, kw) = (s.kernel[0], s.kernel[1]);
    let (icpg, ocpg) = (s.in_channels / s.groups, s.out_channels / s.groups);
    for n in 0..s.batch {
        for ic in 0..s.in_channels {
            let grp = ic / icpg;
            for y in 0..ih {
                for x in 0..iw {
                    for ocg in 0..ocpg {
                        let oc = grp * ocpg + ocg;
                        for ky in 0..kh {
                            let oy = (y * s.stride[0] + ky * s.dilation[0]) as i128 - s.padding.top as i128;
                            if !(0..oh as i128).contains(&oy) {
                                continue;
                            }
                            for kx in 0..kw {
                                let ox = (x * s.stride[1] + kx * s.dilation[1]) as i128 - s.padding.left as i128;
                                if !(0..ow as i128).contains(&ox) {
                                    continue;
                                }
                                f(
                                    at(n, ic, y, x, s.in_channels, ih, iw),
                                    at(n, oc, oy as usize, ox as usize, s.out_channels, oh, ow),
                                    at(ic, ocg, ky, kx, ocpg, kh, kw),
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

/// Reference [`crate::conv_transpose2d`]: `y[o] = b[oc] + sum over (i, o, k) of x[i] * w[k]`.
pub fn conv_transpose2d(
    s: &ConvTranspose2dSpec,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
) -> Result<(), Error> {
    buffers::conv_transpose2d(s, input, weight, bias, output)?;
    let plane = output.len() / (s.batch * s.out_channels);
    let mut acc = biased(output.len(), s.out_channels, plane, bias);
    for_each_mac(s, |i, o, k| acc[o] += input[i] as f64 * weight[k] as f64)?;
    store(output, &acc);
    Ok(())
}

/// Reference [`crate::conv_transpose2d_backward_input`]: `dx[i] = sum over (i, o, k) of dy[o] * w[k]`.
pub fn conv_transpose2d_backward_input(
    s: &ConvTranspose2dSpec,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
) -> Result<(), Error> {
    buffers::conv_transpose2d_backward_input(s, grad_output, weight, grad_input)?;
    let mut acc = vec![0f64; grad_input.len()];
    for_each_mac(s, |i, o, k| acc[i] += grad_output[o] as f64 * weight[k] as f64)?;
    store(grad_input, &acc);
    Ok(())
}

/// Reference [`crate::conv_transpose2d_backward_weight`]: `dw[k] = sum over (i, o, k) of x[i] * dy[o]`,
/// `db[oc] = sum of dy over batch and pixels`.
pub fn conv_transpose2d_backward_weight(
    s: &ConvTranspose2dSpec,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) -> Result<(), Error> {
    buffers::conv_transpose2d_backward_weight(s, input, grad_output, grad_weight, grad_bias.as_deref())?;
    let mut acc = vec![0f64; grad_weight.len()];
    for_each_mac(s, |i, o, k| acc[k] += input[i] as f64 * grad_output[o] as f64)?;
    store(grad_weight, &acc);
    if let Some(b) = grad_bias {
        let plane = grad_output.len() / (s.batch * s.out_channels);
        bias_grad(grad_output, s.out_channels, plane, b);
    }
    Ok(())
}
