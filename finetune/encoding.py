"""Batched forward passes: logits plus a mean-pooled sentence embedding."""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np
import torch


def quiet_padding(tokenizer) -> None:
    """We tokenize once and pad per batch on purpose; silence transformers' advice."""
    getattr(tokenizer, "deprecation_warnings", {})["Asking-to-pad-a-fast-tokenizer"] = True


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> List[List[int]]:
    """Index batches of similar length, so padding (and wasted compute) stays small."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def forward(model, batch: dict) -> Tuple[torch.Tensor, torch.Tensor]:
    """Returns (logits, L2-normalised mean-pooled last hidden state)."""
    out = model(**batch, output_hidden_states=True)
    embedding = mean_pool(out.hidden_states[-1], batch["attention_mask"])
    return out.logits, torch.nn.functional.normalize(embedding, dim=-1)


@torch.inference_mode()
def encode(model, tokenizer, texts: Sequence[str], max_length: int, device, batch_size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """Logits and embeddings for `texts`, in input order."""
    model.eval()
    quiet_padding(tokenizer)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    ids = encoded["input_ids"]
    logits = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    embeddings = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for batch_idx in length_sorted_batches([len(x) for x in ids], batch_size):
        batch = tokenizer.pad({"input_ids": [ids[i] for i in batch_idx]}, return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        batch_logits, batch_emb = forward(model, batch)
        logits[batch_idx] = batch_logits.float().cpu().numpy()
        embeddings[batch_idx] = batch_emb.float().cpu().numpy()
    return logits, embeddings
