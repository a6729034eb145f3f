// The C side of `nas::dist`: libtorch's own distributed engine (c10d's
// TCPStore and ProcessGroupGloo) behind a few `extern "C"` functions that
// take `at::Tensor*` the way tch hands them out. Every function answers a
// heap string with one line of error text (NULL on success), which Rust
// takes over and frees with `ddsas_dist_free_str`.
//
// Gloo's own headers come from Debian's libgloo-dev (2022), older than the
// Gloo that the wheel's libtorch was built with. That is safe here because
// this file never builds, copies or inspects a Gloo object: every Gloo
// type in ProcessGroupGloo.hpp sits behind a shared_ptr or unique_ptr that
// libtorch creates and destroys, ProcessGroupGloo's and its Options' sizes
// do not depend on Gloo, and the one class whose virtual table depends on
// the Gloo version (GlooStore, which gains methods with
// GLOO_STORE_HAS_STORE_V2) is only ever constructed inside libtorch.
// Nothing links Debian's libgloo: the Gloo code that runs is libtorch's.
//
// The group can instead be a ProcessGroupNCCL, the backend of DDP on CUDA
// devices, made by `ddsas_nccl_group` of shim_nccl.cpp: a shared library of
// its own that Rust loads only for NCCL (build.rs builds it where it finds
// nccl.h and the CUDA runtime headers) and passes in as a function.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using std::chrono::milliseconds;

// How often each rank tells the store it is alive; a peer whose counter
// stands still over several periods is named as the one that died.
constexpr milliseconds kHeartbeat{250};
constexpr int kProbePeriods = 6;

struct Group {
  std::string addr;
  uint16_t port = 0;
  int rank = 0;
  int size = 1;
  milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  // Gloo's or NCCL's: the collectives below are the backends' common ones.
  c10::intrusive_ptr<c10d::Backend> pg;
  // A second connection to the store, for the heartbeat and the probe
  // after a failure, so that neither waits behind Gloo's rendezvous.
  c10::intrusive_ptr<c10d::Store> beat_store;
  std::thread beat;
  std::atomic<bool> stop{false};
  // The line of the first collective that failed: every later one answers
  // it at once instead of waiting the timeout again. A differentiable sum
  // inside the forward or backward pass cannot return an error, so it
  // records it here and the next collective reports it.
  std::mutex broken_mutex;
  std::string broken;

  std::string broken_line() {
    std::lock_guard<std::mutex> lock(broken_mutex);
    return broken;
  }

  std::string set_broken(const std::string& line) {
    std::lock_guard<std::mutex> lock(broken_mutex);
    if (broken.empty()) {
      broken = line;
    }
    return broken;
  }
};

char* dup_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  char* out = static_cast<char*>(std::malloc(line.size() + 1));
  std::memcpy(out, line.c_str(), line.size() + 1);
  return out;
}

std::string beat_key(int rank) {
  return "ddsas/beat/" + std::to_string(rank);
}

std::string host_key(int rank) {
  return "ddsas/host/" + std::to_string(rank);
}

std::string this_host() {
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) {
    return "?";
  }
  return name;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// The interface Gloo binds: GLOO_SOCKET_IFNAME as in PyTorch, loopback when
// the rendezvous is on loopback, else the address this host's name
// resolves to (libtorch falls back to loopback itself).
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& addr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  if (is_loopback(addr)) {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

c10::intrusive_ptr<c10d::Store> connect_store(
    const std::string& addr, uint16_t port, bool server, milliseconds timeout) {
  c10d::TCPStoreOptions opts;
  opts.port = port;
  opts.isServer = server;
  opts.waitWorkers = false;
  opts.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(addr, opts);
}

c10::intrusive_ptr<c10d::Backend> gloo_group(Group* g) {
  auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
  opts->devices.push_back(gloo_device(g->addr));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, g->rank, g->size, opts);
}

// shim_nccl.cpp's `ddsas_nccl_group`, as Rust found it in libddsas_nccl.so.
using NcclFactory =
    char* (*)(c10d::Store*, int, int, int64_t, c10d::Backend**);

c10::intrusive_ptr<c10d::Backend> nccl_group(Group* g, NcclFactory make) {
  c10d::Backend* raw = nullptr;
  if (char* err = make(g->store.get(), g->rank, g->size, g->timeout.count(), &raw)) {
    std::string line(err);
    std::free(err);
    throw std::runtime_error(line);
  }
  return c10::intrusive_ptr<c10d::Backend>::reclaim(raw);
}

void heartbeat(Group* g) {
  try {
    while (!g->stop.load()) {
      g->beat_store->add(beat_key(g->rank), 1);
      std::this_thread::sleep_for(kHeartbeat);
    }
  } catch (...) {
    // The store's host (rank 0) is gone; the next collective says so.
  }
}

std::string host_of(Group* g, int rank) {
  try {
    auto bytes = g->beat_store->get(host_key(rank));
    return std::string(bytes.begin(), bytes.end());
  } catch (...) {
    return "?";
  }
}

// Which peers stopped beating: their counters, read twice several periods
// apart. The store lives in rank 0, so a store that does not answer means
// rank 0 is gone.
std::string silent_peers(Group* g) {
  std::vector<int64_t> before(g->size, 0);
  try {
    for (int r = 0; r < g->size; ++r) {
      before[r] = g->beat_store->add(beat_key(r), 0);
    }
    std::this_thread::sleep_for(kHeartbeat * kProbePeriods);
    std::ostringstream out;
    int silent = 0;
    for (int r = 0; r < g->size; ++r) {
      if (r != g->rank && g->beat_store->add(beat_key(r), 0) == before[r]) {
        out << (silent++ ? ", " : "") << "rank " << r << " (host "
            << host_of(g, r) << ")";
      }
    }
    if (silent == 0) {
      return "no peer died (one may be hung or slower than the timeout)";
    }
    return out.str() + " stopped answering";
  } catch (...) {
    return "rank 0 (the rendezvous host " + g->addr + ") stopped answering";
  }
}

// The line of a failed collective, which also breaks the group for the
// collectives after it.
std::string failure(Group* g, const char* what, const std::exception& e) {
  std::string first = e.what();
  first = first.substr(0, first.find('\n'));
  std::ostringstream out;
  out << silent_peers(g) << ": " << what << " failed on rank " << g->rank
      << " of " << g->size << ": " << first;
  return g->set_broken(out.str());
}

// Runs `op` on one flat buffer per bucket of consecutive tensors of one
// dtype (at most `bucket_bytes` each, one tensor at least) and copies the
// results back into the tensors.
template <typename Op>
void by_buckets(at::Tensor** ts, size_t n, int64_t bucket_bytes, Op op) {
  at::NoGradGuard no_grad;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    int64_t bytes = 0;
    std::vector<at::Tensor> flat;
    while (j < n && ts[j]->scalar_type() == ts[i]->scalar_type() &&
           (j == i || bytes + ts[j]->nbytes() <= (size_t)bucket_bytes)) {
      bytes += ts[j]->nbytes();
      flat.push_back(ts[j]->reshape({-1}));
      ++j;
    }
    at::Tensor buffer = at::cat(flat);
    op(buffer);
    int64_t offset = 0;
    for (size_t k = i; k < j; ++k) {
      int64_t numel = ts[k]->numel();
      ts[k]->copy_(buffer.narrow(0, offset, numel).view_as(*ts[k]));
      offset += numel;
    }
    i = j;
  }
}

void wait(c10::intrusive_ptr<c10d::Work> work) {
  work->wait();
}

void sum_in_place(Group* g, at::Tensor& buffer) {
  std::vector<at::Tensor> one{buffer};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = g->timeout;
  wait(g->pg->allreduce(one, opts));
}

// The sum of `x` over the ranks, or, once the group is broken (now or
// before), this rank's own `x`: the caller cannot fail, and the next
// collective reports the failure.
at::Tensor sum_or_local(Group* g, const at::Tensor& x) {
  at::Tensor buffer = x.detach().clone(at::MemoryFormat::Contiguous);
  if (!g->broken_line().empty()) {
    return buffer;
  }
  try {
    sum_in_place(g, buffer);
  } catch (const std::exception& e) {
    failure(g, "all-reduce", e);
    return x.detach().clone(at::MemoryFormat::Contiguous);
  }
  return buffer;
}

// A sum over the ranks inside autograd: each rank's output is the sum of
// every rank's input, so the gradient of an input is the sum over the
// ranks of the gradients their outputs received (what synchronised batch
// norm needs for its statistics).
struct SumAcrossRanks : public torch::autograd::Function<SumAcrossRanks> {
  static at::Tensor forward(
      torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t group) {
    ctx->saved_data["group"] = group;
    return sum_or_local(reinterpret_cast<Group*>(group), x);
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto* g = reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    return {sum_or_local(g, grads[0]), at::Tensor()};
  }
};

// The broken group's line, if a collective failed before: NULL otherwise.
char* broken_error(Group* g) {
  std::string line = g->broken_line();
  return line.empty() ? nullptr : dup_line(line);
}

// Gradients averaged while the backward pass still runs, as DDP's reducer
// does: a hook on each parameter counts its bucket's gradients as autograd
// hands them over, and the bucket's all-reduce starts (asynchronously, on
// the backend's own threads) as soon as its last one is there; `finish`
// waits for them and copies the averages into the step's gradients.
// Buckets take the parameters in reverse order, the order in which the
// backward pass makes their gradients. A bucket that did not fill (a
// parameter without a gradient in this pass) is reduced in `finish` from
// the gradients it is given, in the same order on every rank, since every
// rank runs the same graph.
struct Reducer {
  struct Bucket {
    std::vector<size_t> members;
    std::vector<at::Tensor> grads;
    size_t ready = 0;
    std::vector<at::Tensor> buffer;
    c10::intrusive_ptr<c10d::Work> work;
  };

  Group* g = nullptr;
  std::vector<at::Tensor> params;
  std::vector<unsigned> hooks;
  // Parameter i is member slot_of[i] of bucket bucket_of[i].
  std::vector<size_t> bucket_of;
  std::vector<size_t> slot_of;
  std::vector<Bucket> buckets;
  std::mutex mutex;
  bool armed = false;
  // Buckets of the last pass whose all-reduce the hooks started.
  size_t overlapped = 0;

  // Parameter `i`'s gradient is final: the bucket's all-reduce starts
  // when it is the last. Never throws (autograd would take the exception
  // for the pass's): a failure breaks the group, and `finish` answers it.
  void ready(size_t i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || !grad.defined()) {
      return;
    }
    Bucket& b = buckets[bucket_of[i]];
    size_t slot = slot_of[i];
    if (b.grads[slot].defined()) {
      return;
    }
    b.grads[slot] = grad;
    if (++b.ready < b.members.size() || !g->broken_line().empty()) {
      return;
    }
    try {
      at::NoGradGuard no_grad;
      std::vector<at::Tensor> flat;
      for (const at::Tensor& t : b.grads) {
        flat.push_back(t.reshape({-1}));
      }
      b.buffer = {at::cat(flat)};
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      opts.timeout = g->timeout;
      b.work = g->pg->allreduce(b.buffer, opts);
    } catch (const std::exception& e) {
      failure(g, "all-reduce", e);
    }
  }

  void arm() {
    std::lock_guard<std::mutex> lock(mutex);
    for (Bucket& b : buckets) {
      b.grads.assign(b.members.size(), at::Tensor());
      b.ready = 0;
      b.buffer.clear();
      b.work.reset();
    }
    armed = true;
  }

  // Waits for the started all-reduces, reduces the buckets that did not
  // fill, and writes the averages into `grads` (aligned with the
  // parameters; undefined ones stay undefined).
  void finish(at::Tensor** grads, size_t n) {
    std::lock_guard<std::mutex> lock(mutex);
    armed = false;
    at::NoGradGuard no_grad;
    overlapped = 0;
    for (Bucket& b : buckets) {
      overlapped += b.work ? 1 : 0;
      std::vector<size_t> members;
      std::vector<at::Tensor> flat;
      for (size_t i : b.members) {
        if (i < n && grads[i]->defined()) {
          members.push_back(i);
          flat.push_back(grads[i]->reshape({-1}));
        }
      }
      if (!b.work && !flat.empty()) {
        std::string broken = g->broken_line();
        if (!broken.empty()) {
          throw std::runtime_error(broken);
        }
        b.buffer = {at::cat(flat)};
        sum_in_place(g, b.buffer[0]);
      } else if (b.work) {
        wait(b.work);
      } else {
        continue;
      }
      at::Tensor& sum = b.buffer[0];
      sum.div_(g->size);
      int64_t offset = 0;
      for (size_t i : members) {
        int64_t numel = grads[i]->numel();
        grads[i]->copy_(sum.narrow(0, offset, numel).view_as(*grads[i]));
        offset += numel;
      }
      b.grads.clear();
      b.buffer.clear();
      b.work.reset();
    }
  }
};


} // namespace

extern "C" {

void ddsas_dist_free_str(char* s) {
  std::free(s);
}

// Joins the group as `rank` of `size`: Gloo's, or NCCL's when
// `nccl_factory` is shim_nccl.cpp's `ddsas_nccl_group` (NULL for Gloo).
char* ddsas_dist_new(
    const char* addr,
    uint16_t port,
    int rank,
    int size,
    int64_t timeout_ms,
    void* nccl_factory,
    void** out) {
  auto g = std::make_unique<Group>();
  g->addr = addr;
  g->port = port;
  g->rank = rank;
  g->size = size;
  g->timeout = milliseconds(timeout_ms);
  try {
    g->store = connect_store(g->addr, port, rank == 0, g->timeout);
    g->beat_store = connect_store(g->addr, port, false, g->timeout);
    std::string host = this_host();
    g->beat_store->set(host_key(rank), std::vector<uint8_t>(host.begin(), host.end()));
    g->pg = nccl_factory
        ? nccl_group(g.get(), reinterpret_cast<NcclFactory>(nccl_factory))
        : gloo_group(g.get());
  } catch (const std::exception& e) {
    std::ostringstream msg;
    msg << "rank " << rank << " of " << size << " could not join the group at "
        << addr << ":" << port << ": " << e.what();
    return dup_line(msg.str());
  }
  g->beat = std::thread(heartbeat, g.get());
  *out = g.release();
  return nullptr;
}

void ddsas_dist_drop(void* group) {
  auto* g = static_cast<Group*>(group);
  g->stop.store(true);
  if (g->beat.joinable()) {
    g->beat.join();
  }
  delete g;
}

char* ddsas_dist_broadcast(void* group, at::Tensor** ts, size_t n, int root, int64_t bucket_bytes) {
  auto* g = static_cast<Group*>(group);
  if (char* err = broken_error(g)) {
    return err;
  }
  try {
    by_buckets(ts, n, bucket_bytes, [&](at::Tensor& buffer) {
      std::vector<at::Tensor> one{buffer};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      opts.timeout = g->timeout;
      wait(g->pg->broadcast(one, opts));
    });
  } catch (const std::exception& e) {
    return dup_line(failure(g, "broadcast", e));
  }
  return nullptr;
}

char* ddsas_dist_all_reduce(void* group, at::Tensor** ts, size_t n, int average, int64_t bucket_bytes) {
  auto* g = static_cast<Group*>(group);
  if (char* err = broken_error(g)) {
    return err;
  }
  try {
    by_buckets(ts, n, bucket_bytes, [&](at::Tensor& buffer) {
      sum_in_place(g, buffer);
      if (average && buffer.is_floating_point()) {
        buffer.div_(g->size);
      } else if (average) {
        buffer.div_(g->size, "floor");
      }
    });
  } catch (const std::exception& e) {
    return dup_line(failure(g, "all-reduce", e));
  }
  return nullptr;
}

char* ddsas_dist_barrier(void* group) {
  auto* g = static_cast<Group*>(group);
  if (char* err = broken_error(g)) {
    return err;
  }
  try {
    c10d::BarrierOptions opts;
    opts.timeout = g->timeout;
    wait(g->pg->barrier(opts));
  } catch (const std::exception& e) {
    return dup_line(failure(g, "barrier", e));
  }
  return nullptr;
}

// `x` summed over the ranks, differentiably (`SumAcrossRanks`), in a new
// tensor at `*out` that Rust takes over. A failure answers its line, with
// `*out` this rank's own `x` when the sum could be made at all.
char* ddsas_dist_sum_differentiable(void* group, at::Tensor* x, at::Tensor** out) {
  auto* g = static_cast<Group*>(group);
  *out = nullptr;
  try {
    *out = new at::Tensor(SumAcrossRanks::apply(*x, reinterpret_cast<int64_t>(g)));
  } catch (const std::exception& e) {
    return dup_line(e.what());
  }
  return broken_error(g);
}

// A reducer of the `n` parameters `ps` (floating point, `bucket_bytes` a
// bucket) at `*out`, its hooks on them until `ddsas_dist_reducer_drop`.
char* ddsas_dist_reducer_new(void* group, at::Tensor** ps, size_t n, int64_t bucket_bytes, void** out) {
  auto r = std::make_unique<Reducer>();
  r->g = static_cast<Group*>(group);
  r->bucket_of.assign(n, 0);
  r->slot_of.assign(n, 0);
  int64_t bytes = 0;
  for (size_t k = n; k-- > 0;) {
    const at::Tensor& p = *ps[k];
    if (r->buckets.empty() ||
        (bytes + (int64_t)p.nbytes() > bucket_bytes && !r->buckets.back().members.empty())) {
      r->buckets.emplace_back();
      bytes = 0;
    }
    r->slot_of[k] = r->buckets.back().members.size();
    r->buckets.back().members.push_back(k);
    r->bucket_of[k] = r->buckets.size() - 1;
    bytes += p.nbytes();
  }
  try {
    Reducer* raw = r.get();
    for (size_t k = 0; k < n; ++k) {
      r->params.push_back(*ps[k]);
      r->hooks.push_back(r->params.back().register_hook(
          [raw, k](const at::Tensor& grad) { raw->ready(k, grad); }));
    }
  } catch (const std::exception& e) {
    for (size_t k = 0; k < r->hooks.size(); ++k) {
      r->params[k].remove_hook(r->hooks[k]);
    }
    return dup_line(std::string("the gradient hooks could not be set: ") + e.what());
  }
  *out = r.release();
  return nullptr;
}

// Starts counting the gradients of the coming backward pass.
void ddsas_dist_reducer_arm(void* reducer) {
  static_cast<Reducer*>(reducer)->arm();
}

// After the backward pass: the gradients `grads` (aligned with the
// parameters) averaged across the ranks, in place.
char* ddsas_dist_reducer_finish(void* reducer, at::Tensor** grads, size_t n) {
  auto* r = static_cast<Reducer*>(reducer);
  try {
    r->finish(grads, n);
  } catch (const std::exception& e) {
    return dup_line(failure(r->g, "all-reduce", e));
  }
  return broken_error(r->g);
}

// How many buckets of the last pass the hooks started during it.
size_t ddsas_dist_reducer_overlapped(void* reducer) {
  auto* r = static_cast<Reducer*>(reducer);
  std::lock_guard<std::mutex> lock(r->mutex);
  return r->overlapped;
}

void ddsas_dist_reducer_drop(void* reducer) {
  auto* r = static_cast<Reducer*>(reducer);
  for (size_t k = 0; k < r->hooks.size(); ++k) {
    r->params[k].remove_hook(r->hooks[k]);
  }
  delete r;
}

} // extern "C"
