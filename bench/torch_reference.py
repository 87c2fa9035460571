#!/usr/bin/env python3
"""PyTorch reference for `sdlora bench`: the same ViT, SD-LoRA adapters, loss and optimizer.

A ViT (timm's architecture: patch conv, class token, learned positions, pre-norm blocks with qkv
bias, exact GELU, LayerNorm eps 1e-6, final norm, class-token head) with random weights, SD-LoRA
during task `past` (that many frozen components plus the current pair, rank r, on the q and v parts
of every qkv), the cross-entropy over the current task's classes only, and SGD (momentum 0.9) on
the current pairs, every magnitude and the head. The past components are evaluated stacked (two
products per projection, as the framework does), not one pair of products per task.

It times, as `sdlora bench` does, the median wall time of a training step (forward, backward,
optimizer step, synchronise) and of merged inference (the adapters folded into the qkv weights),
after warm-up, on random data; in eager mode and, where this PyTorch has it, torch.compile. One
JSON object per mode on stdout (a list). bench/compare.py runs both programs and prints a table.

  python3 bench/torch_reference.py [--device cpu|cuda] [--batch N] [--preset NAME] [--image N]
      [--patch N] [--width N] [--depth N] [--heads N] [--mlp-ratio R] [--steps N] [--warmup N]
      [--precision fp32|bf16] [--rank R] [--past K] [--classes-per-task C] [--lr LR] [--seed S]
      [--modes eager,compile] [--threads N]

--threads N sets PyTorch's intra-op threads on the CPU (torch.set_num_threads; 0: its default).
"""
import argparse
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # width, depth, heads (patch 16, image 224, MLP ratio 4 unless --mlp-ratio)
    "vit_base_patch16_224": (768, 12, 12),
    "vit_small_patch16_224": (384, 12, 6),
    "vit_tiny_patch16_224": (192, 12, 3),
}


class SDLoRAQKV(nn.Module):
    """qkv projection with SD-LoRA on q and v: frozen W0 and bias, frozen stacked past factors
    scaled per component by (alpha_k + beta_k) / ||U_k D_k||_F, the current pair times alpha_t."""

    def __init__(self, dim, rank, past, alphas):
        super().__init__()
        self.dim = dim
        self.qkv = nn.Linear(dim, 3 * dim)
        self.alphas = alphas  # shared nn.ParameterList of past + 1 scalars
        self.past = past
        for name in ("q", "v"):
            downs = [torch.randn(rank, dim) / math.sqrt(dim) for _ in range(past)]
            ups = [torch.randn(dim, rank) * 0.02 for _ in range(past)]
            norms = [torch.linalg.matrix_norm(u @ d).item() for u, d in zip(ups, downs)]
            self.register_buffer(f"{name}_down_past", torch.cat(downs, 0) if past else torch.empty(0, dim))
            self.register_buffer(f"{name}_up_past", torch.cat(ups, 1) if past else torch.empty(dim, 0))
            self.register_buffer(f"{name}_inv_norm", torch.tensor(norms).reciprocal().repeat_interleave(rank)
                                 if past else torch.empty(0))
            self.register_buffer(f"{name}_beta", torch.zeros(past).repeat_interleave(rank) if past else torch.empty(0))
            bound = 1.0 / math.sqrt(dim)  # Kaiming-uniform a = sqrt(5), as nn.Linear
            setattr(self, f"{name}_down", nn.Parameter(torch.empty(rank, dim).uniform_(-bound, bound)))
            setattr(self, f"{name}_up", nn.Parameter(torch.randn(dim, rank) * 0.02))  # as after training
        self.rank = rank

    def delta(self, x, name):
        down = torch.cat([getattr(self, f"{name}_down_past"), getattr(self, f"{name}_down")], 0)
        alpha = torch.stack(list(self.alphas))  # (past + 1,)
        scale_past = (alpha[:-1].repeat_interleave(self.rank) + getattr(self, f"{name}_beta")) * \
            getattr(self, f"{name}_inv_norm")
        scale = torch.cat([scale_past, alpha[-1:].expand(self.rank)])
        up = torch.cat([getattr(self, f"{name}_up_past"), getattr(self, f"{name}_up")], 1) * scale
        return (x @ down.t()) @ up.t()

    def forward(self, x):
        y = self.qkv(x)
        q, k, v = y.split(self.dim, dim=-1)
        return torch.cat([q + self.delta(x, "q"), k, v + self.delta(x, "v")], -1)

    @torch.no_grad()
    def merged_weight(self):
        w = self.qkv.weight.float().clone()  # float32 also when the backbone is stored in bf16
        eye = torch.eye(self.dim, device=w.device, dtype=w.dtype)
        w[: self.dim] += self.delta(eye, "q").t()
        w[2 * self.dim:] += self.delta(eye, "v").t()
        return w


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    s = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    return s.softmax(-1) @ v


class Block(nn.Module):
    def __init__(self, dim, heads, rank, past, alphas, hidden):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn_qkv = SDLoRAQKV(dim, rank, past, alphas)
        self.attn_proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.merged = None  # dense qkv weight for inference

    def forward(self, x):
        B, N, C = x.shape
        h = self.norm1(x)
        qkv = F.linear(h, self.merged, self.attn_qkv.qkv.bias) if self.merged is not None else self.attn_qkv(h)
        qkv = qkv.reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        o = attention(qkv[0], qkv[1], qkv[2]).transpose(1, 2).reshape(B, N, C)
        x = x + self.attn_proj(o)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self, image, patch, dim, depth, heads, classes, rank, past, hidden):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        n = (image // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 1e-6)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.alphas = nn.ParameterList([nn.Parameter(torch.ones(())) for _ in range(past + 1)])
        self.blocks = nn.ModuleList([Block(dim, heads, rank, past, self.alphas, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])

    def trainable(self):
        out = [b.attn_qkv.q_down for b in self.blocks] + [b.attn_qkv.q_up for b in self.blocks]
        out += [b.attn_qkv.v_down for b in self.blocks] + [b.attn_qkv.v_up for b in self.blocks]
        return out + list(self.alphas) + [self.head.weight, self.head.bias]

    @torch.no_grad()
    def merge(self):
        for b in self.blocks:
            b.merged = b.attn_qkv.merged_weight()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_runs(fn, warmup, steps, device):
    for _ in range(warmup):
        fn()
    sync(device)
    ms = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        ms.append((time.perf_counter() - t0) * 1e3)
    return ms


def peak_and_reset(device):
    if device.type == "cuda":
        p = torch.cuda.max_memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        return p
    return 0


def run(args, mode):
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    width, depth, heads = PRESETS[args.preset]
    width, depth, heads = args.width or width, args.depth or depth, args.heads or heads
    image, patch = args.image or 224, args.patch or 16
    hidden = int(width * (args.mlp_ratio or 4.0))  # as ViTConfig::mlp_hidden
    col_begin = args.past * args.classes_per_task
    col_end = col_begin + args.classes_per_task
    model = ViT(image, patch, width, depth, heads, col_end, args.rank, args.past, hidden).to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    params = model.trainable()
    for p in params:
        p.requires_grad_(True)
    n_trainable = sum(p.numel() for p in params)
    if args.precision == "bf16":
        # sdlora's bf16 policy: the frozen backbone stored in bfloat16 (converted once); the
        # factors, magnitudes and head stay float32 and autocast runs the products in bf16.
        trainable_ids = {id(p) for p in params}
        for p in model.parameters():
            if id(p) not in trainable_ids:
                p.data = p.data.to(torch.bfloat16)
    opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "fp32"
        torch.backends.cudnn.allow_tf32 = args.precision == "fp32"
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else torch.autocast(device.type, enabled=False))
    images = torch.rand(args.batch, 3, image, image, device=device)
    labels = torch.randint(col_begin, col_end, (args.batch,), device=device)

    forward = model
    if mode == "compile":
        if not hasattr(torch, "compile"):
            return {"implementation": "pytorch-compile", "error": f"torch {torch.__version__} has no torch.compile"}
        forward = torch.compile(model)
    losses = []

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            logits = forward(images)
            loss = F.cross_entropy(logits[:, col_begin:col_end].float(), labels - col_begin)
        loss.backward()
        opt.step()
        losses.append(loss)

    sync(device)
    live_train = torch.cuda.memory_allocated() if device.type == "cuda" else 0
    peak_and_reset(device)
    train_ms = time_runs(train_step, args.warmup, args.steps, device)
    train_peak = peak_and_reset(device)

    model.merge()
    infer_model = torch.compile(model) if mode == "compile" else model

    def infer():
        with torch.no_grad(), autocast:
            infer_model(images)

    live_infer = torch.cuda.memory_allocated() if device.type == "cuda" else 0
    infer_ms = time_runs(infer, args.warmup, args.steps, device)
    infer_peak = peak_and_reset(device)
    tm, im = statistics.median(train_ms), statistics.median(infer_ms)
    return {
        "implementation": f"pytorch-{mode}",
        "torch": torch.__version__,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(),
        "threads": torch.get_num_threads() if device.type == "cpu" else 0,
        "precision": args.precision,
        "tf32": device.type == "cuda" and args.precision == "fp32",
        "model": {"preset": args.preset, "image": image, "patch": patch, "width": width, "depth": depth,
                  "heads": heads, "mlp_hidden": hidden, "classes": col_end},
        "adapters": {"mode": "paper", "rank": args.rank, "past_components": args.past,
                     "loss_classes": [col_begin, col_end], "trainable_parameters": n_trainable},
        "optimizer": {"type": "sgd", "lr": args.lr, "momentum": 0.9},
        "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
        "timing": "wall clock after synchronize, median over steps",
        "train": {"ms_per_step": tm, "ms_min": min(train_ms), "images_per_s": 1e3 * args.batch / tm,
                  "peak_bytes": train_peak, "live_bytes_before": live_train,
                  "loss_first": losses[0].item(), "loss_last": losses[-1].item()},
        "inference": {"ms_per_batch": im, "ms_min": min(infer_ms), "images_per_s": 1e3 * args.batch / im,
                      "peak_bytes": infer_peak, "live_bytes_before": live_infer},
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--preset", default="vit_base_patch16_224", choices=sorted(PRESETS))
    for k in ("image", "patch", "width", "depth", "heads"):
        p.add_argument(f"--{k}", type=int, default=0)
    p.add_argument("--mlp-ratio", type=float, default=0.0, help="MLP hidden width over width (0: 4)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--rank", type=int, default=10)
    p.add_argument("--past", type=int, default=2)
    p.add_argument("--classes-per-task", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: PyTorch's default)")
    return p.parse_args(argv)


def main():
    args = parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = []
    for mode in args.modes.split(","):
        if mode not in ("eager", "compile"):
            sys.exit(f"--modes: unknown mode '{mode}' (eager, compile)")
        try:
            out.append(run(args, mode))
        except Exception as e:  # a failing compile must not hide the eager figures
            out.append({"implementation": f"pytorch-{mode}", "error": f"{type(e).__name__}: {e}"})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
