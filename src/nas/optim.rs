//! SGD with momentum and Adam, owned by the project (docs/design.md §8): tch's
//! optimisers keep their state inside libtorch where it cannot be saved, and
//! exact resume needs it in the checkpoint.
//!
//! Both follow PyTorch's update rules (L2 weight decay added to the
//! gradient); a parameter whose gradient is undefined (an op outside the
//! subspace) is left alone, as PyTorch does with `grad = None`.

use tch::Tensor;

/// SGD with momentum and weight decay (weight step, paper B.1).
#[derive(Debug)]
pub struct Sgd {
    /// Momentum factor.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Momentum buffer per parameter, created at its first update.
    pub buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    /// An optimiser for `n` parameters.
    pub fn new(n: usize, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            buffers: (0..n).map(|_| None).collect(),
        }
    }

    /// One update of `params` with `grads` (aligned) at learning rate `lr`.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor], lr: f64) {
        tch::no_grad(|| {
            for ((p, g), buf) in params.iter().zip(grads).zip(&mut self.buffers) {
                if !g.defined() {
                    continue;
                }
                let d = if self.weight_decay != 0.0 {
                    g + p * self.weight_decay
                } else {
                    g.shallow_clone()
                };
                let b = match buf {
                    Some(b) => {
                        let _ = b.g_mul_scalar_(self.momentum).g_add_(&d);
                        b
                    }
                    None => buf.insert(d.copy()),
                };
                let _ = p.shallow_clone().g_sub_(&(&*b * lr));
            }
        });
    }
}

/// Adam with L2 weight decay (architecture step, paper B.1).
#[derive(Debug)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// `(beta1, beta2)`.
    pub betas: (f64, f64),
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Updates done so far (bias correction).
    pub steps: i64,
    /// First moments, one per parameter.
    pub m: Vec<Tensor>,
    /// Second moments, one per parameter.
    pub v: Vec<Tensor>,
}

impl Adam {
    /// An optimiser for `params`.
    pub fn new(params: &[Tensor], lr: f64, betas: (f64, f64), weight_decay: f64) -> Self {
        Adam {
            lr,
            betas,
            weight_decay,
            steps: 0,
            m: params.iter().map(|p| p.detach().zeros_like()).collect(),
            v: params.iter().map(|p| p.detach().zeros_like()).collect(),
        }
    }

    /// One update.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor]) {
        const EPS: f64 = 1e-8;
        self.steps += 1;
        let (b1, b2) = self.betas;
        let bias1 = 1.0 - b1.powi(self.steps as i32);
        let bias2 = 1.0 - b2.powi(self.steps as i32);
        tch::no_grad(|| {
            for (((p, g), m), v) in params.iter().zip(grads).zip(&mut self.m).zip(&mut self.v) {
                if !g.defined() {
                    continue;
                }
                let g = g + p * self.weight_decay;
                let _ = m.g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = v.g_mul_scalar_(b2).g_add_(&(&g * &g * (1.0 - b2)));
                let denom = (&*v / bias2).sqrt() + EPS;
                let _ = p.shallow_clone().g_sub_(&(&*m / denom * (self.lr / bias1)));
            }
        });
    }
}

/// Scales `grads` in place so that their joint L2 norm is at most
/// `max_norm` (PyTorch's `clip_grad_norm_`, without a host round trip).
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f64) {
    let norms: Vec<Tensor> = grads
        .iter()
        .filter(|g| g.defined())
        .map(|g| g.norm())
        .collect();
    if norms.is_empty() {
        return;
    }
    let total = Tensor::stack(&norms, 0).norm();
    let coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
    for g in grads.iter().filter(|g| g.defined()) {
        let _ = g.shallow_clone().g_mul_(&coef);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    fn vals(t: &Tensor) -> Vec<f32> {
        Vec::try_from(t).unwrap()
    }

    #[test]
    fn sgd_matches_pytorch_rule() {
        let p = t(&[1.0, 2.0]);
        let mut opt = Sgd::new(1, 0.9, 0.1);
        let g = t(&[0.5, -0.5]);
        opt.step(&[p.shallow_clone()], &[g.shallow_clone()], 0.1);
        // d = g + 0.1 p = (0.6, -0.3); buf = d; p -= 0.1 d
        let got = vals(&p);
        assert!(
            (got[0] - 0.94).abs() < 1e-6 && (got[1] - 2.03).abs() < 1e-6,
            "{got:?}"
        );
        opt.step(&[p.shallow_clone()], &[g], 0.1);
        // d = (0.5 + 0.094, -0.5 + 0.203); buf = 0.9 * (0.6, -0.3) + d
        let buf = vals(opt.buffers[0].as_ref().unwrap());
        assert!((buf[0] - (0.54 + 0.594)).abs() < 1e-6, "{buf:?}");
        // Undefined gradient: untouched.
        let before = vals(&p);
        opt.step(&[p.shallow_clone()], &[Tensor::new()], 0.1);
        assert_eq!(vals(&p), before);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let p = t(&[1.0, -1.0]);
        let mut opt = Adam::new(&[p.shallow_clone()], 0.01, (0.5, 0.999), 0.0);
        opt.step(&[p.shallow_clone()], &[t(&[3.0, -0.2])]);
        // Bias-corrected first step is lr * sign(g) (up to eps).
        let got = vals(&p);
        assert!(
            (got[0] - 0.99).abs() < 1e-5 && (got[1] + 0.99).abs() < 1e-5,
            "{got:?}"
        );
    }

    #[test]
    fn clipping_bounds_the_joint_norm() {
        let a = Tensor::full([4], 3.0, (Kind::Float, Device::Cpu));
        let b = Tensor::full([4], 4.0, (Kind::Float, Device::Cpu));
        clip_grad_norm(&[a.shallow_clone(), Tensor::new(), b.shallow_clone()], 5.0);
        let total = (vals(&a)
            .iter()
            .chain(vals(&b).iter())
            .map(|x| x * x)
            .sum::<f32>())
        .sqrt();
        assert!((total - 5.0).abs() < 1e-3, "{total}");
    }
}
