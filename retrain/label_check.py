"""The intent labels leads gave in the review queue, judged on their own evidence (the gate's `review_label_agreement`).

The fixed held-out NLU set hardly notices a careless lead: in the learning
round's wrong night, 29 labels of random intents moved held-out intent
accuracy from 0.944 to 0.951 (up; the challenger also had more pseudo-labels),
so the tolerance alone would have promoted a bot taught wrong intents. Each
reviewed label is therefore checked against the rest of the training data:

    fit a logistic regression on frozen multilingual sentence vectors (the
    classifier's own multilingual view, finetune.multilingual) over the
    project's NLU examples; a reviewed row *agrees* when its label is among the
    top `top_k` intents its text gets.

The other reviewed rows are left out of that fit on purpose: a lead who files
every parcel question under `thanks` would otherwise vouch for each of those
labels with the others (in the retrain tests, cross-validation over the
reviewed rows passed 14 of 14 such labels).

Review-queue messages are the ones the bot was unsure of, so a right label
often is not the frozen view's first choice; among its first three it mostly
is, and a wrong label mostly is not (bench/review_labels.py; figures in README.md). The check
runs before training: a night whose labels fail is refused at once, without
spending a training run on it, and the report names the labels to look at
again. It needs seconds (one encoder pass, one small fit).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from kefu.core.text import normalize_text

Labelled = Tuple[str, str]


def agreement(examples: Sequence[Labelled], reviewed: Sequence[Labelled], encode: Callable[[List[str]], np.ndarray],
              top_k: int = 3, seed: int = 42, show_misses: int = 10) -> Dict[str, Any]:
    """How many `reviewed` (text, intent) rows get their own intent in the top `top_k` (at most a tenth of the
    intents, at least 1) from the project's own examples.

    `examples`: the project's training examples (text, intent); `encode`: texts -> unit vectors. Rows whose text
    is an example already, and repeated texts, are judged once or not at all; rows whose intent has no
    example are counted as `unjudged`. Returns `agreement` (None when nothing could be judged), the counts and up to
    `show_misses` rows that disagree, with the intent their text got instead."""
    from finetune.multilingual import MultilingualHead

    known = {normalize_text(t) for t, _ in examples}
    rows: Dict[str, Labelled] = {}
    for text, intent in reviewed:
        key = normalize_text(text)
        if key and key not in known:
            rows.setdefault(key, (text, intent))
    rows_list = list(rows.values())
    result: Dict[str, Any] = {"agreement": None, "judged": 0, "agreeing": 0, "first": 0, "unjudged": 0,
                              "top_k": top_k, "misses": []}
    if not rows_list:
        return result
    labels = sorted({i for _, i in examples} | {i for _, i in rows_list})
    # Among 5 intents the top 3 is most of them: at most a tenth of the intents count as "near the top".
    top_k = min(top_k, max(1, math.ceil(len(labels) / 10)))
    result["top_k"] = top_k
    ids = {label: n for n, label in enumerate(labels)}
    base_vectors = encode([t for t, _ in examples])
    row_vectors = encode([t for t, _ in rows_list])
    base_ids = np.array([ids[i] for _, i in examples], dtype=np.int64)
    row_ids = np.array([ids[i] for _, i in rows_list], dtype=np.int64)
    present = set(base_ids.tolist())
    judged = [r for r in range(len(rows_list)) if row_ids[r] in present] if len(present) >= 2 else []
    result["unjudged"] = len(rows_list) - len(judged)
    if judged:
        log_probs, _ = MultilingualHead.fit(base_vectors, base_ids, len(labels), seed=seed).score(row_vectors[judged])
        for row, scores in zip(judged, log_probs):
            ranking = np.argsort(-scores)
            rank = int(np.flatnonzero(ranking == row_ids[row])[0])
            result["judged"] += 1
            result["agreeing"] += rank < top_k
            result["first"] += rank == 0
            if rank >= top_k and len(result["misses"]) < show_misses:
                text, intent = rows_list[row]
                result["misses"].append({"text": text, "label": intent, "got": labels[int(ranking[0])]})
    if result["judged"]:
        result["agreement"] = round(result["agreeing"] / result["judged"], 4)
    return result


def first_choice_agrees(examples: Sequence[Labelled], labelled: Sequence[Labelled],
                        encode: Callable[[List[str]], np.ndarray]) -> Tuple[List[Labelled], List[Labelled]]:
    """(rows whose intent the frozen view puts first, the others): the second view pseudo-labels must pass, as the
    classifier's own confidence vouches for its own mistakes. Rows the view cannot judge are kept."""
    found = agreement(examples, labelled, encode, top_k=1, show_misses=len(labelled))
    disagreeing = {(m["text"], m["label"]) for m in found["misses"]}
    return ([row for row in labelled if row not in disagreeing], [row for row in labelled if row in disagreeing])
