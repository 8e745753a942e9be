"""Per-atom layers on real atoms only (``pack_atoms``): the packed path against the dense one and
against molecules run one at a time without any padding."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch.func import functional_call, vmap

from gradscope.chem import collate
from gradscope.chem.featurizers import COMPT
from gradscope.models import (CoMPTConfig, ModelConfig, build_compt, build_model, capture_attention,
                              model_from_config_dict)
from gradscope.models.packing import ATOM_INDEX, AtomPacking, real_atom_index

#: 1 to 31 heavy atoms: most slots of the padded batch are padding
UNEVEN = ["C", "CC(C)C[C@H](NC(=O)[C@@H](Cc1ccccc1)NC(=O)CNC(=O)CN)C(=O)O", "CCO", "[Cl-].C[NH3+]",
          "c1ccccc1O", "N", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"]
BATCHES = {
    "uneven": UNEVEN,
    "one-molecule": ["CC(=O)Nc1ccc(O)cc1"],
    "equal-sizes": ["CCO", "CCN", "OCO", "CCC"],
}


def make_batch(smiles: list[str], n_tasks: int = 2, fields: tuple[str, ...] = ()):
    graphs = [COMPT(s).with_labels(None, index=i) for i, s in enumerate(smiles)]
    return collate(graphs, n_tasks=n_tasks, fields=fields)


def _dims() -> dict[str, int]:
    return dict(atom_dim=COMPT.atom_dim, bond_dim=COMPT.bond_dim, n_tasks=2)


TINY_COMPT = dict(d_model=32, n_layers=2, n_heads=4, n_dense=1, n_generator_layers=2, max_atoms=64)
#: name → config builder (keyword overrides → config), and the model builder
CONFIGS: dict[str, tuple[Callable[..., object], Callable]] = {
    "small": (lambda **kw: ModelConfig.preset("small", **_dims(), **kw), build_model),
    "small-attention-readout": (lambda **kw: ModelConfig.preset("small", **_dims(), readout="attention", **kw),
                                build_model),
    "gt-large-tiny": (lambda **kw: ModelConfig.preset("gt-large", **_dims(), d_model=32, d_ff=128, d_edge=16, **kw),
                      build_model),
    "compt-tiny": (lambda **kw: CoMPTConfig(**_dims(), **{**TINY_COMPT, **kw}), build_compt),
    "compt-tiny-variant": (lambda **kw: CoMPTConfig(**_dims(), **{**TINY_COMPT, "scale_norm": True, "n_dense": 2,
                                                                  "update_edges": True, "n_layers": 3,
                                                                  "distance_kernel": "softmax", **kw}), build_compt),
}


def build(name: str, *, pack: bool, seed: int = 0, **kw) -> torch.nn.Module:
    make_config, make_model = CONFIGS[name]
    torch.manual_seed(seed)
    return make_model(make_config(pack_atoms=pack, **kw))


def outputs_and_grads(model: torch.nn.Module, batch, seed: int = 1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Outputs and every parameter's gradient of ``sum(outputs · weights)`` (dropout seeded)."""
    torch.manual_seed(seed)
    out = model(batch)
    weights = torch.linspace(-1.0, 2.0, out.numel()).reshape(out.shape)
    (out * weights).sum().backward()
    return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def assert_relative(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5, what: str = "", floor: float = 1e-12) -> None:
    """``max|a − b| ≤ tol · max(max|b|, floor)`` (a relative error over the whole tensor)."""
    scale = b.abs().max().clamp(min=floor)
    rel = ((a - b).abs().max() / scale).item()
    assert rel <= tol, f"{what}: relative difference {rel:.3g}"


def assert_gradients(packed: dict[str, torch.Tensor], dense: dict[str, torch.Tensor]) -> None:
    """Every gradient relatively equal. Some are zero in exact arithmetic (biases that shift a whole
    softmax row: CoMPT's bond and key biases, the last bias of the bond MLP) and hold only rounding
    noise, so the scale has a floor of 1e-3 of the model's largest gradient."""
    assert packed.keys() == dense.keys()
    floor = 1e-3 * max(g.abs().max().item() for g in dense.values())
    for k in dense:
        assert_relative(packed[k], dense[k], what=k, floor=floor)


@pytest.mark.parametrize("batch_name", sorted(BATCHES))
@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train-dropout"])
def test_packed_equals_dense_outputs_and_gradients(name, batch_name, train):
    batch = make_batch(BATCHES[batch_name])
    results = [outputs_and_grads(build(name, pack=pack, dropout=0.1).train(train), batch) for pack in (False, True)]
    (out_d, grads_d), (out_p, grads_p) = results
    assert_relative(out_p, out_d, what="outputs")
    assert len(grads_d) == len(list(build(name, pack=True).parameters()))
    assert_gradients(grads_p, grads_d)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_packed_batch_equals_molecules_one_at_a_time(name):
    """Slow reference: each molecule alone (no padding at all) through the dense model; the batch's
    outputs are theirs and its gradient is the sum of theirs."""
    dense, packed = build(name, pack=False).eval(), build(name, pack=True).eval()
    out_p, grads_p = outputs_and_grads(packed, make_batch(UNEVEN))
    weights = torch.linspace(-1.0, 2.0, out_p.numel()).reshape(out_p.shape)
    dense.zero_grad()
    rows = []
    for i, smiles in enumerate(UNEVEN):
        out = dense(make_batch([smiles]))
        (out * weights[i]).sum().backward()  # gradients accumulate over molecules
        rows.append(out.detach())
    assert_relative(out_p, torch.cat(rows), what="outputs")
    assert_gradients(grads_p, {k: p.grad for k, p in dense.named_parameters() if p.grad is not None})


def test_padding_invariance_with_packing():
    model = build("compt-tiny", pack=True).eval()
    graphs = [COMPT(s).with_labels(None, index=i) for i, s in enumerate(UNEVEN)]
    torch.testing.assert_close(model(collate(graphs, n_tasks=2, pad_to=48)), model(collate(graphs, n_tasks=2)))


@pytest.mark.parametrize("name", ["small", "compt-tiny"])
@pytest.mark.parametrize("fields", [(), (ATOM_INDEX,)], ids=["mask", "atom-index"])
def test_vmap_over_parameters_with_packing(name, fields):
    batch = make_batch(UNEVEN, fields=fields)
    model = build(name, pack=True).eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    sets = [{k: v + 0.05 * i * torch.randn_like(v) for k, v in params.items()} for i in range(3)]
    stacked = {k: torch.stack([s[k] for s in sets]) for k in params}

    def f(p):
        return functional_call(model, p, (batch,))

    looped = torch.stack([f(s) for s in sets])
    torch.testing.assert_close(vmap(f)(stacked), looped, atol=1e-6, rtol=1e-6)
    dense = build(name, pack=False).eval()
    torch.testing.assert_close(looped, torch.stack([functional_call(dense, s, (batch,)) for s in sets]),
                               atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["gt-large-tiny", "compt-tiny"])
def test_captured_attention_is_the_same_packed(name):
    batch = make_batch(UNEVEN)
    captured: list = []
    for pack in (False, True):
        model = build(name, pack=pack).eval()
        with capture_attention(model) as attn:
            model(batch)
        captured.append(attn)
    assert len(captured[0]) == len(captured[1]) > 0
    real_rows = batch.mask[:, None, :, None]  # padded query rows are read by nothing (entropy masks them)
    for a, b in zip(*captured):
        torch.testing.assert_close(b * real_rows, a * real_rows, atol=1e-6, rtol=1e-5)


def test_pack_and_unpack_against_boolean_masks():
    mask = make_batch(UNEVEN).mask
    x = torch.randn(*mask.shape, 5)
    packing = AtomPacking.from_mask(mask)
    assert packing.n_atoms == int(mask.sum())
    torch.testing.assert_close(packing.pack(x), x[mask], rtol=0, atol=0)
    torch.testing.assert_close(packing.unpack(packing.pack(x)), torch.where(mask[..., None], x, 0.0), rtol=0, atol=0)


def test_the_batch_field_holds_the_real_atoms_index():
    batch = make_batch(UNEVEN, fields=(ATOM_INDEX,))
    expected = [b * batch.max_atoms + i for b in range(len(batch)) for i in range(batch.max_atoms) if batch.mask[b, i]]
    assert batch.extras[ATOM_INDEX].tolist() == expected == real_atom_index(batch.mask).tolist()


def test_no_packing_on_a_device_without_the_index():
    """Off the CPU, finding the real atoms would make the host wait: without the batch field the
    model runs dense (a mask on the meta device stands in for an accelerator's)."""
    batch = make_batch(UNEVEN)
    on_meta = type(batch)(**{**vars(batch), "mask": batch.mask.to("meta")})
    assert AtomPacking.for_batch(on_meta) is None
    assert AtomPacking.for_batch(batch) is not None


def test_dropout_on_packed_rows_draws_the_dense_mask():
    mask = make_batch(UNEVEN).mask
    packing, drop = AtomPacking.from_mask(mask), torch.nn.Dropout(0.3).train()
    x = torch.randn(*mask.shape, 8)
    torch.manual_seed(5)
    dense = drop(x)
    torch.manual_seed(5)
    torch.testing.assert_close(packing.dropout(packing.pack(x), drop), dense[mask], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["small", "compt-tiny"])
def test_old_checkpoints_without_the_switch_load(name):
    model = build(name, pack=True)
    saved = model.config.to_dict()
    assert saved["pack_atoms"] is True
    del saved["pack_atoms"]  # a config written before the switch existed
    old = model_from_config_dict(saved)
    assert old.config.pack_atoms is False
    old.load_state_dict(model.state_dict())  # packing adds no parameter or buffer
    batch = make_batch(UNEVEN)
    torch.testing.assert_close(old.eval()(batch), model.eval()(batch), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["gt-large-tiny", "compt-tiny"])
def test_hessian_vector_product_packed_equals_dense(name):
    batch = make_batch(UNEVEN)
    target = torch.randn(len(batch), 2, generator=torch.Generator().manual_seed(0))
    hvps = []
    for pack in (False, True):
        model = build(name, pack=pack).eval()
        params = {k: v.detach() for k, v in model.named_parameters()}
        v = {k: torch.randn(t.shape, generator=torch.Generator().manual_seed(i)) for i, (k, t) in enumerate(params.items())}

        def loss(p, model=model):
            return ((functional_call(model, p, (batch,)) - target) ** 2).mean()

        hvps.append(torch.func.jvp(torch.func.grad(loss), (params,), (v,))[1])
    assert_gradients(hvps[1], hvps[0])


@pytest.mark.parametrize("name", ["small", "compt-tiny"])
def test_bf16_autocast_with_packing(name):
    batch = make_batch(UNEVEN)
    model = build(name, pack=True).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), build(name, pack=False).eval()(batch), atol=0.1, rtol=0.05)
