"""Parts of the transformer kept as pre-trained while the rest fine-tunes.

On a CPU the time budget, not the data, decides how many steps a large base model gets (all-mpnet-base-v2:
about 160 steps of 32 in 8.5 minutes on 2 cores, half an epoch of BANKING77). Frozen lower layers need no
backward pass and no optimiser update, so the same budget runs more steps through the layers that learn.
Freezing a layer freezes everything under it too: a gradient that reached the embeddings would have to pass
back through the frozen layers anyway.
"""

from __future__ import annotations

from typing import Any

from finetune.errors import FinetuneError

# Where Hugging Face models keep their stack of transformer layers, under `model.base_model`.
_LAYER_STACKS = ("encoder.layer", "transformer.layer", "layers", "encoder.layers")


def freeze(model: Any, word_embeddings: bool = False, layers: int = 0) -> None:
    """Stop training the word embeddings and, with `layers`, the whole embedding block and the lowest `layers` layers."""
    if layers > 0:
        stack = transformer_layers(model)
        if layers >= len(stack):
            raise FinetuneError(
                f"freeze_layers is {layers}, but {type(model.base_model).__name__} has {len(stack)} layers: "
                f"at least the top one has to learn (use at most {len(stack) - 1})"
            )
        _stop(model.base_model.embeddings)
        for layer in stack[:layers]:
            _stop(layer)
    elif word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)


def transformer_layers(model: Any):
    """The model's transformer layers, lowest first."""
    for path in _LAYER_STACKS:
        found = model.base_model
        for attribute in path.split("."):
            found = getattr(found, attribute, None)
        if found is not None and len(found) > 0:
            return found
    raise FinetuneError(f"freeze_layers does not know where {type(model.base_model).__name__} keeps its layers")


def _stop(module: Any) -> None:
    for param in module.parameters():
        param.requires_grad_(False)
