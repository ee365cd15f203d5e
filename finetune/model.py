"""A trained intent classifier: predict, save, load."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from finetune import onnx_forward
from finetune.blend import Blend, View
from finetune.calibration import SigmoidScaler, combine, knn_similarity, knn_vote, softmax
from finetune.encoding import encode
from finetune.errors import ModelLoadError
from finetune.lexical import CharNgramClassifier
from finetune.multilingual import MultilingualHead
from finetune.sentence_head import SentenceHead
from kefu.core import atomic, runtime, sentence_encoder, side_work
from kefu.core import manifest as manifests
from kefu.core.errors import OptionsError
from kefu.core.onnx_runtime import OnnxRunner
from kefu.core.sentence_encoder import SentenceEncoder
from kefu.core.text import clean_text, to_simplified

logger = logging.getLogger(__name__)

MANIFEST = "kefu_intent.json"
BANK = "knn_bank.npz"
# 2: n-gram companion saved with skops (was a joblib pickle); scalers as SigmoidScaler.
FORMAT_VERSION = 2
HOW_TO_MAKE = "train one with `rasa train` or `kefu nlu train`"


@dataclass
class Prediction:
    intent: Optional[str]
    confidence: float
    ranking: List[Tuple[str, float]] = field(default_factory=list)
    # Calibrated softmax confidence before the in-domain correction.
    raw_confidence: float = 0.0
    in_domain: float = 0.0
    # The message's multilingual sentence vector (None without that view), for the knowledge base to reuse.
    vector: Optional[np.ndarray] = None


class IntentModel:
    """A fine-tuned sequence classifier with its tokenizer and calibration."""

    def __init__(self, model, tokenizer, labels: List[str], manifest: Dict[str, Any], bank: np.ndarray, bank_labels: np.ndarray,
                 device: str = "cpu", lexical: Optional[CharNgramClassifier] = None,
                 multilingual: Optional[MultilingualHead] = None, encoder: Optional[SentenceEncoder] = None,
                 onnx: Optional[OnnxRunner] = None, sentence_head: Optional[SentenceHead] = None):
        self.model = model
        self.onnx = onnx  # the transformer pass in ONNX Runtime (finetune/onnx_forward.py); None: torch
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.manifest = manifest
        self.bank = bank.astype(np.float32)
        self.bank_labels = bank_labels.astype(np.int64)
        self.device = device
        calibration = manifest["calibration"]
        self.temperature = float(calibration["temperature"])
        self.knn_weight = float(calibration.get("knn_weight", 0.0))
        self.scaler = SigmoidScaler(**calibration["in_domain"])
        self.neighbours = int(calibration.get("neighbours", 1))
        self.max_length = int(manifest["train_config"]["max_length"])
        self.lexical = lexical
        lexical_info = manifest.get("lexical") or {}
        self.lexical_in_domain = SigmoidScaler(**lexical_info.get("in_domain", {"threshold": 0.2}))
        self.lexical_temperature = float(lexical_info.get("temperature", 1.0))
        multilingual_info = manifest.get("multilingual") or {}
        self.multilingual = multilingual if encoder is not None else None
        self.encoder = encoder if multilingual is not None else None
        self.multilingual_temperature = float(multilingual_info.get("temperature", 1.0))
        self.multilingual_in_domain = SigmoidScaler(**multilingual_info.get("in_domain", {}))
        self.blend = Blend(**(manifest.get("blend") or {}))
        # The logistic regression over the transformer's vectors (finetune/sentence_head.py) and its share of that view.
        self.sentence_head = sentence_head
        self.sentence_head_share = float((manifest.get("sentence_head") or {}).get("share", 0.0)) if sentence_head is not None else 0.0
        self.fold = to_simplified if manifest["train_config"].get("fold_traditional", False) else (lambda text: text)
        self.model.eval()

    # ------------------------------------------------------------------ predict
    def predict(self, texts: Sequence[str], ranking_length: int = 10, batch_size: int = 64) -> List[Prediction]:
        cleaned = [self.fold(clean_text(t or "")) for t in texts]
        non_empty = [i for i, t in enumerate(cleaned) if t]
        results: List[Prediction] = [Prediction(intent=None, confidence=0.0) for _ in cleaned]
        if not non_empty:
            return results
        kept = [cleaned[i] for i in non_empty]
        # Serving on ONNX Runtime, the multilingual pass runs on the side thread during the transformer's
        # (kefu.core.side_work). Its head and the n-gram view stay here: on the side thread as well they made
        # it the longer of the two (parse p50 7.8 -> 8.5 ms), their Python holding the GIL the other needs.
        side = side_work.submit(self.encoder.encode, kept) if self.multilingual is not None and self.onnx is not None else None
        encoded = encode(self.model, self.tokenizer, kept, self.max_length, self.device, batch_size, runner=self.onnx)
        sims = encoded.embeddings @ self.bank.T
        probs = softmax(encoded.logits, self.temperature)
        if self.knn_weight > 0:
            probs = (1 - self.knn_weight) * probs + self.knn_weight * knn_vote(sims, self.bank_labels, len(self.labels))
        if self.sentence_head is not None:
            probs = self.sentence_head.mix(probs, encoded.embeddings, self.sentence_head_share)
        similarity = knn_similarity(sims, self.neighbours)
        transformer = View(probs, self.scaler.probability(similarity))
        # Messages the tokenizer reads poorly lean on the other views (finetune/blend.py).
        multilingual, lexical, vectors = None, None, None
        if self.multilingual is not None:
            vectors = side.result() if side is not None else self.encoder.encode(kept)
            log_probs, nearest = self.multilingual.score(vectors)
            multilingual = View(softmax(log_probs, self.multilingual_temperature), self.multilingual_in_domain.probability(nearest))
        if self.lexical is not None:
            lexical_probs, lexical_similarity = self.lexical.score(kept)
            lexical = View(softmax(np.log(lexical_probs + 1e-9), self.lexical_temperature),
                           self.lexical_in_domain.probability(lexical_similarity))
        probs, p_in = self.blend.mix(encoded.coverage, transformer, multilingual, lexical)
        final = combine(probs, p_in, self.labels)
        for row, index in enumerate(non_empty):
            order = np.argsort(-final[row])
            top = order[0]
            results[index] = Prediction(
                intent=self.labels[top],
                confidence=float(final[row, top]),
                ranking=[(self.labels[j], float(final[row, j])) for j in order[:ranking_length]],
                raw_confidence=float(probs[row, top]),
                in_domain=float(similarity[row]),
                vector=None if vectors is None else vectors[row],
            )
        return results

    # --------------------------------------------------------------------- save
    def save(self, directory: str | Path) -> Path:
        """Writes a self-contained model directory atomically (a crash leaves the previous one)."""
        directory = Path(directory)
        with atomic.directory(directory, may_replace=lambda d: (d / MANIFEST).exists() or not any(d.iterdir())) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            np.savez(tmp / BANK, embeddings=self.bank.astype(np.float16), labels=self.bank_labels.astype(np.int32))
            if self.lexical is not None:
                self.lexical.save(tmp)
            if self.multilingual is not None:
                self.multilingual.save(tmp)
            if self.sentence_head is not None:
                self.sentence_head.save(tmp)
            manifests.write(tmp / MANIFEST, dict(self.manifest, labels=self.labels), FORMAT_VERSION)
        return directory

    # --------------------------------------------------------------------- load
    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "IntentModel":
        """Loads a saved model for serving: threads set once here (`runtime.inference_threads`), never per message."""
        runtime.configure()
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

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
            lexical = CharNgramClassifier.load(directory, len(labels)) if (manifest.get("lexical") or {}).get("enabled") else None
            multilingual_info = manifest.get("multilingual") or {}
            multilingual = MultilingualHead.load(directory, len(labels)) if multilingual_info.get("enabled") else None
            encoder = sentence_encoder.load(multilingual_info["encoder"]) if multilingual is not None else None
            sentence_head = SentenceHead.load(directory, len(labels)) if (manifest.get("sentence_head") or {}).get("enabled") else None
        except (ModelLoadError, OptionsError):  # a settings mistake says so, it is not a corrupt model
            raise
        except Exception as exc:  # transformers raises many types for corrupt files
            raise ModelLoadError(f"Model directory {directory} is corrupt or incomplete: {exc}") from exc
        if model.config.num_labels != len(labels):
            raise ModelLoadError(
                f"{directory}: the weights have {model.config.num_labels} outputs but the label map has {len(labels)}"
            )
        if bank.ndim != 2 or bank.shape[1] != model.config.hidden_size:
            raise ModelLoadError(f"{directory}: nearest-neighbour bank has shape {bank.shape}, expected (*, {model.config.hidden_size})")
        if len(bank_labels) != len(bank) or (len(bank_labels) and bank_labels.max() >= len(labels)):
            raise ModelLoadError(f"{directory}: nearest-neighbour bank labels do not match the label map")
        runtime.set_threads(runtime.inference_threads())
        torch_device = runtime.pick_device(device)
        model.to(torch_device)
        onnx = None
        if torch_device == "cpu" and runtime.inference_backend() == "onnx":
            onnx = onnx_forward.build(model, tokenizer, runtime.inference_threads(), int8=runtime.int8(runtime.CLASSIFIER))
        return cls(model, tokenizer, labels, manifest, bank, bank_labels, torch_device, lexical=lexical,
                   multilingual=multilingual, encoder=encoder, onnx=onnx, sentence_head=sentence_head)

    # ------------------------------------------------------------------- extras
    @property
    def metrics(self) -> Dict[str, Any]:
        return self.manifest.get("metrics", {})


def read_manifest(directory: str | Path) -> Dict[str, Any]:
    """Reads the manifest alone (cheap: used by retrain gates without loading weights)."""
    return manifests.read(Path(directory) / MANIFEST, FORMAT_VERSION, "kefu intent model", HOW_TO_MAKE)
