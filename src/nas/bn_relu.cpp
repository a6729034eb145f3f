// Training-mode batch norm, optionally followed by ReLU, of a channels-last
// float tensor on the CPU, as one autograd op with its own backward pass
// (the Rust side: src/nas/fused.rs).
//
// libtorch runs the pair as two ops and five passes over the activations
// forward (mean, variance, normalise, ReLU reading the normalised map) and
// three backward (ReLU's, then batch norm's reduction and its gradient).
// Here the forward pass is two (per-channel sums, then normalise and clamp
// in one write) and the backward pass two (the masked sums, then the
// gradient), the ReLU's mask recomputed from the input instead of read.
// Every pass is memory-bound at the 16-256 channels of a DARTS cell, so
// passes are what the time is.
//
// The sums are taken in double precision around a per-channel shift (the
// first row's value), so the variance as mean square less squared mean
// keeps what libtorch's two-pass variance keeps.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Per-thread partial sums, `2 * channels` doubles each, merged by the
// caller: `at::parallel_for` hands each thread one contiguous range.
struct Partials {
  int64_t channels;
  std::vector<double> sums;

  Partials(int64_t threads, int64_t channels)
      : channels(channels), sums(static_cast<size_t>(threads * 2 * channels), 0.0) {}

  double* of_thread(int64_t t) { return sums.data() + t * 2 * channels; }

  // The first and second sums of every channel, over all threads.
  void merge(std::vector<double>& a, std::vector<double>& b) const {
    a.assign(channels, 0.0);
    b.assign(channels, 0.0);
    const int64_t threads = static_cast<int64_t>(sums.size()) / (2 * channels);
    for (int64_t t = 0; t < threads; ++t) {
      const double* p = sums.data() + t * 2 * channels;
      for (int64_t c = 0; c < channels; ++c) {
        a[c] += p[c];
        b[c] += p[channels + c];
      }
    }
  }
};

constexpr int64_t kGrainRows = 256;
// Rows summed in single precision before the sums join the thread's
// double-precision ones: short enough to keep float's rounding small,
// long enough that the inner loops vectorise over the channels.
constexpr int64_t kBlockRows = 64;

// The hot loops below are functions of a range of rows, each compiled
// twice (AVX2, and the baseline) and picked when the program loads;
// `at::parallel_for` hands each thread its range (OpenMP, as libtorch).
#define DDSAS_CLONES __attribute__((target_clones("avx2", "default")))

// Per channel over rows [begin, end) of `x` (`channels` floats each): the
// sum and the sum of squares of `x - shift`, added to `s` and `q`.
DDSAS_CLONES void shifted_sums_rows(const float* __restrict x, int64_t begin, int64_t end,
                                    int64_t channels, const float* __restrict shift, double* s,
                                    double* q) {
  std::vector<float> block(2 * channels);
  float* __restrict bs = block.data();
  float* __restrict bq = bs + channels;
  for (int64_t r0 = begin; r0 < end; r0 += kBlockRows) {
    std::fill(block.begin(), block.end(), 0.f);
    for (int64_t r = r0; r < std::min(end, r0 + kBlockRows); ++r) {
      const float* __restrict row = x + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const float v = row[c] - shift[c];
        bs[c] += v;
        bq[c] += v * v;
      }
    }
    for (int64_t c = 0; c < channels; ++c) {
      s[c] += bs[c];
      q[c] += bq[c];
    }
  }
}

void shifted_sums(const float* x, int64_t rows, int64_t channels, const float* shift,
                  Partials& out) {
  at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
    double* s = out.of_thread(at::get_thread_num());
    shifted_sums_rows(x, begin, end, channels, shift, s, s + channels);
  });
}

// y = x * scale + offset per channel over rows [begin, end), clamped at 0
// when `relu`.
DDSAS_CLONES void normalise_rows(const float* __restrict x, float* __restrict y, int64_t begin,
                                 int64_t end, int64_t channels, const float* __restrict scale,
                                 const float* __restrict offset, bool relu) {
  for (int64_t r = begin; r < end; ++r) {
    const float* __restrict in = x + r * channels;
    float* __restrict out = y + r * channels;
    if (relu) {
      for (int64_t c = 0; c < channels; ++c) {
        out[c] = std::max(in[c] * scale[c] + offset[c], 0.f);
      }
    } else {
      for (int64_t c = 0; c < channels; ++c) {
        out[c] = in[c] * scale[c] + offset[c];
      }
    }
  }
}

void normalise(const float* x, float* y, int64_t rows, int64_t channels, const float* scale,
               const float* offset, bool relu) {
  at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
    normalise_rows(x, y, begin, end, channels, scale, offset, relu);
  });
}

// Per channel over rows [begin, end): the sum of the gradient g reaching
// the norm's output (gy, zeroed by the ReLU where the recomputed output is
// not positive) and the sum of g * (x - mean), added to `s` and `sx`.
DDSAS_CLONES void gradient_sums_rows(const float* __restrict x, const float* __restrict gy,
                                     int64_t begin, int64_t end, int64_t channels,
                                     const float* __restrict mean,
                                     const float* __restrict scale,
                                     const float* __restrict offset, bool relu, double* s,
                                     double* sx) {
  std::vector<float> block(2 * channels);
  float* __restrict bs = block.data();
  float* __restrict bx = bs + channels;
  for (int64_t r0 = begin; r0 < end; r0 += kBlockRows) {
    std::fill(block.begin(), block.end(), 0.f);
    for (int64_t r = r0; r < std::min(end, r0 + kBlockRows); ++r) {
      const float* __restrict in = x + r * channels;
      const float* __restrict g_out = gy + r * channels;
      for (int64_t c = 0; c < channels; ++c) {
        const bool kept = !relu || in[c] * scale[c] + offset[c] > 0.f;
        const float g = kept ? g_out[c] : 0.f;
        bs[c] += g;
        bx[c] += g * (in[c] - mean[c]);
      }
    }
    for (int64_t c = 0; c < channels; ++c) {
      s[c] += bs[c];
      sx[c] += bx[c];
    }
  }
}

void gradient_sums(const float* x, const float* gy, int64_t rows, int64_t channels,
                   const float* mean, const float* scale, const float* offset, bool relu,
                   Partials& out) {
  at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
    double* s = out.of_thread(at::get_thread_num());
    gradient_sums_rows(x, gy, begin, end, channels, mean, scale, offset, relu, s, s + channels);
  });
}

// gx = k * (g - a - (x - mean) * b) per channel over rows [begin, end), g
// zeroed as above.
DDSAS_CLONES void input_gradient_rows(const float* __restrict x, const float* __restrict gy,
                                      float* __restrict gx, int64_t begin, int64_t end,
                                      int64_t channels, const float* __restrict mean,
                                      const float* __restrict scale,
                                      const float* __restrict offset, bool relu,
                                      const float* __restrict k, const float* __restrict a,
                                      const float* __restrict b) {
  for (int64_t r = begin; r < end; ++r) {
    const float* __restrict in = x + r * channels;
    const float* __restrict g_out = gy + r * channels;
    float* __restrict g_in = gx + r * channels;
    for (int64_t c = 0; c < channels; ++c) {
      const bool kept = !relu || in[c] * scale[c] + offset[c] > 0.f;
      const float g = kept ? g_out[c] : 0.f;
      g_in[c] = k[c] * (g - a[c] - (in[c] - mean[c]) * b[c]);
    }
  }
}

void input_gradient(const float* x, const float* gy, float* gx, int64_t rows, int64_t channels,
                    const float* mean, const float* scale, const float* offset, bool relu,
                    const float* k, const float* a, const float* b) {
  at::parallel_for(0, rows, kGrainRows, [&](int64_t begin, int64_t end) {
    input_gradient_rows(x, gy, gx, begin, end, channels, mean, scale, offset, relu, k, a, b);
  });
}

// Per channel, from the batch's mean and inverse standard deviation: the
// scale and offset of the normalisation (invstd * weight, bias - mean *
// invstd * weight), in plain loops: a few small libtorch ops per call
// would cost more than the passes save at these sizes.
struct Affine {
  std::vector<float> scale, offset;

  Affine(const float* mean, const float* invstd, const at::Tensor& weight,
         const at::Tensor& bias, int64_t channels)
      : scale(channels), offset(channels) {
    const at::Tensor w = weight.contiguous();
    const at::Tensor b = bias.contiguous();
    const float* wd = w.const_data_ptr<float>();
    const float* bd = b.const_data_ptr<float>();
    for (int64_t c = 0; c < channels; ++c) {
      scale[c] = invstd[c] * wd[c];
      offset[c] = bd[c] - mean[c] * scale[c];
    }
  }
};

// Moves `running` towards `batch` by `momentum`, scaling `batch` first.
void update_running(at::Tensor& running, const std::vector<double>& batch, double scale,
                    double momentum) {
  at::Tensor r = running.contiguous();
  float* d = r.mutable_data_ptr<float>();
  for (size_t c = 0; c < batch.size(); ++c) {
    d[c] = static_cast<float>((1.0 - momentum) * d[c] + momentum * scale * batch[c]);
  }
  if (!r.is_same(running)) {
    running.copy_(r);
  }
}

struct BatchNormRelu : public torch::autograd::Function<BatchNormRelu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const at::Tensor& bias, at::Tensor running_mean,
                            at::Tensor running_var, double momentum, double eps, bool relu,
                            bool affine) {
    const int64_t channels = x.size(1);
    const int64_t rows = x.numel() / channels;
    const float* data = x.const_data_ptr<float>();
    // The first row, as the sums' shift: data is [rows, channels].
    std::vector<float> shift(data, data + channels);
    Partials partials(at::get_num_threads(), channels);
    shifted_sums(data, rows, channels, shift.data(), partials);
    std::vector<double> s, q;
    partials.merge(s, q);
    // Row 0: the batch's mean, row 1: its inverse standard deviation.
    at::Tensor stats = at::empty({2, channels}, x.options());
    float* mean = stats.mutable_data_ptr<float>();
    float* invstd = mean + channels;
    std::vector<double> batch_mean(channels), batch_var(channels);
    for (int64_t c = 0; c < channels; ++c) {
      const double m = s[c] / rows;
      batch_var[c] = std::max(q[c] / rows - m * m, 0.0);
      batch_mean[c] = m + shift[c];
      mean[c] = static_cast<float>(batch_mean[c]);
      invstd[c] = static_cast<float>(1.0 / std::sqrt(batch_var[c] + eps));
    }
    const double unbiased = rows > 1 ? static_cast<double>(rows) / (rows - 1) : 1.0;
    update_running(running_mean, batch_mean, 1.0, momentum);
    update_running(running_var, batch_var, unbiased, momentum);
    const Affine affine_map(mean, invstd, weight, bias, channels);
    at::Tensor y = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    normalise(data, y.mutable_data_ptr<float>(), rows, channels, affine_map.scale.data(),
              affine_map.offset.data(), relu);
    ctx->save_for_backward({x, weight, bias});
    ctx->saved_data["stats"] = stats;
    ctx->saved_data["relu"] = relu;
    ctx->saved_data["affine"] = affine;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& bias = saved[2];
    const at::Tensor stats = ctx->saved_data["stats"].toTensor();
    const bool relu = ctx->saved_data["relu"].toBool();
    const bool affine = ctx->saved_data["affine"].toBool();
    const at::Tensor gy = grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    const int64_t channels = x.size(1);
    const int64_t rows = x.numel() / channels;
    const float* mean = stats.const_data_ptr<float>();
    const float* invstd = mean + channels;
    const Affine affine_map(mean, invstd, weight, bias, channels);
    Partials partials(at::get_num_threads(), channels);
    gradient_sums(x.const_data_ptr<float>(), gy.const_data_ptr<float>(), rows, channels, mean,
                  affine_map.scale.data(), affine_map.offset.data(), relu, partials);
    std::vector<double> sg, sgx;
    partials.merge(sg, sgx);
    std::vector<float> k(channels), a(channels), b(channels);
    for (int64_t c = 0; c < channels; ++c) {
      k[c] = affine_map.scale[c];
      a[c] = static_cast<float>(sg[c] / rows);
      b[c] = static_cast<float>(static_cast<double>(invstd[c]) * invstd[c] * sgx[c] / rows);
    }
    at::Tensor gx = at::empty_like(x, at::MemoryFormat::ChannelsLast);
    input_gradient(x.const_data_ptr<float>(), gy.const_data_ptr<float>(),
                   gx.mutable_data_ptr<float>(), rows, channels, mean, affine_map.scale.data(),
                   affine_map.offset.data(), relu, k.data(), a.data(), b.data());
    at::Tensor grad_weight, grad_bias;
    if (affine) {
      grad_weight = at::empty({channels}, x.options());
      grad_bias = at::empty({channels}, x.options());
      float* gw = grad_weight.mutable_data_ptr<float>();
      float* gb = grad_bias.mutable_data_ptr<float>();
      for (int64_t c = 0; c < channels; ++c) {
        gw[c] = static_cast<float>(sgx[c] * invstd[c]);
        gb[c] = static_cast<float>(sg[c]);
      }
    }
    return {gx,          grad_weight, grad_bias,   at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

char* dup_message(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

}  // namespace

extern "C" {

// The op on `x` (channels-last float, CPU; the caller checks), with
// `weight` and `bias` NULL for a norm without affine parameters. Writes the
// output to `*out`; returns NULL, or an error message the caller frees
// with `ddsas_bn_relu_free`.
char* ddsas_bn_relu(const at::Tensor* x, const at::Tensor* weight, const at::Tensor* bias,
                    at::Tensor* running_mean, at::Tensor* running_var, double momentum,
                    double eps, int relu, at::Tensor** out) {
  try {
    // Autograd's custom functions take no undefined tensors: a norm
    // without affine parameters gets constant ones and zeros.
    const bool affine = weight != nullptr && bias != nullptr;
    const int64_t channels = x->size(1);
    at::Tensor w = affine ? *weight : at::ones({channels}, x->options());
    at::Tensor b = affine ? *bias : at::zeros({channels}, x->options());
    at::Tensor y = BatchNormRelu::apply(*x, w, b, *running_mean, *running_var, momentum, eps,
                                        relu != 0, affine);
    *out = new at::Tensor(std::move(y));
    return nullptr;
  } catch (const std::exception& e) {
    return dup_message(e.what());
  }
}

void ddsas_bn_relu_free(char* message) { std::free(message); }

}  // extern "C"
