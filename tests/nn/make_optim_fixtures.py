#!/usr/bin/python3
"""Writes tests/nn/fixtures/optim_reference.json: PyTorch's optimizer and scheduler sequences.

Each optimizer case runs torch.optim on two parameter groups of small float32 tensors, feeding
a fixed sequence of gradients (stored in the fixture; a null gradient means the parameter gets
none that step and must be skipped), and records every parameter after every step. Each
scheduler case records get_last_lr() after construction and after each of 12 epoch steps.

Run from the repository root:  /usr/bin/python3 tests/nn/make_optim_fixtures.py
"""
import json
import os

import torch

VERSION = 1
STEPS = 5
EPOCHS = 12
LRS = [0.1, 0.01]  # group 0, group 1
SHAPES = [[[2, 3], [4]], [[3, 2]]]  # parameter shapes per group
SKIP = (2, 0, 1)  # at step 2, group 0's parameter 1 gets no gradient


def values_away_from_zero(gen, shape):
    """Magnitudes in [0.25, 1) with random signs, so relative tolerances stay meaningful."""
    mag = 0.25 + 0.75 * torch.rand(shape, generator=gen)
    sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
    return (mag * sign).to(torch.float32)


def make_inputs(seed):
    gen = torch.Generator().manual_seed(seed)
    params = [[values_away_from_zero(gen, s) for s in group] for group in SHAPES]
    grads = []
    for step in range(STEPS):
        per_step = []
        for g, group in enumerate(SHAPES):
            row = []
            for i, s in enumerate(group):
                grad = (torch.rand(s, generator=gen) * 2 - 1).to(torch.float32)
                row.append(None if (step, g, i) == SKIP else grad)
            per_step.append(row)
        grads.append(per_step)
    return params, grads


def as_list(t):
    return None if t is None else t.flatten().tolist()


# name, torch class, defaults, per-group overrides (group 1), optional scheduler stepped per step
OPTIMIZER_CASES = [
    ("sgd_plain", torch.optim.SGD, {}, {}, None),
    ("sgd_momentum", torch.optim.SGD, {"momentum": 0.9}, {}, None),
    ("sgd_nesterov_wd", torch.optim.SGD,
     {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, {}, None),
    ("sgd_dampening", torch.optim.SGD,
     {"momentum": 0.8, "dampening": 0.5, "weight_decay": 0.001}, {}, None),
    ("sgd_group_overrides", torch.optim.SGD, {"momentum": 0.9},
     {"momentum": 0.5, "weight_decay": 0.02}, None),
    ("adam", torch.optim.Adam, {}, {}, None),
    ("adam_wd", torch.optim.Adam,
     {"betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}, {}, None),
    ("adamw", torch.optim.AdamW, {"weight_decay": 0.05}, {"weight_decay": 0.0}, None),
    ("adamw_multistep", torch.optim.AdamW, {"weight_decay": 0.01}, {},
     ("multistep", {"milestones": [2, 4], "gamma": 0.5})),
]


def flat_hyper(d):
    """The C++ side names betas beta1/beta2 and stores nesterov as 0/1."""
    out = {}
    for k, v in d.items():
        if k == "betas":
            out["beta1"], out["beta2"] = v
        elif k == "nesterov":
            out["nesterov"] = 1.0 if v else 0.0
        else:
            out[k] = float(v)
    return out


def make_scheduler(opt, kind, args):
    if kind == "constant":
        return torch.optim.lr_scheduler.ConstantLR(opt, **args)
    if kind == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, **args)
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, **args)
    raise ValueError(kind)


def run_optimizer_case(seed, name, cls, defaults, overrides, sched):
    params0, grads = make_inputs(seed)
    params = [[p.clone().requires_grad_(True) for p in group] for group in params0]
    groups = [{"params": params[0], "lr": LRS[0]},
              dict({"params": params[1], "lr": LRS[1]}, **overrides)]
    opt = cls(groups, **defaults)
    scheduler = make_scheduler(opt, *sched) if sched else None
    history = []
    for step in range(STEPS):
        for g, group in enumerate(params):
            for i, p in enumerate(group):
                grad = grads[step][g][i]
                p.grad = None if grad is None else grad.clone()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        history.append([[as_list(p.detach()) for p in group] for group in params])
    case = {
        "name": name,
        "optimizer": cls.__name__.lower(),
        "defaults": flat_hyper(defaults),
        "group_lrs": LRS,
        "group1_overrides": flat_hyper(overrides),
        "shapes": SHAPES,
        "params": [[as_list(p) for p in group] for group in params0],
        "grads": [[[as_list(t) for t in row] for row in per_step] for per_step in grads],
        "expected": history,
    }
    if sched:
        case["scheduler"] = {"kind": sched[0], "args": sched[1]}
    return case


SCHEDULER_CASES = [
    ("constant_identity", "constant", {"factor": 1.0, "total_iters": 0}),
    ("constant_warm", "constant", {"factor": 0.25, "total_iters": 4}),
    ("multistep", "multistep", {"milestones": [3, 7, 10], "gamma": 0.1}),
    ("multistep_repeated", "multistep", {"milestones": [5, 2, 5], "gamma": 0.5}),
    ("cosine", "cosine", {"T_max": 10, "eta_min": 0.001}),
    ("cosine_past_t_max", "cosine", {"T_max": 4, "eta_min": 0.0}),
]


def run_scheduler_case(name, kind, args):
    params = [torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)]
    opt = torch.optim.SGD([{"params": [params[0]], "lr": LRS[0]},
                           {"params": [params[1]], "lr": LRS[1]}], lr=LRS[0])
    scheduler = make_scheduler(opt, kind, args)
    lrs = [list(scheduler.get_last_lr())]
    for _ in range(EPOCHS):
        opt.step()  # no gradients: nothing changes, but the order is the one PyTorch expects
        scheduler.step()
        lrs.append(list(scheduler.get_last_lr()))
    return {"name": name, "kind": kind, "args": args, "base_lrs": LRS, "lrs": lrs}


def main():
    torch.manual_seed(0)
    fixture = {
        "version": VERSION,
        "torch": torch.__version__,
        "optimizers": [run_optimizer_case(100 + k, *c) for k, c in enumerate(OPTIMIZER_CASES)],
        "schedulers": [run_scheduler_case(*c) for c in SCHEDULER_CASES],
    }
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                       "optim_reference.json")
    with open(out, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
