"""Continuing from a model whose intents were not quite these: the head is regrown, the encoder kept.

The nightly retrain adds intents (a lead names a proposed intent, accepted desk answers
train the knowledge base's `faq`); training those nights from the base model threw away
what the champion had learned, and a short from-base run is noisier than the gate's
tolerance (the learning round's night lost 1.1-1.3 points held-out and was refused).
Here the champion's classification layer keeps the rows of the intents that stay, an
intent that goes loses its row, and a new intent's row is *imprinted* (after Qi et al.,
2018, "Low-shot learning with imprinted weights"): the direction from the layer's mean
input over the other intents' examples to its mean over the new intent's, scaled to the
kept rows' mean norm (the features share a large common part: an uncentred mean scored
order questions above refund questions on a new `refund` row), so it starts close to
where training would take it instead of at random.
"""

from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from finetune.data import Example
from finetune.errors import FinetuneError

logger = logging.getLogger(__name__)

HEAD_MODULES = ("classifier", "score")
OTHERS_SAMPLE = 256  # examples of the other intents whose mean input is the new rows' origin


def output_layer(model, n_labels: int) -> Tuple[str, object]:
    """(dotted name, module) of the last linear layer of the classification head with one output per label."""
    import torch

    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module.out_features == n_labels and name.split(".")[0] in HEAD_MODULES
    ]
    if not found:
        raise FinetuneError(f"{type(model).__name__} has no classification layer with {n_labels} outputs to regrow")
    return found[-1]


def regrow_head(model, tokenizer, old_labels: Sequence[str], new_labels: Sequence[str], examples: Sequence[Example],
                max_length: int, device, batch_size: int = 32) -> Dict[str, List[str]]:
    """Gives `model` (in place) one output per label of `new_labels`; returns the labels added and removed.

    Rows of labels in both sets are copied exactly; a new label's row is imprinted from
    `examples` (at least one of each new label, else FinetuneError; the others' give the origin).
    """
    import torch

    name, layer = output_layer(model, len(old_labels))
    added = [label for label in new_labels if label not in old_labels]
    removed = [label for label in old_labels if label not in new_labels]
    texts = {label: [e.text for e in examples if e.intent == label] for label in added}
    missing = [label for label, found in texts.items() if not found]
    if missing:
        raise FinetuneError(f"new intents without training examples: {missing}")
    others = [e.text for e in examples if e.intent not in added]
    texts[None] = others[:: max(1, len(others) // OTHERS_SAMPLE)][:OTHERS_SAMPLE]
    means = _layer_input_means(model, tokenizer, layer, {k: v for k, v in texts.items() if v}, max_length, device, batch_size)
    centre = means.get(None)

    old_index = {label: i for i, label in enumerate(old_labels)}
    weight = layer.weight.detach()
    bias = layer.bias.detach() if layer.bias is not None else None
    kept = [old_index[label] for label in new_labels if label in old_index]
    scale = float(weight[kept].norm(dim=1).mean()) if kept else float(weight.norm(dim=1).mean())
    grown = torch.nn.Linear(layer.in_features, len(new_labels), bias=bias is not None).to(weight.device, weight.dtype)
    with torch.no_grad():
        for row, label in enumerate(new_labels):
            if label in old_index:
                grown.weight[row] = weight[old_index[label]]
                if bias is not None:
                    grown.bias[row] = bias[old_index[label]]
            else:
                direction = means[label] - centre if centre is not None else means[label]
                mean = torch.as_tensor(direction, dtype=weight.dtype, device=weight.device)
                grown.weight[row] = mean / mean.norm().clamp_min(1e-12) * scale
                if bias is not None:
                    grown.bias[row] = bias[kept].mean() if kept else 0.0
    _replace(model, name, grown)
    model.config.num_labels = len(new_labels)
    model.config.id2label = dict(enumerate(new_labels))
    model.config.label2id = {label: i for i, label in enumerate(new_labels)}
    if hasattr(model, "num_labels"):
        model.num_labels = len(new_labels)
    logger.info("Continuing with a regrown head: intents added %s, removed %s", added or "none", removed or "none")
    return {"labels_added": added, "labels_removed": removed}


def _layer_input_means(model, tokenizer, layer, texts: Dict[Optional[str], List[str]], max_length: int, device,
                       batch_size: int) -> Dict[Optional[str], np.ndarray]:
    import torch

    captured: List[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
    was_training = model.training
    model.eval()
    means = {}
    try:
        with torch.inference_mode():
            for label, members in texts.items():
                captured.clear()
                for start in range(0, len(members), batch_size):
                    batch = tokenizer(members[start : start + batch_size], truncation=True, max_length=max_length,
                                      padding=True, return_tensors="pt")
                    model(**{k: v.to(device) for k, v in batch.items()})
                # A head reading the whole sequence (decoder models' `score`) is imprinted from its positions' mean.
                features = torch.cat([c if c.dim() == 2 else c.mean(1) for c in captured])
                means[label] = features.float().mean(0).cpu().numpy()
    finally:
        hook.remove()
        model.train(was_training)
    return means


def _replace(model, dotted: str, module) -> None:
    parent = model
    *path, last = dotted.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, last, module)
