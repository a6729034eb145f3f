"""Writes the DDSAS mask that bench/ref_search_step.py samples for given
ARGS, as JSON [cell type][edge][op], by replaying the reference's main()
up to its sample_mask call (same seed, same draws in the same order).
`ddsas bench step ARGS --mask FILE` then times exactly the same ops. Both
count `none` in L (issue 10), so at equal --L they hold as many ops; but the
reference draws at random and ddsas by UCB, so without the mask the two
would run different ops (a sep_conv_5x5 costs more than a pool).

Usage: python bench/ref_mask.py OUT.json [the reference's args]
"""
import importlib.util, json, os, sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ref", os.path.join(here, "ref_search_step.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

out = sys.argv[1]
captured = {}
real_sample = ref.sample_mask


def capture(L):
    m = real_sample(L)
    captured["mask"] = m
    raise SystemExit(0)


ref.sample_mask = capture
sys.argv = [sys.argv[0]] + sys.argv[2:]
try:
    ref.main()
except SystemExit:
    pass
m = captured["mask"]
with open(out, "w") as f:
    json.dump(m.tolist(), f)
real = int(m[:, :, 1:].sum())
print(f"mask: {int(m.sum())} ops incl. none, {real} real ops over both cell types -> {out}")
