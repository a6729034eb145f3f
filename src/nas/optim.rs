//! SGD with momentum and Adam, owned by the project (docs/design.md §8): tch's
//! optimisers keep their state inside libtorch where it cannot be saved, and
//! exact resume needs it in the checkpoint.
//!
//! Both follow PyTorch's update rules (L2 weight decay added to the
//! gradient); a parameter whose gradient is undefined (an op outside the
//! subspace) is left alone, as PyTorch does with `grad = None`.

use tch::Tensor;

/// SGD with momentum and weight decay (weight step, paper B.1).
///
/// Two layouts, one update rule. [`Sgd::new`] updates each parameter
/// tensor on its own (the supernet, whose ops outside the subspace have no
/// gradient). [`Sgd::flat`] first moves every parameter into one flat
/// buffer, each parameter a view of its slice, so that clipping and the
/// update are a handful of ops over the buffer instead of about eight per
/// parameter tensor: an evaluation network has hundreds of small tensors,
/// and at that count the per-op dispatch, not the arithmetic, is what the
/// update costs.
#[derive(Debug)]
pub struct Sgd {
    /// Momentum factor.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// Momentum buffer per parameter, created at its first update (views of
    /// the flat buffer in the flat layout).
    buffers: Vec<Option<Tensor>>,
    /// The flat layout's buffers, when the parameters live in one.
    flat: Option<Flat>,
}

/// The parameters and their momentum, each one tensor; the parameters
/// (and [`Sgd::buffers`]) are views of their slices.
#[derive(Debug)]
struct Flat {
    params: Tensor,
    momentum: Tensor,
}

impl Sgd {
    /// An optimiser for `n` parameters, updated tensor by tensor.
    pub fn new(n: usize, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            buffers: (0..n).map(|_| None).collect(),
            flat: None,
        }
    }

    /// An optimiser for `params` that first gathers them into one flat
    /// buffer (their values kept; each becomes a contiguous view of its
    /// slice), for networks where every parameter gets a gradient at every
    /// step. The momentum starts at zero, which is PyTorch's first step
    /// exactly (`0.9 * 0 + d == d`). Parameters of mixed kinds or devices
    /// keep the tensor-by-tensor layout.
    pub fn flat(params: &[Tensor], momentum: f64, weight_decay: f64) -> Self {
        let mut sgd = Sgd::new(params.len(), momentum, weight_decay);
        let Some(first) = params.first() else {
            return sgd;
        };
        let (kind, device) = (first.kind(), first.device());
        if params
            .iter()
            .any(|p| p.kind() != kind || p.device() != device)
        {
            return sgd;
        }
        let total: i64 = params.iter().map(|p| p.numel() as i64).sum();
        let flat = Flat {
            params: Tensor::zeros([total], (kind, device)),
            momentum: Tensor::zeros([total], (kind, device)),
        };
        let gathered = tch::no_grad(|| -> Result<(), tch::TchError> {
            let mut offset = 0;
            for (p, buffer) in params.iter().zip(&mut sgd.buffers) {
                let n = p.numel() as i64;
                let size = p.size();
                let mut slot = flat
                    .params
                    .f_narrow(0, offset, n)?
                    .f_view(size.as_slice())?;
                slot.f_copy_(p)?;
                p.shallow_clone().f_set_data(&slot)?;
                *buffer = Some(
                    flat.momentum
                        .f_narrow(0, offset, n)?
                        .f_view(size.as_slice())?,
                );
                offset += n;
            }
            Ok(())
        });
        match gathered {
            Ok(()) => sgd.flat = Some(flat),
            Err(_) => sgd.buffers.iter_mut().for_each(|b| *b = None),
        }
        sgd
    }

    /// The momentum buffers, one per parameter in order (`None` until the
    /// parameter's first update in the tensor-by-tensor layout): what a
    /// checkpoint saves.
    pub fn buffers(&self) -> &[Option<Tensor>] {
        &self.buffers
    }

    /// Puts back parameter `i`'s momentum buffer from a checkpoint
    /// (copied into the flat buffer in that layout); an index past the
    /// parameters is ignored.
    pub fn set_buffer(&mut self, i: usize, value: Tensor) {
        let Some(slot) = self.buffers.get_mut(i) else {
            return;
        };
        match (&self.flat, slot) {
            (Some(_), Some(view)) => tch::no_grad(|| view.copy_(&value)),
            (_, slot) => *slot = Some(value),
        }
    }

    /// Clips `grads` (aligned with `params`) to joint norm `max_norm`, then
    /// takes one update at learning rate `lr`: in a few ops over the flat
    /// buffer when the parameters live in one and every gradient is
    /// defined, tensor by tensor otherwise.
    pub fn clip_and_step(&mut self, params: &[Tensor], grads: &[Tensor], lr: f64, max_norm: f64) {
        if let Some(flat) = &self.flat {
            if grads.len() == params.len() && grads.iter().all(Tensor::defined) {
                let g = Tensor::cat(&grads.iter().map(|g| g.reshape(-1)).collect::<Vec<_>>(), 0);
                tch::no_grad(|| {
                    clip_flat(&g, max_norm);
                    self.step_flat(flat, g, lr);
                });
                return;
            }
        }
        clip_grad_norm(grads, max_norm);
        self.step(params, grads, lr);
    }

    /// One update of the flat buffers with the flat gradient `g`.
    fn step_flat(&self, flat: &Flat, mut g: Tensor, lr: f64) {
        if self.weight_decay != 0.0 {
            let _ = g.g_add_(&(&flat.params * self.weight_decay));
        }
        let mut momentum = flat.momentum.shallow_clone();
        let _ = momentum.g_mul_scalar_(self.momentum).g_add_(&g);
        let _ = flat.params.shallow_clone().g_sub_(&(&momentum * lr));
    }

    /// One update of `params` with `grads` (aligned) at learning rate `lr`,
    /// tensor by tensor.
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

/// [`clip_grad_norm`] of one flat gradient: the same coefficient, the
/// norm summed in another order (equal within float rounding).
fn clip_flat(g: &Tensor, max_norm: f64) {
    let coef = (max_norm / (g.norm() + 1e-6)).clamp_max(1.0);
    let _ = g.shallow_clone().g_mul_(&coef);
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

    /// Three parameters of different shapes (one channels-last, as a
    /// convolution's weight may be), their gradients over three steps.
    fn params_and_grads() -> (Vec<Tensor>, Vec<Vec<Tensor>>) {
        tch::manual_seed(7);
        let opts = (Kind::Float, Device::Cpu);
        let params = vec![
            crate::nas::ops::to_channels_last(&Tensor::randn([4, 3, 3, 3], opts))
                .set_requires_grad(true),
            Tensor::randn([5], opts).set_requires_grad(true),
            Tensor::randn([2, 6], opts).set_requires_grad(true),
        ];
        let grads = (0..3)
            .map(|_| params.iter().map(|p| p.randn_like() * 3.0).collect())
            .collect();
        (params, grads)
    }

    fn copies(params: &[Tensor]) -> Vec<Tensor> {
        params
            .iter()
            .map(|p| p.detach().copy().set_requires_grad(true))
            .collect()
    }

    #[test]
    fn the_flat_layout_updates_as_tensor_by_tensor_does() {
        let (params, grads) = params_and_grads();
        let flat_params = copies(&params);
        // Another handle on the same tensors, as a VarStore keeps them.
        let held: Vec<Tensor> = flat_params.iter().map(Tensor::shallow_clone).collect();
        let mut one_by_one = Sgd::new(params.len(), 0.9, 0.1);
        let mut flat = Sgd::flat(&flat_params, 0.9, 0.1);
        assert!(flat.flat.is_some(), "one kind, one device: flat");
        for (p, f) in params.iter().zip(&held) {
            assert!(p.allclose(f, 0.0, 0.0, false), "gathering keeps the values");
        }
        for g in &grads {
            let copied: Vec<Tensor> = g.iter().map(Tensor::copy).collect();
            one_by_one.clip_and_step(&params, &copied, 0.1, 5.0);
            flat.clip_and_step(&flat_params, g, 0.1, 5.0);
        }
        for (p, f) in params.iter().zip(&held) {
            assert!(p.allclose(f, 1e-5, 1e-6, false), "{p} vs {f}");
        }
        for (a, b) in one_by_one.buffers().iter().zip(flat.buffers()) {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            assert!(a.allclose(b, 1e-5, 1e-6, false));
        }
    }

    #[test]
    fn the_flat_layout_leaves_a_parameter_without_gradient_alone_and_restores_momentum() {
        let (params, grads) = params_and_grads();
        let mut flat = Sgd::flat(&params, 0.9, 0.1);
        let before = params[1].copy();
        let partial = vec![grads[0][0].copy(), Tensor::new(), grads[0][2].copy()];
        flat.clip_and_step(&params, &partial, 0.1, 5.0);
        assert!(params[1].allclose(&before, 0.0, 0.0, false));
        // A checkpoint's buffer goes into the flat momentum, seen by the
        // next flat step.
        let saved = Tensor::full([5], 2.0, (Kind::Float, Device::Cpu));
        flat.set_buffer(1, saved.copy());
        assert_eq!(vals(flat.buffers()[1].as_ref().unwrap()), vals(&saved));
        let momentum = &flat.flat.as_ref().unwrap().momentum;
        assert_eq!(vals(&momentum.narrow(0, 108, 5)), vals(&saved));
        flat.set_buffer(99, saved);
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
