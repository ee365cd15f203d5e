"""What every fine-tuning loop's step shares: its optimiser and the precision of its passes.

On 2 cores a step of all-MiniLM-L6-v2 on BANKING77's batches (32 examples) took 272 ms, 70-76 of them in
torch's default AdamW, which walks the 22.7M parameters tensor by tensor; the fused one (torch >= 2.4, CPU
and CUDA) does the same update in one vectorised kernel: 16 ms, 210 ms a step. bfloat16 autocast on a CPU
with AMX tiles took the step to 150 ms (all-mpnet-base-v2, a probe with the default AdamW: 1,466 -> 941
ms), and is opt-in (kefu.core.runtime.train_precision says why). Figures: bench/classifier_step.py (README, "Step speed").
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, ContextManager, Iterable

from kefu.core import runtime

logger = logging.getLogger(__name__)


def adamw(params: Iterable[Any], **options: Any):
    """torch.optim.AdamW, fused where this torch has a fused kernel for the parameters' device."""
    import torch

    params = list(params)
    try:
        return torch.optim.AdamW(params, fused=True, **options)
    except (RuntimeError, TypeError, ValueError) as exc:  # an older torch, or a device without the kernel
        logger.debug("Fused AdamW unavailable (%s); using the default implementation", exc)
        return torch.optim.AdamW(params, **options)


def autocast(device: Any) -> ContextManager:
    """The context a training step's forward pass runs in: bfloat16 autocast when train_precision says bf16.

    Losses are computed from its outputs in fp32 (callers cast with `.float()`); backward follows autocast's casts.
    """
    import torch

    device_type = torch.device(device).type
    if runtime.train_precision(device_type) == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
