//! Losses, each returning its mean value and the gradient with respect to its input:
//! [`softmax_cross_entropy`], [`mse`], [`bce_with_logits`].

use super::activation::sigmoid;
use super::tensor::{ShapeDisplay, Tensor, expect_shape};
use crate::error::Error;

/// A loss value and its gradient with respect to the prediction.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    /// The mean loss.
    pub value: f32,
    /// `d value / d prediction`, shaped like the prediction.
    pub grad: Tensor,
}

/// Softmax cross-entropy of `logits` `[n, classes, 1, 1]` against class indices `labels`
/// (length `n`, each `< classes`), averaged over the batch (`torch.nn.CrossEntropyLoss`).
pub fn softmax_cross_entropy(logits: &Tensor, labels: &[usize]) -> Result<Loss, Error> {
    let [n, classes, h, w] = logits.shape();
    if h != 1 || w != 1 || labels.len() != n || n == 0 {
        return Err(Error::Shape {
            message: format!(
                "cross-entropy needs logits [n, classes, 1, 1] and n labels, got {} and {} labels",
                ShapeDisplay(logits.shape()),
                labels.len()
            ),
        });
    }
    if let Some((i, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(Error::Shape { message: format!("labels[{i}] = {label} is not below the class count {classes}") });
    }
    let mut grad = Vec::with_capacity(logits.len());
    let mut total = 0f64;
    for (row, &label) in logits.data().chunks(classes).zip(labels) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
        total += sum.ln() - (row[label] - max) as f64;
        grad.extend(row.iter().enumerate().map(|(k, &v)| {
            let p = ((v - max) as f64).exp() / sum;
            ((p - f64::from(u8::from(k == label))) / n as f64) as f32
        }));
    }
    Ok(Loss { value: (total / n as f64) as f32, grad: Tensor::new(logits.shape(), grad)? })
}

/// Mean over all elements of `f(prediction, target)`, with gradient `df / n` per element.
fn elementwise(
    what: &str,
    prediction: &Tensor,
    target: &Tensor,
    f: impl Fn(f32, f32) -> (f64, f32),
) -> Result<Loss, Error> {
    expect_shape(what, target.shape(), prediction.shape())?;
    let n = prediction.len();
    if n == 0 {
        return Err(Error::Shape { message: format!("{what}: empty prediction") });
    }
    let mut total = 0f64;
    let grad = prediction
        .data()
        .iter()
        .zip(target.data())
        .map(|(&p, &t)| {
            let (loss, d) = f(p, t);
            total += loss;
            d / n as f32
        })
        .collect();
    Ok(Loss { value: (total / n as f64) as f32, grad: Tensor::new(prediction.shape(), grad)? })
}

/// Mean squared error over all elements (`torch.nn.MSELoss`).
pub fn mse(prediction: &Tensor, target: &Tensor) -> Result<Loss, Error> {
    elementwise("mse target", prediction, target, |p, t| (((p - t) as f64).powi(2), 2.0 * (p - t)))
}

/// Binary cross-entropy of `sigmoid(logits)` against `target` in `[0, 1]`, averaged over
/// all elements, computed stably from the logits (`torch.nn.BCEWithLogitsLoss`).
pub fn bce_with_logits(logits: &Tensor, target: &Tensor) -> Result<Loss, Error> {
    elementwise("bce target", logits, target, |x, t| {
        let (x64, t64) = (x as f64, t as f64);
        let loss = x64.max(0.0) - x64 * t64 + (-x64.abs()).exp().ln_1p();
        (loss, sigmoid(x) - t)
    })
}

/// Number of rows of `logits` `[n, classes, 1, 1]` whose largest value is at `labels[i]`.
pub fn correct(logits: &Tensor, labels: &[usize]) -> usize {
    let classes = logits.shape()[1].max(1);
    logits
        .data()
        .chunks(classes)
        .zip(labels)
        .filter(|(row, label)| {
            let best = row.iter().enumerate().fold(0, |b, (k, &v)| if v > row[b] { k } else { b });
            best == **label
        })
        .count()
}
