"""Sentence embeddings: unit-length float32 vectors, so inner product is cosine similarity."""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from kefu.core import runtime
from kefu.core.base_model import resolve_base_model
from kefu.core.onnx_runtime import OnnxRunner, export_checked
from kefu.core.text import coverage_of_ids, token_coverage
from retrieval.errors import ModelLoadError

# Below this many texts a progress bar is noise.
PROGRESS_MIN_TEXTS = 2000
# What the ONNX copy is checked on against torch (English, Chinese, padding).
QUERY_SAMPLES = ("where is my order", "can I return the shoes I bought last week if they are too small", "退货要多久", "hi")


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
        self.onnx: Optional[OnnxRunner] = None  # encode_queries' pass in ONNX Runtime (prepare_queries); None: torch

    @classmethod
    def load(cls, name_or_path: str = "default", device: str = "auto", bundled: bool = False) -> "Embedder":
        runtime.configure()
        from sentence_transformers import SentenceTransformer

        path = resolve_base_model(name_or_path)
        try:
            model = SentenceTransformer(path, device=runtime.pick_device(device))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"Cannot load embedding model {name_or_path!r} ({path}): {exc}. "
                "Use a local directory, or set HF_HUB_OFFLINE=0 where the hub is reachable."
            ) from exc
        return cls(model, name_or_path, path, bundled=bundled)

    def prepare_queries(self) -> None:
        """Serving: `encode_queries` runs in ONNX Runtime when KEFU_INFERENCE_BACKEND is `onnx` (the default) on a
        CPU, exported and checked against torch here, once, with int8 weights unless KEFU_INT8 leaves the
        knowledge base out (`kefu.core.onnx_runtime`)."""
        if self.onnx is not None or runtime.inference_backend() != "onnx" or self.model.device.type != "cpu":
            return
        import torch

        class Queries(torch.nn.Module):
            def __init__(self, inner) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask):
                output = self.inner({"input_ids": input_ids, "attention_mask": attention_mask})
                return torch.nn.functional.normalize(output["sentence_embedding"], p=2, dim=1)

        features = self.model.preprocess(list(QUERY_SAMPLES))
        inputs = {k: features[k] for k in ("input_ids", "attention_mask")}
        self.onnx = export_checked(Queries(self.model).eval(), inputs, ("embeddings",), runtime.inference_threads(),
                                   "knowledge base's sentence encoder", int8=runtime.int8(runtime.KNOWLEDGE_BASE),
                                   transformer=_transformer_config(self.model))

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
        """Embeddings of many texts (building an index): sentence-transformers' batched encode."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=runtime.show_progress(len(texts) >= PROGRESS_MIN_TEXTS if progress is None else progress),
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """(embeddings, tokenizer coverage) of a few query texts from one tokenization.

        The per-message path: the coverage (how much of each text the
        vocabulary reads, for the n-gram blend) comes from the same word pieces
        the forward pass uses, instead of tokenizing every message twice.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), np.ones(0, dtype=np.float32)
        import torch
        from sentence_transformers.util import batch_to_device

        tokenizer = self.model.tokenizer
        features = self.model.preprocess(list(texts))
        special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        mask = features["attention_mask"].tolist()
        coverage = np.array([coverage_of_ids([t for t, m in zip(row, row_mask) if m], tokenizer.unk_token_id, special)
                             for row, row_mask in zip(features["input_ids"].tolist(), mask)], dtype=np.float32)
        if self.onnx is not None:
            (vectors,) = self.onnx(input_ids=features["input_ids"].numpy(), attention_mask=features["attention_mask"].numpy())
            return np.ascontiguousarray(vectors, dtype=np.float32), coverage
        with torch.inference_mode():
            output = self.model.forward(batch_to_device(features, self.model.device))
            vectors = torch.nn.functional.normalize(output["sentence_embedding"], p=2, dim=1)
        return np.ascontiguousarray(vectors.float().cpu().numpy(), dtype=np.float32), coverage

    def coverage(self, texts: Sequence[str]) -> np.ndarray:
        """Per text, the share of its word pieces the model's tokenizer knows (see kefu.core.text)."""
        return token_coverage(self.model.tokenizer, texts)

    def save(self, directory: Path) -> None:
        self.model.save(str(directory))


class MemoEmbedder(Embedder):
    """The same model, remembering every text it embedded (for building several indexes of one data set)."""

    def __init__(self, embedder: Embedder):
        super().__init__(embedder.model, embedder.name, embedder.path, embedder.bundled)
        self._memo: dict = {}
        self._coverage: dict = {}

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Optional[bool] = None) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            for text, vector in zip(missing, super().encode(missing, batch_size, progress)):
                self._memo[text] = vector
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    def encode_queries(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        return self.encode(texts), self.coverage(texts)

    def coverage(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._coverage))
        if missing:
            self._coverage.update(zip(missing, super().coverage(missing).tolist()))
        return np.array([self._coverage[t] for t in texts], dtype=np.float32)


def _transformer_config(model):
    """The Hugging Face config of a SentenceTransformer's transformer module (for ONNX Runtime's fusions), or None."""
    try:
        return model[0].auto_model.config
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
