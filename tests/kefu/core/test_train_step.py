"""The training step's optimiser and precision (kefu.core.train_step, runtime.train_precision)."""

import pytest
import torch

from kefu.core import runtime, train_step
from kefu.core.errors import OptionsError


def _linear():
    torch.manual_seed(0)
    return torch.nn.Linear(16, 4)


def test_bf16_runs_the_pass_in_bfloat16_and_fp32_does_not(monkeypatch):
    layer, x = _linear(), torch.randn(3, 16)
    monkeypatch.setenv("KEFU_TRAIN_PRECISION", "bf16")
    with train_step.autocast("cpu"):
        assert layer(x).dtype == torch.bfloat16
    monkeypatch.setenv("KEFU_TRAIN_PRECISION", "fp32")
    with train_step.autocast("cpu"):
        assert layer(x).dtype == torch.float32


def test_fp32_is_the_default_and_auto_is_bf16_only_on_a_cpu_with_amx_tiles(monkeypatch):
    monkeypatch.delenv("KEFU_TRAIN_PRECISION", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert runtime.train_precision("cpu") == "fp32"
    monkeypatch.setenv("KEFU_TRAIN_PRECISION", "auto")
    assert runtime.train_precision("cpu") == "bf16"
    assert runtime.train_precision("cuda") == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert runtime.train_precision("cpu") == "fp32"


def test_an_unknown_precision_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("KEFU_TRAIN_PRECISION", "fp8")
    with pytest.raises(OptionsError, match="KEFU_TRAIN_PRECISION must be one of fp32, bf16, auto"):
        train_step.autocast("cpu")


def _one_step(optimizer_factory):
    layer = _linear()
    optimizer = optimizer_factory(layer.parameters())
    layer(torch.randn(8, 16, generator=torch.Generator().manual_seed(1))).pow(2).sum().backward()
    optimizer.step()
    return optimizer, layer.weight.detach().clone()


def test_adamw_is_fused_and_updates_as_torchs_default_does():
    fused, weights = _one_step(lambda p: train_step.adamw(p, lr=1e-2, weight_decay=0.01))
    assert fused.defaults["fused"] is True
    _, reference = _one_step(lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.01))
    assert torch.allclose(weights, reference, atol=1e-6)


def test_adamw_falls_back_where_torch_has_no_fused_kernel(monkeypatch):
    real = torch.optim.AdamW

    def no_fused(params, fused=None, **options):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return real(params, **options)

    monkeypatch.setattr(torch.optim, "AdamW", no_fused)
    optimizer, weights = _one_step(lambda p: train_step.adamw(p, lr=1e-2))
    assert not optimizer.defaults.get("fused")
    assert not torch.equal(weights, _linear().weight)  # it still trains
