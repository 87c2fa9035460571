#!/usr/bin/python3
"""Writes tests/nn/fixtures/sdlora_task2_{paper,official}.safetensors: a tiny ViT with SD-LoRA
adapters during task 2, computed with plain PyTorch as an independent reference.

The model is written out here directly (no timm, no project code): conv patch embedding, class
token, position embedding, pre-norm blocks, exact GELU, LayerNorm eps 1e-6, class-token pooling,
a 5-class head. Every q and v part of every qkv projection carries two frozen components
(ranks 3 and 2, non-zero beta) and the current pair (rank 2); each past term is formed as the
dense product U D here, so the stacked low-rank evaluation in C++ is checked against the plain
formula of docs/sdlora-spec.md. The loss is the cross-entropy over the current task's columns [3, 5).

Each file holds, under the C++ checkpoint names:
  backbone weights (timm names), adapter state (blocks.{i}.attn.qkv.lora_{q,v}.{k}.{up,down},
  .beta, sdlora.alpha; metadata sdlora_mode and sdlora_current = "true"),
  input.images, input.labels,
  expected.features, expected.logits, expected.loss, expected.base_features (no adapters),
  expected.merged.blocks.{i}.attn.qkv.weight (the dense adapted weight),
  expected.grad.<name> for every trainable tensor (current up/down, sdlora.alpha, head).
Metadata also gives the configuration, so the test builds the model from the file.

Run from the repository root:  /usr/bin/python3 tests/nn/make_fixtures.py
"""
import json
import os
import struct

import torch
import torch.nn.functional as F

VERSION = 1
CFG = dict(image_size=8, patch_size=4, in_channels=3, embed_dim=16, depth=2, num_heads=2,
           mlp_ratio=2, num_classes=5)
RANKS = [3, 2, 2]        # components 0 and 1 frozen, 2 the current pair
ALPHA = [0.9, 1.3, 0.7]  # mid-task values of the shared magnitudes
BATCH = 3
COL_BEGIN, COL_END = 3, 5  # task 2's classes; tasks 0 and 1 hold classes 0-2
EPS = 1e-6


def write_safetensors(path, tensors, metadata):
    """The safetensors layout by hand: u64 header length, JSON header, raw little-endian bytes."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * ((8 - len(text) % 8) % 8)  # align the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for b in blobs:
            f.write(b)


def make_backbone(gen):
    D, C, p = CFG["embed_dim"], CFG["in_channels"], CFG["patch_size"]
    H = int(D * CFG["mlp_ratio"])
    n = (CFG["image_size"] // p) ** 2

    def rnd(*shape, s=0.2):
        return (torch.randn(*shape, generator=gen) * s).float()

    w = {"cls_token": rnd(1, 1, D), "pos_embed": rnd(1, n + 1, D),
         "patch_embed.proj.weight": rnd(D, C, p, p), "patch_embed.proj.bias": rnd(D, s=0.1)}
    for i in range(CFG["depth"]):
        b = f"blocks.{i}."
        for ln in ("norm1", "norm2"):
            w[b + ln + ".weight"] = 1 + rnd(D, s=0.1)
            w[b + ln + ".bias"] = rnd(D, s=0.1)
        for name, (o, k) in {"attn.qkv": (3 * D, D), "attn.proj": (D, D),
                             "mlp.fc1": (H, D), "mlp.fc2": (D, H)}.items():
            w[b + name + ".weight"] = rnd(o, k, s=0.3)
            w[b + name + ".bias"] = rnd(o, s=0.1)
    w["norm.weight"] = 1 + rnd(D, s=0.1)
    w["norm.bias"] = rnd(D, s=0.1)
    w["head.weight"] = rnd(CFG["num_classes"], D, s=0.3)
    w["head.bias"] = rnd(CFG["num_classes"], s=0.1)
    return w


def make_adapters(gen, alpha):
    """U_k (D x r_k), D_k (r_k x D) per projection; beta per component (0 for the current)."""
    D = CFG["embed_dim"]
    a = {}
    for i in range(CFG["depth"]):
        for part in ("q", "v"):
            pre = f"blocks.{i}.attn.qkv.lora_{part}."
            for k, r in enumerate(RANKS):
                a[pre + f"{k}.down"] = (torch.randn(r, D, generator=gen) * 0.3).float()
                a[pre + f"{k}.up"] = (torch.randn(D, r, generator=gen) * 0.3).float()
            beta = (torch.rand(len(RANKS), generator=gen) * 0.6 - 0.3).float()
            beta[-1] = 0.0
            a[pre + "beta"] = beta
    a["sdlora.alpha"] = torch.tensor(alpha, dtype=torch.float32)
    return a


def component_norm(U, Dn, mode):
    if mode == "paper":
        return torch.linalg.norm((U.double() @ Dn.double())).float()
    return (torch.linalg.norm(U.double()) * torch.linalg.norm(Dn.double())).float()


def delta_weight(a, i, part, mode):
    """The adapted projection's dense update: past terms normalised, the current one not."""
    pre = f"blocks.{i}.attn.qkv.lora_{part}."
    alpha, beta = a["sdlora.alpha"], a[pre + "beta"]
    delta = 0
    for k in range(len(RANKS)):
        U, Dn = a[pre + f"{k}.up"], a[pre + f"{k}.down"]
        if k < len(RANKS) - 1:
            delta = delta + (alpha[k] + beta[k]) / component_norm(U, Dn, mode) * (U @ Dn)
        else:
            delta = delta + alpha[k] * (U @ Dn)
    return delta


def forward(w, a, images, mode):
    """Returns (features, logits); a = None runs the plain backbone."""
    D, heads, p = CFG["embed_dim"], CFG["num_heads"], CFG["patch_size"]
    B = images.shape[0]
    x = F.conv2d(images, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=p)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([w["cls_token"].expand(B, -1, -1), x], dim=1) + w["pos_embed"]
    N = x.shape[1]
    for i in range(CFG["depth"]):
        b = f"blocks.{i}."
        h = F.layer_norm(x, (D,), w[b + "norm1.weight"], w[b + "norm1.bias"], EPS)
        W = w[b + "attn.qkv.weight"]
        if a is not None:
            W = W + torch.cat([delta_weight(a, i, "q", mode), torch.zeros(D, D),
                               delta_weight(a, i, "v", mode)], dim=0)
        qkv = F.linear(h, W, w[b + "attn.qkv.bias"])
        qkv = qkv.reshape(B, N, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-2, -1) * (D // heads) ** -0.5, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, N, D)
        x = x + F.linear(o, w[b + "attn.proj.weight"], w[b + "attn.proj.bias"])
        h = F.layer_norm(x, (D,), w[b + "norm2.weight"], w[b + "norm2.bias"], EPS)
        h = F.linear(F.gelu(F.linear(h, w[b + "mlp.fc1.weight"], w[b + "mlp.fc1.bias"])),
                     w[b + "mlp.fc2.weight"], w[b + "mlp.fc2.bias"])
        x = x + h
    x = F.layer_norm(x, (D,), w["norm.weight"], w["norm.bias"], EPS)
    feats = x[:, 0]
    return feats, F.linear(feats, w["head.weight"], w["head.bias"])


def trainable_names(a):
    cur = len(RANKS) - 1
    names = [n for n in a if n.endswith((f".{cur}.up", f".{cur}.down"))]
    return sorted(names) + ["sdlora.alpha"]


def make_fixture(mode, path, alpha=ALPHA, seed_offset=None):
    gen = torch.Generator().manual_seed(20250 + (mode == "official" if seed_offset is None else seed_offset))
    w = make_backbone(gen)
    a = make_adapters(gen, alpha)
    C, S = CFG["in_channels"], CFG["image_size"]
    images = torch.randn(BATCH, C, S, S, generator=gen).float()
    labels = torch.randint(COL_BEGIN, COL_END, (BATCH,), generator=gen)

    train = trainable_names(a)
    for n in train:
        a[n].requires_grad_(True)
    for n in ("head.weight", "head.bias"):
        w[n].requires_grad_(True)

    with torch.no_grad():
        base_feats, _ = forward(w, None, images, mode)
    feats, logits = forward(w, a, images, mode)
    loss = F.cross_entropy(logits[:, COL_BEGIN:COL_END], labels - COL_BEGIN)
    loss.backward()

    out = {**{n: t.detach() for n, t in w.items()}, **{n: t.detach() for n, t in a.items()}}
    out["input.images"] = images
    out["input.labels"] = labels
    out["expected.features"] = feats.detach()
    out["expected.logits"] = logits.detach()
    out["expected.loss"] = loss.detach().reshape(1)
    out["expected.base_features"] = base_feats
    with torch.no_grad():
        D = CFG["embed_dim"]
        for i in range(CFG["depth"]):
            W = w[f"blocks.{i}.attn.qkv.weight"].detach().clone()
            W[:D] += delta_weight(a, i, "q", mode)
            W[2 * D:] += delta_weight(a, i, "v", mode)
            out[f"expected.merged.blocks.{i}.attn.qkv.weight"] = W
    for n in train:
        out["expected.grad." + n] = a[n].grad
    for n in ("head.weight", "head.bias"):
        out["expected.grad." + n] = w[n].grad

    meta = {k: str(v) for k, v in CFG.items()}
    meta.update(fixture_version=str(VERSION), sdlora_mode=mode, sdlora_current="true",
                loss_col_begin=str(COL_BEGIN), loss_col_end=str(COL_END))
    write_safetensors(path, out, meta)
    print(f"{path}: loss {loss.item():.6f}, {os.path.getsize(path)} bytes")


def main():
    torch.set_num_threads(1)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    os.makedirs(here, exist_ok=True)
    for mode in ("paper", "official"):
        make_fixture(mode, os.path.join(here, f"sdlora_task2_{mode}.safetensors"))
    # The released module's semantics as its LoRA_ViT_timm builds them for a new task: past terms
    # normalised by ||U|| ||D||, the current pair unnormalised, every magnitude at its 0.8 start.
    make_fixture("official", os.path.join(here, "sdlora_task2_released.safetensors"),
                 alpha=[0.8] * len(RANKS), seed_offset=2)


if __name__ == "__main__":
    main()
