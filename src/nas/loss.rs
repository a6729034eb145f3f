//! The training loss and accuracies of the evaluation network: the
//! cross-entropy with label smoothing of the ImageNet recipe, and top-k
//! correct counts for top-1 and top-5 accuracy.

use tch::{Kind, Tensor};

/// Mean cross-entropy of `logits` against `labels` with label smoothing
/// `epsilon`: (1 − ε)·NLL + ε·(mean over classes of −log p), PyTorch's
/// `CrossEntropyLoss(label_smoothing=ε)`. At ε = 0 it is libtorch's plain
/// cross-entropy, so that runs without smoothing compute exactly what
/// they did before it existed.
pub fn smoothed_cross_entropy(logits: &Tensor, labels: &Tensor, epsilon: f64) -> Tensor {
    if epsilon == 0.0 {
        return logits.cross_entropy_for_logits(labels);
    }
    let log_p = logits.log_softmax(-1, Kind::Float);
    let nll = log_p.nll_loss(labels);
    let uniform = -log_p.mean_dim(-1, false, Kind::Float).mean(Kind::Float);
    nll * (1.0 - epsilon) + uniform * epsilon
}

/// The classes top-5 accuracy needs: with fewer, every label is among the
/// top five and the figure would say nothing.
pub const TOP5: i64 = 5;

/// How many rows of `logits` have their label among their `k` largest
/// logits (an `Int64` scalar on the logits' device); `None` when there
/// are fewer than `k` classes.
pub fn top_k_correct(logits: &Tensor, labels: &Tensor, k: i64) -> Option<Tensor> {
    let classes = *logits.size().last()?;
    if classes < k {
        return None;
    }
    let (_, top) = logits.topk(k, -1, true, false);
    Some(
        top.eq_tensor(&labels.unsqueeze(-1))
            .any_dim(-1, false)
            .sum(Kind::Int64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn smoothing_zero_is_the_plain_cross_entropy() {
        tch::manual_seed(1);
        let logits = Tensor::randn([6, 10], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 3, 9, 2, 2, 7]);
        let plain = logits.cross_entropy_for_logits(&labels);
        let zero = smoothed_cross_entropy(&logits, &labels, 0.0);
        assert_eq!(
            f64::try_from(&plain).unwrap(),
            f64::try_from(&zero).unwrap()
        );
        // The manual form agrees with the plain one too.
        let log_p = logits.log_softmax(-1, Kind::Float);
        let manual = f64::try_from(log_p.nll_loss(&labels)).unwrap();
        assert!(close(manual, f64::try_from(&plain).unwrap()));
    }

    /// Two classes, logits (0, ln 3): p = (1/4, 3/4). Label 1, ε = 0.1:
    /// 0.9·(−ln 3/4) + 0.1·(−ln 1/4 − ln 3/4)/2.
    #[test]
    fn smoothing_has_the_known_value() {
        let logits = Tensor::from_slice(&[0.0f32, 3f32.ln()]).view([1, 2]);
        let labels = Tensor::from_slice(&[1i64]);
        let got = f64::try_from(smoothed_cross_entropy(&logits, &labels, 0.1)).unwrap();
        let want = 0.9 * -(0.75f64.ln()) + 0.1 * (-(0.25f64.ln()) - 0.75f64.ln()) / 2.0;
        assert!(close(got, want), "{got} {want}");
    }

    #[test]
    fn top_k_counts_labels_among_the_k_largest() {
        // Row 0: label is the largest; row 1: the 5th largest; row 2: the 6th.
        let logits = Tensor::from_slice(&[
            9.0f32, 1.0, 2.0, 3.0, 4.0, 5.0, //
            6.0, 5.0, 4.0, 3.0, 2.0, 1.0, //
            6.0, 5.0, 4.0, 3.0, 2.0, 1.0,
        ])
        .view([3, 6]);
        let labels = Tensor::from_slice(&[0i64, 4, 5]);
        let top1 = top_k_correct(&logits, &labels, 1).unwrap();
        let top5 = top_k_correct(&logits, &labels, TOP5).unwrap();
        assert_eq!(i64::try_from(top1).unwrap(), 1);
        assert_eq!(i64::try_from(top5).unwrap(), 2);
        assert!(top_k_correct(&logits.narrow(1, 0, 4), &labels.clamp_max(3), TOP5).is_none());
    }
}
