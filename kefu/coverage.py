"""How much of a text a transformer's vocabulary can read.

all-MiniLM-L6-v2's WordPiece vocabulary has 244 CJK characters, so most
Chinese text becomes [UNK]. Both the intent classifier (finetune/lexical.py)
and the retriever (retrieval/lexical.py) measure this per text and lean on
character n-grams where the transformer reads little.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def token_coverage(tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Per text, the share of its word pieces that are not the unknown token (1.0 for empty text)."""
    unk = tokenizer.unk_token_id
    coverage = np.ones(len(texts), dtype=np.float32)
    for i, text in enumerate(texts):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if ids:
            coverage[i] = 1.0 - sum(1 for t in ids if t == unk) / len(ids)
    return coverage


def needs_lexical(coverage: np.ndarray, min_coverage: float, min_share: float) -> bool:
    """True when at least `min_share` of the texts are read below `min_coverage`."""
    return bool(len(coverage)) and float((coverage < min_coverage).mean()) >= min_share


def transformer_weight(coverage: np.ndarray) -> np.ndarray:
    """How much the transformer's score counts for a text it reads this well.

    Squared: a half-read message is mostly noise to the transformer.
    """
    return np.clip(coverage, 0.0, 1.0) ** 2
