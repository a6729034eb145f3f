//! Training-mode batch norm, and batch norm followed by ReLU, as one op of
//! our own on channels-last CPU tensors (`src/nas/bn_relu.cpp`, compiled by
//! `build.rs` against the libtorch that `tch` links).
//!
//! libtorch makes five passes over the activations forward and three
//! backward for the pair; the op makes two each way (the C++ file says
//! how), and every pass is memory-bound at a DARTS cell's channel counts:
//! batch norm and ReLU were about a fifth of a CPU training step
//! (BENCHMARKS.md, issue 23).

use std::ffi::{c_char, c_int, c_void, CStr};

use tch::{Device, Kind, Tensor};

extern "C" {
    fn ddsas_bn_relu(
        x: *const c_void,
        weight: *const c_void,
        bias: *const c_void,
        running_mean: *const c_void,
        running_var: *const c_void,
        momentum: f64,
        eps: f64,
        relu: c_int,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn ddsas_bn_relu_free(message: *mut c_char);
}

/// The statistics and parameters of one batch norm.
pub struct Norm<'a> {
    /// The affine weight and bias, `None` for a norm without them.
    pub affine: Option<(&'a Tensor, &'a Tensor)>,
    /// The running mean and variance, moved towards the batch's.
    pub running: (&'a Tensor, &'a Tensor),
    /// The running statistics' momentum.
    pub momentum: f64,
    /// Added to the variance.
    pub eps: f64,
}

/// Whether the op takes `x`: a 4-d float tensor on the CPU whose memory is
/// `[N, H, W, C]` (what a channels-last network hands its norms).
pub fn applies_to(x: &Tensor) -> bool {
    x.dim() == 4
        && x.kind() == Kind::Float
        && x.device() == Device::Cpu
        && x.numel() > 0
        && x.permute([0, 2, 3, 1]).is_contiguous()
}

/// The training-mode batch norm of `x` by `norm`, clamped at 0 when
/// `relu`; it moves the running statistics as libtorch's does (unbiased
/// variance). `None` when the op does not take `x` ([`applies_to`]) or
/// failed, and the caller runs libtorch's.
pub fn batch_norm_train(x: &Tensor, norm: &Norm, relu: bool) -> Option<Tensor> {
    if !applies_to(x) {
        return None;
    }
    let ptr = |t: &Tensor| t.as_ptr() as *const c_void;
    let (weight, bias) = match norm.affine {
        Some((w, b)) => (ptr(w), ptr(b)),
        None => (std::ptr::null(), std::ptr::null()),
    };
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: every pointer is a live `at::Tensor` owned by the caller's
    // `tch::Tensor`s for the duration of the call (or NULL where the C++
    // side allows it); `out` receives a new heap tensor that `from_ptr`
    // takes ownership of.
    let message = unsafe {
        ddsas_bn_relu(
            ptr(x),
            weight,
            bias,
            ptr(norm.running.0),
            ptr(norm.running.1),
            norm.momentum,
            norm.eps,
            c_int::from(relu),
            &mut out,
        )
    };
    if !message.is_null() {
        // SAFETY: a NUL-terminated string from the C++ side, freed there.
        let text = unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned();
        unsafe { ddsas_bn_relu_free(message) };
        tracing::warn!("batch norm op failed, libtorch's runs instead: {text}");
        return None;
    }
    // SAFETY: a tensor allocated by the C++ side for us to own.
    Some(unsafe { Tensor::from_ptr(out.cast()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest absolute difference of two tensors.
    fn gap(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    /// The op's output, running statistics and gradients (input, weight,
    /// bias) are libtorch's batch norm's (then ReLU's): with and without
    /// affine parameters and ReLU, on inputs whose mean is far from 0
    /// (the variance's precision) and with 1x1 maps.
    #[test]
    fn the_op_is_libtorchs_batch_norm_and_relu() {
        let opts = (Kind::Float, Device::Cpu);
        for (shape, shift) in [
            ([8, 12, 5, 6], 0.0),
            ([4, 20, 7, 7], 50.0),
            ([16, 9, 1, 1], 3.0),
        ] {
            for (affine, relu) in [(true, true), (true, false), (false, true), (false, false)] {
                tch::manual_seed(7);
                let c = shape[1];
                let x =
                    crate::nas::ops::to_channels_last(&(Tensor::randn(shape, opts) * 2.0 + shift));
                let w = (Tensor::rand([c], opts) + 0.5).set_requires_grad(true);
                let b = Tensor::randn([c], opts).set_requires_grad(true);
                let upstream = Tensor::randn(shape, opts);
                let what = format!("{shape:?} shift {shift} affine {affine} relu {relu}");
                let run = |ours: bool| {
                    let x = x.copy().set_requires_grad(true);
                    let (mean, var) = (Tensor::zeros([c], opts), Tensor::ones([c], opts));
                    let y = if ours {
                        let norm = Norm {
                            affine: affine.then_some((&w, &b)),
                            running: (&mean, &var),
                            momentum: 0.1,
                            eps: 1e-5,
                        };
                        batch_norm_train(&x, &norm, relu).expect("the op takes the input")
                    } else {
                        let (w, b) = if affine {
                            (Some(&w), Some(&b))
                        } else {
                            (None, None)
                        };
                        let y = x.batch_norm(w, b, Some(&mean), Some(&var), true, 0.1, 1e-5, false);
                        if relu {
                            y.relu()
                        } else {
                            y
                        }
                    };
                    let inputs: Vec<Tensor> = if affine {
                        vec![x.shallow_clone(), w.shallow_clone(), b.shallow_clone()]
                    } else {
                        vec![x.shallow_clone()]
                    };
                    let grads = Tensor::run_backward(
                        &[(&y * &upstream).sum(Kind::Float)],
                        &inputs,
                        false,
                        false,
                    );
                    (y.detach(), mean, var, grads)
                };
                let (y0, mean0, var0, g0) = run(false);
                let (y1, mean1, var1, g1) = run(true);
                assert!(gap(&y0, &y1) < 1e-4, "{what}: output {}", gap(&y0, &y1));
                assert!(
                    gap(&mean0, &mean1) < 1e-4 * (1.0 + shift),
                    "{what}: running mean"
                );
                assert!(
                    gap(&var0, &var1) < 1e-4,
                    "{what}: running var {}",
                    gap(&var0, &var1)
                );
                for (i, (a, b)) in g0.iter().zip(&g1).enumerate() {
                    let scale = 1.0 + f64::try_from(a.abs().max()).unwrap();
                    assert!(
                        gap(a, b) < 1e-4 * scale,
                        "{what}: gradient {i} {}",
                        gap(a, b)
                    );
                }
                assert!(
                    crate::nas::ops::is_channels_last(&g1[0]) || shape[2] == 1,
                    "{what}"
                );
            }
        }
    }

    /// Tensors the op does not take are left to libtorch.
    #[test]
    fn the_op_declines_other_layouts_and_kinds() {
        let x = Tensor::randn([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        assert!(!applies_to(&x), "channels-first");
        assert!(!applies_to(
            &crate::nas::ops::to_channels_last(&x).to_kind(Kind::Double)
        ));
        assert!(applies_to(&crate::nas::ops::to_channels_last(&x)));
        assert!(!applies_to(&Tensor::randn(
            [2, 3],
            (Kind::Float, Device::Cpu)
        )));
    }
}

#[cfg(test)]
mod bench {
    use super::*;

    /// Prints milliseconds per forward and backward pass of the op and of
    /// libtorch's pair at 1 and 2 threads:
    /// `cargo test --release --lib -- --ignored fused::bench --nocapture`.
    #[test]
    #[ignore]
    fn bench_batch_norm_relu() {
        let opts = (Kind::Float, Device::Cpu);
        for threads in [1, 2] {
            tch::set_num_threads(threads);
            for shape in [[32, 16, 32, 32], [32, 64, 8, 8]] {
                let c = shape[1];
                let x = crate::nas::ops::to_channels_last(&Tensor::randn(shape, opts));
                let w = Tensor::ones([c], opts).set_requires_grad(true);
                let b = Tensor::zeros([c], opts).set_requires_grad(true);
                let (mean, var) = (Tensor::zeros([c], opts), Tensor::ones([c], opts));
                let up = crate::nas::ops::to_channels_last(&Tensor::randn(shape, opts));
                for ours in [false, true, false, true] {
                    let time = std::time::Instant::now();
                    for _ in 0..50 {
                        let x = x.shallow_clone().set_requires_grad(true);
                        let y = if ours {
                            let norm = Norm {
                                affine: Some((&w, &b)),
                                running: (&mean, &var),
                                momentum: 0.1,
                                eps: 1e-5,
                            };
                            batch_norm_train(&x, &norm, true).unwrap()
                        } else {
                            x.batch_norm(
                                Some(&w),
                                Some(&b),
                                Some(&mean),
                                Some(&var),
                                true,
                                0.1,
                                1e-5,
                                false,
                            )
                            .relu()
                        };
                        let _ = Tensor::run_backward(
                            &[(&y * &up).sum(Kind::Float)],
                            &[&x, &w, &b],
                            false,
                            false,
                        );
                    }
                    let ms = time.elapsed().as_secs_f64() * 1e3 / 50.0;
                    println!("threads {threads} {shape:?} ours {ours}: {ms:.3} ms");
                }
            }
        }
    }
}
