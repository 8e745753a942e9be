"""The numbers docs/optimizers.md quotes for the optimizer semantics (not a test; seeded, ~10 s).

    PYTHONPATH=. python tests/optim/measure_semantics.py

1. SAM with ρ = 0 against the plain base optimizer on the Branchy model (parameters without
   gradients on some steps), 8 steps at lr 0.01: the largest parameter difference.
2. ASAM's released rule (T on weights only) against T on every parameter.
3. LookSAM's global against per-tensor normalization at the GraphSAM paper's baseline settings.
4. fp16 autocast (CPU) with GradScaler against float32.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the kit
from kit.optim import Branchy, branchy_schedule, clone, closure_for, loss_of, make_batches, make_model, torch_closure  # noqa: E402

import gradscope.optim as go  # noqa: E402

BASES = {
    "Adam": (torch.optim.Adam, {}),
    "AdamW wd 0.1": (torch.optim.AdamW, {"weight_decay": 0.1}),
    "SGD momentum 0.9": (torch.optim.SGD, {"momentum": 0.9}),
    "Adam L2 0.1": (torch.optim.Adam, {"weight_decay": 0.1}),
}


def theta(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def none_rule() -> None:
    batches = make_batches(n=8)
    for label, (cls, kw) in BASES.items():
        a, b = Branchy(), Branchy()
        b.load_state_dict(a.state_dict())
        never = a.never.detach().clone()
        opt = go.SAM(a.parameters(), cls, rho=0.0, lr=0.01, **kw)
        ref = cls(b.parameters(), lr=0.01, **kw)
        for t in range(8):
            branchy_schedule(a, t)
            branchy_schedule(b, t)
            opt.step(closure_for(a, batches[t]))
            ref.step(torch_closure(b, ref, batches[t]))
        diff = float((theta(a) - theta(b)).abs().max())
        moved = float((a.never - never).detach().abs().max())
        print(f"None rule, {label}: max |θ_SAM(ρ=0) − θ_torch| = {diff:.3g}; never-used parameter moved {moved:.3g}")


def asam_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 1))
    torch.manual_seed(0)
    normed = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.LayerNorm(16), torch.nn.Tanh(),
                                 torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    return {"MLP 5-7-1": mlp, "MLP 5-16-LayerNorm-16-1": normed}


def asam_rules(steps: int = 20) -> None:
    batches = make_batches(n=steps)
    for label in asam_models():
        end, first = {}, {}
        for scale_biases in (False, True):
            model = asam_models()[label]
            start = theta(model)
            opt = go.ASAM(model.named_parameters(), rho=0.5, lr=0.01, scale_biases=scale_biases)
            biases = [not n.endswith("weight") for n in opt.layout.names]
            for t in range(steps):
                opt.step(closure_for(model, batches[t]))
                if t == 0:  # ε̂ of the first step is still in the scratch buffer
                    views = opt.layout.views(opt._eps_hat.data)
                    bias_part = torch.cat([v.reshape(-1) for v, b in zip(views, biases) if b])
                    first[scale_biases] = (float(opt.last_step.eps_hat_norm), float(bias_part.norm()))
            end[scale_biases] = theta(model)
        apart = float((end[False] - end[True]).norm())
        moved = float((end[False] - start).norm())
        (n0, b0), (n1, b1) = first[False], first[True]
        print(f"ASAM {label}: step-0 ‖ε̂‖ released rule {n0:.3g} (bias part {b0:.3g}), scale_biases {n1:.3g} "
              f"(bias part {b1:.3g}); after {steps} steps {apart:.3g} apart = {apart / moved:.0%} of the distance moved")


def looksam_normalizations(steps: int = 40) -> None:
    batches = make_batches(n=steps)
    end = {}
    start = theta(make_model())
    for norm in ("global", "per-tensor"):
        model = make_model()
        opt = go.LookSAM(model.parameters(), rho=1e-4, alpha=0.2, k=8, normalization=norm, lr=0.01)
        for t in range(steps):
            opt.step(closure_for(model, batches[t]))
        end[norm] = theta(model)
    apart = float((end["global"] - end["per-tensor"]).norm())
    moved = float((end["global"] - start).norm())
    print(f"LookSAM ρ=1e-4 α=0.2 k=8, {steps} steps: global vs per-tensor {apart:.3g} apart = {apart / moved:.0%} of the distance moved")


def fp16(steps: int = 20) -> None:
    batches = make_batches(n=steps)
    for name in ("sam", "graphsam"):
        for base, lr in (("sgd", 0.05), ("adam", 0.01)):
            a_model = make_model()
            b_model = clone(a_model)
            start = theta(a_model)
            a = go.make_optimizer(name, a_model.parameters(), base, lr=lr)
            b = go.make_optimizer(name, b_model.parameters(), base, lr=lr)
            scaler = torch.amp.GradScaler("cpu", init_scale=2.0**14)
            for t in range(steps):
                def closure(batch=batches[t]) -> torch.Tensor:
                    with torch.autocast("cpu", dtype=torch.float16):
                        loss = loss_of(a_model, batch)
                    scaler.scale(loss).backward()
                    return loss

                a.step(closure, scaler=scaler)
                scaler.update()
                b.step(closure_for(b_model, batches[t]))
            apart = float((theta(a_model) - theta(b_model)).norm())
            moved = float((theta(b_model) - start).norm())
            print(f"fp16 autocast (CPU) {name}/{base}, {steps} steps: {apart:.3g} from float32 = {apart / moved:.2%} of the distance moved")


if __name__ == "__main__":
    torch.set_num_threads(1)
    none_rule()
    asam_rules()
    looksam_normalizations()
    fp16()
