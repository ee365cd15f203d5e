"""kefu.core.onnx_cache through export_checked: a second load of the same weights skips the export, and nothing
cached serves unless it gives torch's outputs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kefu.core import onnx_cache, onnx_runtime  # noqa: E402

IDS = torch.tensor([[3, 7, 9, 0], [4, 1, 0, 0]])
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])


class Tiny(torch.nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = torch.nn.Embedding(16, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, input_ids, attention_mask):
        return self.out((self.embedding(input_ids) * attention_mask.unsqueeze(-1)).sum(1))


def export(module):
    return onnx_runtime.export_checked(module.eval(), {"input_ids": IDS, "attention_mask": MASK}, ("logits",), 1, "test model")


def outputs(runner):
    return runner(input_ids=IDS.numpy(), attention_mask=MASK.numpy())[0]


def torch_outputs(module):
    with torch.inference_mode():
        return module(IDS, MASK).numpy()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "onnx"
    monkeypatch.setenv("KEFU_ONNX_CACHE", str(folder))
    return folder


@pytest.fixture
def exports(monkeypatch):
    """Counts torch.onnx.export calls."""
    calls = []
    real = torch.onnx.export

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counted)
    return calls


def test_the_same_weights_load_without_a_second_export(cache, exports):
    model = Tiny()
    first = export(model)
    assert len(exports) == 1 and len(list(cache.glob("*.onnx"))) == 1
    second = export(Tiny())  # another process loading the same weights
    assert len(exports) == 1 and second is not None and second.precision == "fp32"
    assert np.allclose(outputs(second), torch_outputs(model), atol=onnx_runtime.TOLERANCE)
    assert np.array_equal(outputs(first), outputs(second))


def test_other_weights_are_exported(cache, exports):
    export(Tiny(seed=0))
    other = Tiny(seed=1)
    runner = export(other)
    assert len(exports) == 2 and len(list(cache.glob("*.onnx"))) == 2
    assert np.allclose(outputs(runner), torch_outputs(other), atol=onnx_runtime.TOLERANCE)


def test_a_damaged_file_is_exported_again_and_replaced(cache, exports):
    export(Tiny())
    [path] = cache.glob("*.onnx")
    path.write_bytes(b"not an onnx graph")
    runner = export(Tiny())
    assert len(exports) == 2 and np.allclose(outputs(runner), torch_outputs(Tiny()), atol=onnx_runtime.TOLERANCE)
    [again] = cache.glob("*.onnx")
    assert again.read_bytes() != b"not an onnx graph"


def test_a_cached_graph_that_answers_otherwise_never_serves(cache, exports):
    """A file under this model's key holding another model's graph (stale, tampered): torch's outputs decide."""
    export(Tiny(seed=1))
    [stranger] = cache.glob("*.onnx")
    graph = stranger.read_bytes()
    stranger.unlink()
    model = Tiny(seed=0)
    export(model)
    [path] = cache.glob("*.onnx")
    path.write_bytes(graph)
    runner = export(model)
    assert len(exports) == 3
    assert np.allclose(outputs(runner), torch_outputs(model), atol=onnx_runtime.TOLERANCE)


def test_off_keeps_nothing(tmp_path, monkeypatch, exports):
    monkeypatch.setenv("KEFU_ONNX_CACHE", "off")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    export(Tiny())
    export(Tiny())
    assert len(exports) == 2 and not list(tmp_path.rglob("*.onnx"))


def test_a_cache_that_cannot_be_written_does_not_stop_a_load(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder's place is taken")
    monkeypatch.setenv("KEFU_ONNX_CACHE", str(blocker / "onnx"))
    runner = export(Tiny())
    assert runner is not None and np.allclose(outputs(runner), torch_outputs(Tiny()), atol=onnx_runtime.TOLERANCE)


def test_the_most_recently_used_graphs_are_kept(cache, monkeypatch):
    monkeypatch.setattr(onnx_cache, "KEEP", 2)
    for seed in range(3):
        export(Tiny(seed=seed))
    assert len(list(cache.glob("*.onnx"))) == 2
