// The NCCL half of the c10d shim, built by build.rs as its own shared
// library (libddsas_nccl.so) and loaded by `nas::dist` only when a run asks
// for NCCL. ProcessGroupNCCL's code is libtorch_cuda's: linking it into the
// binary would load libtorch_cuda and the CUDA libraries (about 350 MB and
// half a second) into every ddsas command, a report on a laptop included.
//
// One C function makes the group from the store of shim.cpp's Group; the
// intrusive pointers cross the boundary as raw pointers whose references
// the caller takes over (both files are compiled against the same headers
// and link the same libtorch).

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

extern "C" {

// A ProcessGroupNCCL of `size` ranks on `store` (borrowed: the group takes
// its own reference), written to `*out` with one reference for the caller.
// NCCL's collectives run on CUDA streams; blocking wait makes `wait()`
// block until the collective is done and throw at the group's timeout, as
// Gloo's does, so a lost peer is one error line rather than the watchdog
// ending the process. A user's own setting wins. Answers NULL on success,
// else a malloc'ed line of error text.
char* ddsas_nccl_group(
    c10d::Store* store,
    int rank,
    int size,
    int64_t timeout_ms,
    c10d::Backend** out) {
  try {
    setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = std::chrono::milliseconds(timeout_ms);
    auto shared = c10::intrusive_ptr<c10d::Store>::reclaim_copy(store);
    c10::intrusive_ptr<c10d::Backend> pg =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(shared, rank, size, opts);
    *out = pg.release();
    return nullptr;
  } catch (const std::exception& e) {
    return strdup(e.what());
  }
}

} // extern "C"
