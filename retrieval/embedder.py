"""Sentence embeddings: unit-length float32 vectors, so inner product is cosine similarity."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager, nullcontext
from functools import cached_property
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

import kefu.base_model  # noqa: F401  (offline / no-TF defaults before sentence-transformers loads)
from kefu.base_model import resolve_base_model
from retrieval.errors import ModelLoadError

# Below this many texts a progress bar is noise.
PROGRESS_MIN_TEXTS = 2000
# Up to this many texts (a query) run on one CPU thread: intra-op threads gain
# nothing on a short sentence, and on a busy CPU waiting for them made one query
# 40x slower (480 ms instead of 12 ms on 2 cores shared with a training job).
ONE_THREAD_MAX_TEXTS = 8


class Embedder:
    """A sentence-transformers model and where it came from.

    `bundled` marks a model that lives in memory or inside an index directory
    (an adapted model) rather than at a name or path anyone can resolve.
    """

    def __init__(self, model, name: str, path: Optional[str], bundled: bool = False):
        self.model = model
        self.name = name
        self.path = path
        self.bundled = bundled

    @classmethod
    def load(cls, name_or_path: str = "default", device: str = "auto", bundled: bool = False) -> "Embedder":
        from sentence_transformers import SentenceTransformer

        path = resolve_base_model(name_or_path)
        try:
            model = SentenceTransformer(path, device=pick_device(device))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"Cannot load embedding model {name_or_path!r} ({path}): {exc}. "
                "Use a local directory, or set HF_HUB_OFFLINE=0 where the hub is reachable."
            ) from exc
        return cls(model, name_or_path, path, bundled=bundled)

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def device(self) -> str:
        return str(self.model.device)

    @cached_property
    def fingerprint(self) -> str:
        """Identifies the weights, not the name: an adapted model differs from its base."""
        digest = hashlib.sha256(f"dim={self.dimension};max_len={self.model.max_seq_length}".encode())
        for key, tensor in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Optional[bool] = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        small_on_cpu = len(texts) <= ONE_THREAD_MAX_TEXTS and self.model.device.type == "cpu"
        with _one_torch_thread() if small_on_cpu else nullcontext():
            vectors = self.model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=len(texts) >= PROGRESS_MIN_TEXTS if progress is None else progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def coverage(self, texts: Sequence[str]) -> np.ndarray:
        """Per text, the share of its word pieces the model's tokenizer knows (see kefu/coverage.py)."""
        from kefu.coverage import token_coverage

        return token_coverage(self.model.tokenizer, texts)

    def save(self, directory: Path) -> None:
        self.model.save(str(directory))


@contextmanager
def _one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pick_device(preference: str = "auto") -> str:
    """`auto` uses a GPU when one is present; KEFU_DEVICE overrides the config (as in finetune)."""
    preference = os.environ.get("KEFU_DEVICE", preference)
    if preference != "auto":
        return preference
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class MemoEmbedder(Embedder):
    """The same model, remembering every text it embedded (for building several indexes of one data set)."""

    def __init__(self, embedder: Embedder):
        super().__init__(embedder.model, embedder.name, embedder.path, embedder.bundled)
        self._memo: dict = {}

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Optional[bool] = None) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for text, vector in zip(missing, super().encode(missing, batch_size, progress)):
                self._memo[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])
