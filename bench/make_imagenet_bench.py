"""Makes a benchmark folder in ImageNet's layout from photographs that
scikit-learn ships (sklearn/datasets/images/china.jpg and flower.jpg) and,
when scikit-image is installed, the colour photographs of skimage.data: no
download. Each image is a random crop, rescale and flip of one of them,
resized to ImageNet's typical size (about 500x375, either orientation) and
saved as JPEG at quality 90, so that decoding costs what it costs on real
ImageNet files.

    python bench/make_imagenet_bench.py OUT [--classes 10] [--train 50] [--val 10] [--seed 0]

writes OUT/train/<wnid>/*.JPEG and OUT/val/<wnid>/*.JPEG.
"""

import argparse
import os
import random

import numpy as np
from PIL import Image


def sources():
    """The shipped photographs, as RGB PIL images."""
    from sklearn.datasets import load_sample_images

    photos = [Image.fromarray(a) for a in load_sample_images().images]
    try:
        from skimage import data

        for name in ["astronaut", "chelsea", "coffee", "rocket", "retina", "hubble_deep_field"]:
            a = getattr(data, name)()
            if a.ndim == 3 and a.shape[2] == 3:
                photos.append(Image.fromarray(a))
    except ImportError:
        pass
    return photos


def one_image(rng, photos):
    """A random crop (30-100 % of the side), flip and resize to about 500x375."""
    src = rng.choice(photos)
    w, h = src.size
    frac = rng.uniform(0.3, 1.0)
    cw, ch = max(16, int(w * frac)), max(16, int(h * frac * rng.uniform(0.8, 1.2)))
    cw, ch = min(cw, w), min(ch, h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    img = src.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    size = (500, 375) if rng.random() < 0.75 else (375, 500)
    img = img.resize(size, Image.BICUBIC)
    # A little noise so that no two files compress alike.
    arr = np.asarray(img).astype(np.int16)
    arr += np.random.default_rng(rng.randint(0, 2**31)).integers(-3, 4, arr.shape, dtype=np.int16)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--train", type=int, default=50)
    p.add_argument("--val", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    photos = sources()
    for split, count in [("train", a.train), ("val", a.val)]:
        for c in range(a.classes):
            d = os.path.join(a.out, split, f"n{c:08d}")
            os.makedirs(d, exist_ok=True)
            for i in range(count):
                path = os.path.join(d, f"{split}_{c:04d}_{i:05d}.JPEG")
                one_image(rng, photos).save(path, "JPEG", quality=90)
    print(f"{a.out}: {a.classes} classes, {a.train} train and {a.val} val images each, from {len(photos)} photographs")


if __name__ == "__main__":
    main()
