"""A trained intent classifier: predict, save, load."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from finetune.calibration import InDomainScaler, combine, knn_similarity, knn_vote, softmax
from finetune.data import clean_text
from finetune.errors import ModelLoadError
from finetune.lexical import CharNgramClassifier, LexicalInDomain, token_coverage, transformer_weight

logger = logging.getLogger(__name__)

MANIFEST = "kefu_intent.json"
BANK = "knn_bank.npz"
FORMAT_VERSION = 1


@dataclass
class Prediction:
    intent: Optional[str]
    confidence: float
    ranking: List[Tuple[str, float]] = field(default_factory=list)
    # Calibrated softmax confidence before the in-domain correction.
    raw_confidence: float = 0.0
    in_domain: float = 0.0


class IntentModel:
    """A fine-tuned sequence classifier with its tokenizer and calibration."""

    def __init__(self, model, tokenizer, labels: List[str], manifest: Dict[str, Any], bank: np.ndarray, bank_labels: np.ndarray, device=None,
                 lexical: Optional[CharNgramClassifier] = None):
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.manifest = manifest
        self.bank = bank.astype(np.float32)
        self.bank_labels = bank_labels.astype(np.int64)
        self.device = device or torch.device("cpu")
        self.temperature = float(manifest["calibration"]["temperature"])
        self.knn_weight = float(manifest["calibration"].get("knn_weight", 0.0))
        self.scaler = InDomainScaler(**manifest["calibration"]["in_domain"])
        self.max_length = int(manifest["train_config"]["max_length"])
        self.lexical = lexical
        self.lexical_in_domain = LexicalInDomain(**(manifest.get("lexical") or {}).get("in_domain", {}))
        self.lexical_temperature = float((manifest.get("lexical") or {}).get("temperature", 1.0))
        self.model.eval()

    # ------------------------------------------------------------------ predict
    def predict(self, texts: Sequence[str], ranking_length: int = 10, batch_size: int = 64) -> List[Prediction]:
        from finetune.encoding import encode

        cleaned = [clean_text(t or "") for t in texts]
        non_empty = [i for i, t in enumerate(cleaned) if t]
        results: List[Prediction] = [Prediction(intent=None, confidence=0.0) for _ in cleaned]
        if not non_empty:
            return results
        logits, embeddings = encode(self.model, self.tokenizer, [cleaned[i] for i in non_empty], self.max_length, self.device, batch_size)
        sims = embeddings @ self.bank.T
        probs = softmax(logits, self.temperature)
        if self.knn_weight > 0:
            probs = (1 - self.knn_weight) * probs + self.knn_weight * knn_vote(sims, self.bank_labels, len(self.labels))
        similarity = knn_similarity(sims, self.scaler.neighbours)
        p_in = self.scaler.probability(similarity)
        if self.lexical is not None:
            # Messages the tokenizer reads poorly lean on the character n-gram companion.
            texts = [cleaned[i] for i in non_empty]
            w = transformer_weight(token_coverage(self.tokenizer, texts))
            lexical_probs = softmax(np.log(self.lexical.predict_proba(texts) + 1e-9), self.lexical_temperature)
            probs = w[:, None] * probs + (1 - w[:, None]) * lexical_probs
            p_in = w * p_in + (1 - w) * self.lexical_in_domain.probability(self.lexical.similarity(texts))
        final = combine(probs, p_in, self.labels)
        for row, index in enumerate(non_empty):
            order = np.argsort(-final[row])
            ranking = [(self.labels[j], float(final[row, j])) for j in order[:ranking_length]]
            top = order[0]
            results[index] = Prediction(
                intent=self.labels[top],
                confidence=float(final[row, top]),
                ranking=ranking,
                raw_confidence=float(probs[row, top]),
                in_domain=float(similarity[row]),
            )
        return results

    # --------------------------------------------------------------------- save
    def save(self, directory: str | Path) -> Path:
        """Writes a self-contained model directory atomically (temp dir + rename)."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            np.savez(tmp / BANK, embeddings=self.bank.astype(np.float16), labels=self.bank_labels.astype(np.int32))
            if self.lexical is not None:
                self.lexical.save(tmp)
            manifest = dict(self.manifest, format_version=FORMAT_VERSION, labels=self.labels)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
            _replace_dir(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    # --------------------------------------------------------------------- load
    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "IntentModel":
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from finetune.runtime import pick_device, use_all_cores

        directory = Path(directory)
        manifest = read_manifest(directory)
        labels = manifest.get("labels")
        if not isinstance(labels, list) or len(labels) < 2:
            raise ModelLoadError(f"{directory / MANIFEST} has no usable label list")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(directory))
            model = AutoModelForSequenceClassification.from_pretrained(str(directory))
            with np.load(directory / BANK) as stored:
                bank, bank_labels = stored["embeddings"], stored["labels"]
            lexical = CharNgramClassifier.load(directory) if (manifest.get("lexical") or {}).get("enabled") else None
        except Exception as exc:  # transformers raises many types for corrupt files
            raise ModelLoadError(f"Model directory {directory} is corrupt or incomplete: {exc}") from exc
        if model.config.num_labels != len(labels):
            raise ModelLoadError(
                f"{directory}: the weights have {model.config.num_labels} outputs but the label map has {len(labels)}"
            )
        if bank.ndim != 2 or bank.shape[1] != model.config.hidden_size:
            raise ModelLoadError(f"{directory}: nearest-neighbour bank has shape {bank.shape}, expected (*, {model.config.hidden_size})")
        use_all_cores()
        torch_device = pick_device(device)
        model.to(torch_device)
        if len(bank_labels) != len(bank) or (len(bank_labels) and bank_labels.max() >= len(labels)):
            raise ModelLoadError(f"{directory}: nearest-neighbour bank labels do not match the label map")
        return cls(model, tokenizer, labels, manifest, bank, bank_labels, torch_device, lexical=lexical)

    # ------------------------------------------------------------------- extras
    @property
    def metrics(self) -> Dict[str, Any]:
        return self.manifest.get("metrics", {})


def read_manifest(directory: Path) -> Dict[str, Any]:
    """Reads the manifest alone (cheap: used by retrain gates without loading weights)."""
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise ModelLoadError(f"Model directory not found: {directory}")
    if not path.exists():
        raise ModelLoadError(f"{directory} is not a kefu intent model (no {MANIFEST}); train one with `kefu nlu train`")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path} is corrupt: {exc}") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelLoadError(f"{path}: unsupported format version {manifest.get('format_version')!r} (expected {FORMAT_VERSION})")
    return manifest


def _replace_dir(new: Path, target: Path) -> None:
    """Swaps `new` into `target`; the old directory is removed only after the swap."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
