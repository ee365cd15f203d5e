"""The classifier's transformer pass (logits and sentence embedding) in ONNX Runtime (`kefu.core.onnx_runtime`)."""

from __future__ import annotations

from typing import Optional, Sequence

from finetune.encoding import forward
from kefu.core.onnx_runtime import OnnxRunner, export_checked

SAMPLES = ("where is my order", "I want to return the shoes I bought last week, they are too small", "谢谢", "hi")


def _module(model):
    import torch

    class Forward(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return forward(self.inner, {"input_ids": input_ids, "attention_mask": attention_mask})

    return Forward(model).eval()


def build(model, tokenizer, threads: int, samples: Sequence[str] = SAMPLES, int8: bool = False) -> Optional[OnnxRunner]:
    """`finetune.encoding.forward` of `model` in ONNX Runtime, checked against torch on `samples`; None: serve with torch.
    `int8`: weights quantized to int8 (kefu.core.onnx_runtime)."""
    batch = tokenizer(list(samples), padding=True, return_tensors="pt")
    inputs = {k: batch[k].to(next(model.parameters()).device) for k in ("input_ids", "attention_mask")}
    return export_checked(_module(model), inputs, ("logits", "embeddings"), threads, "intent classifier", int8=int8,
                          transformer=getattr(model, "config", None))
