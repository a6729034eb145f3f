"""The reference for `ddsas bench data --imagenet DIR`: torchvision's
ImageFolder + DataLoader over DIR/train with the recipe's training
transforms (RandomResizedCrop, horizontal flip, ColorJitter(0.4, 0.4, 0.4,
0.2), ToTensor, ImageNet's Normalize), the same number of worker
processes as ddsas's threads, persistent workers, and the same timing:
images per second after one warm-up batch.

    python bench/ref_imagenet_loader.py DIR [--workers 1] [--batch 64] [--crop 224] [--batches 40]
"""

import argparse
import time

import torch
from torchvision import datasets, transforms


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--batches", type=int, default=40)
    a = p.parse_args()
    torch.set_num_threads(1)
    tf = transforms.Compose(
        [
            transforms.RandomResizedCrop(a.crop),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    data = datasets.ImageFolder(f"{a.dir}/train", tf)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=a.batch,
        shuffle=True,
        drop_last=True,
        num_workers=a.workers,
        persistent_workers=a.workers > 0,
    )
    seen, left, t0 = 0, a.batches + 1, None
    while left > 0:
        for x, _ in loader:
            left -= 1
            if t0 is None:
                t0 = time.perf_counter()
            else:
                seen += x.shape[0]
            if left == 0:
                break
    secs = time.perf_counter() - t0
    print(f"images={seen} batch={a.batch} crop={a.crop} workers={a.workers}")
    print(f"images_per_s={seen / secs:.0f}")


if __name__ == "__main__":
    main()
