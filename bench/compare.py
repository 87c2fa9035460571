#!/usr/bin/env python3
"""Runs `sdlora bench` and bench/torch_reference.py with the same arguments, on the same device,
in turn, and prints a side-by-side table (plus all the JSON with --json FILE).

  python3 bench/compare.py [--sdlora build/apps/sdlora] [--json FILE] [--threads N] [--repeat K]
      [--modes eager,compile] [bench args...]

Bench args are those both programs take: --device --batch --preset --image --patch --width
--depth --heads --mlp-ratio --steps --warmup --precision --rank --past --classes-per-task --lr
--seed. --threads N runs both on N CPU threads (OMP_NUM_THREADS and OPENBLAS_NUM_THREADS for
sdlora, torch.set_num_threads for PyTorch). --repeat K runs the pair K times interleaved
(sdlora, PyTorch, sdlora, ...) and reports, per implementation, the median over the K runs of
each run's median step, and the median of the K per-pair ratios: our time over PyTorch's
(below 1: faster), which drift of a shared machine's speed moves less than single runs.
Examples (docs/performance.md):
  python3 bench/compare.py --device cuda --batch 128 --precision fp32
  python3 bench/compare.py --device cpu --threads 1 --repeat 5 --modes eager --image 28 \\
      --patch 7 --width 96 --depth 4 --heads 4 --mlp-ratio 2 --batch 64 --rank 4 \\
      --classes-per-task 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, env, what):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{what} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout)


def main():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--sdlora", default=os.path.join(HERE, "..", "build", "apps", "sdlora"))
    p.add_argument("--json", default="")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("-h", "--help", action="store_true")
    ours, bench_args = p.parse_known_args()
    if ours.help:
        print(__doc__)
        return
    if ours.repeat < 1 or ours.threads < 0:
        sys.exit("--repeat must be at least 1 and --threads non-negative")
    env = dict(os.environ)
    torch_args = ["--modes", ours.modes]
    if ours.threads:
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[k] = str(ours.threads)
        torch_args += ["--threads", str(ours.threads)]

    runs = []  # per repeat: [sdlora result, pytorch result per mode...]
    for _ in range(ours.repeat):
        row = [run_json([ours.sdlora, "bench", *bench_args], env, "sdlora bench")]
        row += run_json([sys.executable, os.path.join(HERE, "torch_reference.py"), *bench_args,
                         *torch_args], env, "torch_reference.py")
        runs.append(row)

    base = runs[0][0]
    m = base["model"]
    print(f"device {base['device']}, threads {base.get('threads', 0)}, precision "
          f"{base['precision']}, batch {base['batch']}, ViT width {m['width']} depth {m['depth']} "
          f"image {m['image']} patch {m['patch']} MLP {m['mlp_hidden']}, SD-LoRA rank "
          f"{base['adapters']['rank']} with {base['adapters']['past_components']} frozen "
          f"components; median of {base['steps']} steps after {base['warmup']}"
          + (f"; {ours.repeat} interleaved runs, medians over runs" if ours.repeat > 1 else ""))
    head = f"{'implementation':<18}{'train img/s':>13}{'ms/step':>10}{'peak MB':>10}" \
           f"{'infer img/s':>13}{'ms/batch':>10}{'train ratio':>13}{'infer ratio':>13}"
    print(head)
    print("-" * len(head))
    med = statistics.median
    for col in range(len(runs[0])):
        res = runs[0][col]
        if "error" in res:
            print(f"{res['implementation']:<18}  {res['error']}")
            continue
        t_ms = med(r[col]["train"]["ms_per_step"] for r in runs)
        i_ms = med(r[col]["inference"]["ms_per_batch"] for r in runs)
        # our time over this implementation's, pair by pair
        t_ratio = med(r[0]["train"]["ms_per_step"] / r[col]["train"]["ms_per_step"] for r in runs)
        i_ratio = med(r[0]["inference"]["ms_per_batch"] / r[col]["inference"]["ms_per_batch"]
                      for r in runs)
        b = res["batch"]
        print(f"{res['implementation']:<18}{1e3 * b / t_ms:>13.1f}{t_ms:>10.1f}"
              f"{res['train']['peak_bytes'] / 2**20:>10.0f}{1e3 * b / i_ms:>13.1f}{i_ms:>10.1f}"
              f"{t_ratio:>13.2f}{i_ratio:>13.2f}")
    print("(peak MB: memory held by each framework's tensors; PyTorch reports none on the CPU. "
          "ratio: our time over this row's, median of the per-pair ratios; below 1: ours is faster)")
    if ours.json:
        with open(ours.json, "w") as f:
            json.dump(runs if ours.repeat > 1 else runs[0], f, indent=2)


if __name__ == "__main__":
    main()
