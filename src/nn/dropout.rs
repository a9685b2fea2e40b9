//! [`Dropout2d`]: channel dropout.

use super::layer::{Layer, Mode, no_forward};
use super::tensor::{Tensor, expect_shape};
use crate::error::Error;
use crate::rng::SplitMix64;
use crate::spec::Dropout2dSpec;

/// Channel dropout (`torch.nn.Dropout2d`): in [`Mode::Train`] each `(n, c)` plane is
/// zeroed with probability `p` and the others scaled by `1 / (1 - p)`; in [`Mode::Eval`]
/// it is the identity. Masks come from the layer's own seeded random stream.
#[derive(Clone, Debug)]
pub struct Dropout2d {
    p: f32,
    rng: SplitMix64,
    cache: Option<DropoutCache>,
}

/// What backward needs from the last forward.
#[derive(Clone, Debug)]
struct DropoutCache {
    shape: [usize; 4],
    /// The spec and per-plane scales in train mode; `None` in eval mode (identity).
    mask: Option<(Dropout2dSpec, Vec<f32>)>,
}

impl Dropout2d {
    /// A layer dropping channels with probability `p` (in `[0, 1]`), its stream seeded
    /// from `rng`.
    pub fn new(p: f32, rng: &mut SplitMix64) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Value { param: "p", value: p.into(), domain: "[0, 1]" });
        }
        Ok(Dropout2d { p, rng: SplitMix64::new(rng.next_u64()), cache: None })
    }
}

impl Layer for Dropout2d {
    fn describe(&self) -> String {
        format!("Dropout2d(p={})", self.p)
    }

    fn output_shape(&self, input: [usize; 4]) -> Result<[usize; 4], Error> {
        Ok(input)
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor, Error> {
        let [batch, channels, h, w] = x.shape();
        let (out, mask) = match mode {
            Mode::Eval => (x.clone(), None),
            Mode::Train => {
                let spec = Dropout2dSpec { batch, channels, input: [h, w], p: self.p };
                let mut out = Tensor::zeros(x.shape())?;
                let mut scale = vec![0.0; spec.scale_len()?];
                crate::dropout2d(&spec, self.rng.next_u64(), x.data(), out.data_mut(), &mut scale)?;
                (out, Some((spec, scale)))
            }
        };
        self.cache = Some(DropoutCache { shape: x.shape(), mask });
        Ok(out)
    }

    fn backward(&mut self, grad_out: &Tensor) -> Result<Tensor, Error> {
        let cache = self.cache.as_ref().ok_or_else(|| no_forward("Dropout2d"))?;
        expect_shape("grad_out", grad_out.shape(), cache.shape)?;
        let Some((spec, scale)) = &cache.mask else {
            return Ok(grad_out.clone());
        };
        let mut grad_in = Tensor::zeros(cache.shape)?;
        crate::dropout2d_backward(spec, grad_out.data(), scale, grad_in.data_mut())?;
        Ok(grad_in)
    }
}
