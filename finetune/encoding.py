"""Batched forward passes: logits, a mean-pooled sentence embedding, and how well the tokenizer read each text."""

from __future__ import annotations

from typing import TYPE_CHECKING, List, NamedTuple, Sequence, Tuple

import numpy as np

from kefu.core.text import coverage_of_ids

if TYPE_CHECKING:  # torch is imported when a model runs, so importing finetune stays light
    import torch


class Encoded(NamedTuple):
    logits: np.ndarray      # (texts, labels)
    embeddings: np.ndarray  # (texts, hidden), L2-normalised
    coverage: np.ndarray    # (texts,), share of word pieces that are not [UNK], from the same tokenization


def quiet_padding(tokenizer) -> None:
    """We tokenize once and pad per batch on purpose; silence transformers' advice."""
    getattr(tokenizer, "deprecation_warnings", {})["Asking-to-pad-a-fast-tokenizer"] = True


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> List[List[int]]:
    """Index batches of similar length, so padding (and wasted compute) stays small."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def mean_pool(hidden: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def forward(model, batch: dict) -> Tuple["torch.Tensor", "torch.Tensor"]:
    """Returns (logits, L2-normalised mean-pooled last hidden state); pooled in fp32 under a bf16 autocast too."""
    import torch

    out = model(**batch, output_hidden_states=True)
    embedding = mean_pool(out.hidden_states[-1].float(), batch["attention_mask"])
    return out.logits, torch.nn.functional.normalize(embedding, dim=-1)


def encode(model, tokenizer, texts: Sequence[str], max_length: int, device, batch_size: int = 64, runner=None) -> Encoded:
    """Logits, embeddings and tokenizer coverage for `texts`, in input order (one tokenization).

    `runner`: the same forward pass in ONNX Runtime (`finetune.onnx_forward.build`) instead of `model`'s.
    """
    import torch

    if model.training:  # a loaded model is in eval mode already; .eval() walks every module (0.9 ms a message)
        model.eval()
    quiet_padding(tokenizer)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids = encoded["input_ids"]
    special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    coverage = np.array([coverage_of_ids(row, tokenizer.unk_token_id, special) for row in ids], dtype=np.float32)
    logits = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    embeddings = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    if runner is not None:
        for batch_idx in length_sorted_batches([len(x) for x in ids], batch_size):
            batch = tokenizer.pad({"input_ids": [ids[i] for i in batch_idx]}, return_tensors="np")
            logits[batch_idx], embeddings[batch_idx] = runner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return Encoded(logits, embeddings, coverage)
    with torch.inference_mode():
        for batch_idx in length_sorted_batches([len(x) for x in ids], batch_size):
            batch = tokenizer.pad({"input_ids": [ids[i] for i in batch_idx]}, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            batch_logits, batch_emb = forward(model, batch)
            logits[batch_idx] = batch_logits.float().cpu().numpy()
            embeddings[batch_idx] = batch_emb.float().cpu().numpy()
    return Encoded(logits, embeddings, coverage)
