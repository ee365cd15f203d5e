"""A torch module's forward pass in ONNX Runtime, exported in memory and checked against torch before it serves.

The serving models (the intent classifier's transformer, the knowledge base's sentence
encoder) run one message at a time on one CPU thread, where ONNX Runtime's fused kernels
beat torch's eager ops. `export_checked` exports a module when a model is loaded for
serving (fp32, opset 17, any batch size and sequence length; about 1-1.5 s for MiniLM-L6 on
one thread), runs ONNX Runtime and torch on sample inputs, and returns the runner only if
their outputs agree to `tolerance`; otherwise None (logged), and the caller serves with
torch. Exporting at load rather than at training keeps archives as they are (an ONNX copy of
MiniLM-L6 is 91 MB) and serves older archives too. Which one serves:
`runtime.inference_backend()` (KEFU_INFERENCE_BACKEND).
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

TOLERANCE = 1e-3


class OnnxRunner:
    """An ONNX Runtime session on the CPU with its thread count fixed once; called with numpy arrays by input name."""

    def __init__(self, model: bytes, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.max_difference: Optional[float] = None

    def __call__(self, **inputs: np.ndarray) -> List[np.ndarray]:
        return self.session.run(None, {name: np.asarray(value, dtype=np.int64) for name, value in inputs.items()})  # no copy when int64


def export_checked(module, inputs: Dict[str, "object"], outputs: Sequence[str], threads: int, what: str,
                   tolerance: Optional[float] = None) -> Optional[OnnxRunner]:
    """`module(*inputs.values())` (torch tensors, integer inputs with a batch and a length axis) in ONNX Runtime.

    None when ONNX cannot be used (the onnx package missing, an export error, outputs that differ
    from torch's by more than `tolerance`); `what` names the model in the log line that says so.
    """
    import torch

    tolerance = TOLERANCE if tolerance is None else tolerance
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        logger.info("onnx is not installed: the %s serves with torch", what)
        return None
    names, tensors = list(inputs), tuple(inputs.values())
    buffer = io.BytesIO()
    try:
        with torch.inference_mode():
            expected = module(*tensors)
        expected = [t.float().cpu().numpy() for t in (expected if isinstance(expected, (tuple, list)) else (expected,))]
        with warnings.catch_warnings():  # the tracer's notes on transformers' code: nothing a user can act on
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tensors, buffer, dynamo=False, input_names=names, output_names=list(outputs),
                              dynamic_axes={name: {0: "batch", 1: "length"} for name in names}, opset_version=17)
        runner = OnnxRunner(buffer.getvalue(), threads)
        got = runner(**{name: t.cpu().numpy() for name, t in zip(names, tensors)})
        difference = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    except Exception as e:  # an architecture the exporter cannot trace: serve with torch
        logger.warning("the %s could not be exported to ONNX (%s): it serves with torch", what, e)
        return None
    if difference > tolerance:
        logger.warning("ONNX Runtime differs from torch by %.2g on sample messages: the %s serves with torch", difference, what)
        return None
    runner.max_difference = difference
    return runner
