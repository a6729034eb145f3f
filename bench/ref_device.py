"""Runs the PyTorch reference (bench/ref_search_step.py, a verbatim copy of
shared/bench/ref_search_step.py) on a CUDA device without editing it: every
module and tensor it creates lands on the device, and its step timer
synchronises first, so the wall time per step is honest.

Usage: python bench/ref_device.py bench/ref_search_step.py [its args]
"""
import runpy, sys, time

import torch

torch.set_default_device("cuda")
_wall = time.perf_counter


def _synced():
    torch.cuda.synchronize()
    return _wall()


time.perf_counter = _synced
torch.cuda.reset_peak_memory_stats()
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
print(f"peak_cuda_mem_mb={torch.cuda.max_memory_allocated() / 2**20:.0f}")
