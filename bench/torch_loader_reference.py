#!/usr/bin/env python3
"""The PyTorch side of the loader benchmark: torchvision's ImageFolder (PIL decoding) and the
same training transforms as the `vit224` pipeline (RandomResizedCrop 224, scale 0.05-1, bilinear;
horizontal flip; ToTensor + Normalize to float32), batched by a DataLoader with N worker
processes. Reads the folder `bench_loader --keep DIR` wrote, so both sides decode the same JPEGs.

  build/bench/bench_loader --images 256 --threads 1 --keep /tmp/loader-images
  python3 bench/torch_loader_reference.py --dir /tmp/loader-images --workers 1

Prints one JSON object: images, batch_size, epochs, and per worker count the first epoch's
images/s (PyTorch has no decoded-image cache, so every epoch decodes; `epoch_images_per_s` lists
each epoch). Compare it with bench_loader's `first_epoch_images_per_s` at the same thread count.
"""
import argparse
import json
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="class folders of JPEGs (bench_loader --keep)")
    ap.add_argument("--workers", default="1", help="worker counts, comma-separated")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(1)
    torch.set_num_threads(1)  # the main process only collects batches
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224, scale=(0.05, 1.0), ratio=(3 / 4, 4 / 3),
                                     interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.RandomHorizontalFlip(0.5),
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    ds = datasets.ImageFolder(args.dir, transform=tf)
    runs = []
    for w in [int(x) for x in args.workers.split(",")]:
        loader = DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=w,
                            persistent_workers=w > 0)
        per_epoch = []
        for _ in range(args.epochs):
            t0 = time.perf_counter()
            n = 0
            for images, labels in loader:
                n += labels.shape[0]
            per_epoch.append(n / (time.perf_counter() - t0))
        runs.append({"workers": w, "first_epoch_images_per_s": per_epoch[0],
                     "epoch_images_per_s": per_epoch})
    print(json.dumps({"benchmark": "loader-pytorch", "torch": torch.__version__,
                      "images": len(ds), "batch_size": args.batch, "epochs": args.epochs,
                      "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
