#!/usr/bin/env python3
"""Runs `sdlora bench` and bench/torch_reference.py with the same arguments, on the same device,
one after the other, and prints a side-by-side table (plus all the JSON with --json FILE).

  python3 bench/compare.py [--sdlora build/apps/sdlora] [--json FILE] [bench args...]

Bench args are those both programs take: --device --batch --preset --image --patch --width
--depth --heads --steps --warmup --precision --rank --past --classes-per-task --lr --seed.
Example (the figure of docs/performance.md, on a GPU):
  python3 bench/compare.py --device cuda --batch 128 --precision fp32
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--sdlora", default=os.path.join(HERE, "..", "build", "apps", "sdlora"))
    p.add_argument("--json", default="")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("-h", "--help", action="store_true")
    ours, bench_args = p.parse_known_args()
    if ours.help:
        print(__doc__)
        return
    results = []
    r = subprocess.run([ours.sdlora, "bench", *bench_args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"sdlora bench failed ({r.returncode}):\n{r.stderr}")
    results.append(json.loads(r.stdout))
    r = subprocess.run([sys.executable, os.path.join(HERE, "torch_reference.py"), *bench_args,
                        "--modes", ours.modes], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"torch_reference.py failed ({r.returncode}):\n{r.stderr}")
    results.extend(json.loads(r.stdout))

    base = results[0]
    m = base["model"]
    print(f"device {base['device']}, precision {base['precision']}, batch {base['batch']}, "
          f"ViT width {m['width']} depth {m['depth']} image {m['image']} patch {m['patch']}, "
          f"SD-LoRA rank {base['adapters']['rank']} with {base['adapters']['past_components']} "
          f"frozen components; median of {base['steps']} steps after {base['warmup']}")
    head = f"{'implementation':<18}{'train img/s':>13}{'ms/step':>10}{'peak MB':>10}" \
           f"{'infer img/s':>13}{'infer peak MB':>15}{'train vs ours':>15}"
    print(head)
    print("-" * len(head))
    ours_ips = base["train"]["images_per_s"]
    for res in results:
        if "error" in res:
            print(f"{res['implementation']:<18}  {res['error']}")
            continue
        t, i = res["train"], res["inference"]
        print(f"{res['implementation']:<18}{t['images_per_s']:>13.1f}{t['ms_per_step']:>10.1f}"
              f"{t['peak_bytes'] / 2**20:>10.0f}{i['images_per_s']:>13.1f}"
              f"{i['peak_bytes'] / 2**20:>15.0f}{ours_ips / t['images_per_s']:>14.2f}x")
    print("(peak MB: device memory from each framework's allocator; PyTorch reports none on the CPU. "
          "'train vs ours': our training images/s over this row's)")
    if ours.json:
        with open(ours.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
