"""Writes CIFAR-10 in the binary layout with random pixels (valid labels),
for timing searches on a machine without the real data set.

Usage: python bench/make_random_cifar.py OUT_DIR [images_per_batch_file]
"""
import os, random, sys

out = os.path.join(sys.argv[1], "cifar-10-batches-bin")
per_file = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
os.makedirs(out, exist_ok=True)
rng = random.Random(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    buf = bytearray(rng.randbytes(per_file * 3073))
    buf[0::3073] = bytes(b % 10 for b in buf[0::3073])
    with open(os.path.join(out, name), "wb") as f:
        f.write(buf)
