"""Runs the PyTorch reference (shared/bench/ref_search_step.py, unchanged)
with its step timer reading this thread's CPU time instead of wall time, the
counterpart of `ddsas bench step --clock cpu`. Only for --threads 1, where
libtorch computes on the calling thread.

Usage: python bench/ref_cpu_clock.py PATH/TO/ref_search_step.py [its args]
"""
import runpy, sys, time

time.perf_counter = time.thread_time
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
