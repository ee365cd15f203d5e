"""A torch module's forward pass in ONNX Runtime, exported in memory and checked against torch before it serves.

The serving models (the intent classifier's transformer, the knowledge base's sentence
encoder) run one message at a time on one CPU thread, where ONNX Runtime's fused kernels
beat torch's eager ops. `export_checked` exports a module when a model is loaded for
serving (fp32, opset 17, any batch size and sequence length; about 1-1.5 s for MiniLM-L6 on
one thread), runs ONNX Runtime and torch on sample inputs, and returns the runner only if
their outputs agree to `tolerance`; otherwise None (logged), and the caller serves with
torch. Exporting at load rather than at training keeps archives as they are (an ONNX copy of
MiniLM-L6 is 91 MB) and serves older archives too; the served graph is kept on disk for the next
load of the same weights (`kefu.core.onnx_cache`), where it passes the same check. Which one serves:
`runtime.inference_backend()` (KEFU_INFERENCE_BACKEND).

`int8=True` (KEFU_INT8, `runtime.int8`) then quantizes the checked model's weights to int8
(ONNX Runtime's dynamic quantization, per output channel; about 2 s) and serves the
quantized copy if its outputs point the same way as the fp32 copy's on the samples (cosine
of every output row at least `INT8_MIN_COSINE`; int8 cannot meet fp32's tolerance: logits
move by up to 0.6 on the samples). What it costs in accuracy is measured, not checked here:
`bench/nlu_backends.py`.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kefu.core import onnx_cache, runtime

logger = logging.getLogger(__name__)

TOLERANCE = 1e-3
INT8_MIN_COSINE = 0.95
OPSET = 17


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
        self.precision = "fp32"  # "int8" for a quantized copy
        self.fused = False  # the transformer's layers in ONNX Runtime's fused kernels (export_checked's `transformer`)

    def __call__(self, **inputs: np.ndarray) -> List[np.ndarray]:
        return self.session.run(None, {name: _feed(value) for name, value in inputs.items()})


def _feed(value) -> np.ndarray:
    """Integers as int64, floats as float32: what the exported graphs take (no copy when they already are)."""
    value = np.asarray(value)
    return value.astype(np.float32 if value.dtype.kind == "f" else np.int64, copy=False)


def export_checked(module, inputs: Dict[str, "object"], outputs: Sequence[str], threads: int, what: str,
                   tolerance: Optional[float] = None, int8: bool = False,
                   dynamic_axes: Optional[Dict[str, Dict[int, str]]] = None, transformer=None) -> Optional[OnnxRunner]:
    """`module(*inputs.values())` (torch tensors; by default integer inputs with a batch and a length axis) in ONNX Runtime.

    None when ONNX cannot be used (the onnx package missing, an export error, outputs that differ
    from torch's by more than `tolerance`); `what` names the model in the log line that says so.
    `int8`: the checked model's weights quantized to int8 when the quantized outputs agree (else the fp32 runner).
    `dynamic_axes`: the inputs' variable axes when they are not (batch, length).
    `transformer`: the module's Hugging Face config when it is a BERT-like encoder; its attention, layer norms and
    GELUs are then fused into ONNX Runtime's transformer kernels (`_fused`) before the check.
    A graph exported before for the same weights and settings comes from `kefu.core.onnx_cache` and passes
    the same check (else it is exported again).
    """
    import torch

    tolerance = TOLERANCE if tolerance is None else tolerance
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        logger.info("onnx is not installed: the %s serves with torch", what)
        return None
    names, tensors = list(inputs), tuple(inputs.values())
    axes = dynamic_axes or {name: {0: "batch", 1: "length"} for name in names}
    try:
        with torch.inference_mode():
            expected = module(*tensors)
        expected = [t.float().cpu().numpy() for t in (expected if isinstance(expected, (tuple, list)) else (expected,))]
        feeds = {name: t.cpu().numpy() for name, t in zip(names, tensors)}
        # Everything the served graph depends on besides the weights, the checks' bounds included.
        settings = {"inputs": names, "outputs": list(outputs), "axes": axes, "opset": OPSET, "int8": int8,
                    "tolerance": tolerance, "int8_min_cosine": INT8_MIN_COSINE,
                    # What `_fused` reads of the config (not all of it: its `_name_or_path` is wherever Rasa unpacked the archive).
                    "transformer": [getattr(transformer, name, None) for name in ("model_type", "num_attention_heads", "hidden_size")]}
        cache_key = onnx_cache.key(module, settings) if runtime.onnx_cache_dir() is not None else None
    except Exception as e:  # noqa: BLE001 - a module torch itself cannot run on the samples: serve as before
        logger.warning("the %s could not be exported to ONNX (%s): it serves with torch", what, e)
        return None
    if cache_key is not None:
        cached = onnx_cache.load(cache_key)
        if cached is not None:
            runner = _cached_runner(cached, feeds, expected, threads, tolerance)
            if runner is not None:
                return runner
            logger.info("the %s's cached ONNX graph does not give torch's outputs: exported again", what)
            onnx_cache.discard(cache_key)
    runner, graph = _export_and_check(module, tensors, names, outputs, axes, feeds, expected, threads, what, tolerance,
                                      int8, transformer)
    if runner is not None and cache_key is not None:
        onnx_cache.store(cache_key, onnx_cache.CachedGraph(graph, runner.fused, runner.precision))
    return runner


def _cached_runner(cached, feeds, expected, threads: int, tolerance: float) -> Optional[OnnxRunner]:
    """A runner of a cached graph if it passes the check its export passed (fp32: `tolerance`; int8: `INT8_MIN_COSINE`)."""
    try:
        runner = OnnxRunner(cached.graph, threads)
        got = runner(**feeds)
        difference = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
        if cached.precision == "int8":
            if min(min_row_cosine(a, b) for a, b in zip(expected, got)) < INT8_MIN_COSINE:
                return None
        elif cached.precision != "fp32" or difference > tolerance:
            return None
    except Exception:  # noqa: BLE001 - a damaged file: export again
        return None
    runner.fused, runner.precision, runner.max_difference = cached.fused, cached.precision, difference
    return runner


def _export_and_check(module, tensors, names, outputs, axes, feeds, expected, threads: int, what: str, tolerance: float,
                      int8: bool, transformer) -> Tuple[Optional[OnnxRunner], bytes]:
    """The export itself: (runner, the graph it serves), or (None, b"") where ONNX Runtime cannot serve the module."""
    import torch

    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():  # the tracer's notes on transformers' code: nothing a user can act on
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tensors, buffer, dynamo=False, input_names=names, output_names=list(outputs),
                              dynamic_axes=axes, opset_version=OPSET)
        plain = buffer.getvalue()
        graphs = [(plain, False)]
        if transformer is not None:
            fused_graph, fused = _fused(plain, transformer, what)
            if fused:
                graphs.insert(0, (fused_graph, True))  # fused first; the unfused graph if it differs from torch
        for model, fused in graphs:
            runner = OnnxRunner(model, threads)
            runner.fused = fused
            got = runner(**feeds)
            difference = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
            if difference <= tolerance:
                break
    except Exception as e:  # an architecture the exporter cannot trace: serve with torch
        logger.warning("the %s could not be exported to ONNX (%s): it serves with torch", what, e)
        return None, b""
    if difference > tolerance:
        logger.warning("ONNX Runtime differs from torch by %.2g on sample messages: the %s serves with torch", difference, what)
        return None, b""
    runner.max_difference = difference
    if not int8:
        return runner, model
    try:
        quantized_graph = _quantize(model)  # the checked graph: `model` is the one `runner` serves
        quantized = OnnxRunner(quantized_graph, threads)
        quantized.fused = runner.fused
        got_int8 = quantized(**feeds)
        agreement = min(min_row_cosine(a, b) for a, b in zip(got, got_int8))
    except Exception as e:  # noqa: BLE001 - an operator the quantizer cannot handle: fp32 still serves
        logger.warning("the %s could not be quantized to int8 (%s): it serves in fp32", what, e)
        return runner, model
    if agreement < INT8_MIN_COSINE:
        logger.warning("the int8 %s points elsewhere than fp32 on sample messages (cosine %.3f): it serves in fp32",
                       what, agreement)
        return runner, model
    quantized.max_difference = max(float(np.abs(a - b).max()) for a, b in zip(expected, got_int8))
    quantized.precision = "int8"
    return quantized, quantized_graph


def _fused(model: bytes, config, what: str) -> Tuple[bytes, bool]:
    """ONNX Runtime's transformer optimizer on an exported BERT-like encoder: one Attention kernel per layer instead
    of a dozen matrix and shape operators, embeddings + layer norm, skip + layer norm and bias + GELU fused. Same
    numbers (logits within 1.2e-5 for the MiniLM classifier), 0.35 ms less per message in fp32 and 0.5 ms in int8 (MiniLM-L6, one
    thread, weights out of the CPU caches as they are between a message's passes). Anything the optimizer cannot
    read is served unfused; only BERT's layout (MiniLM's) is fused, other architectures were not measured."""
    if getattr(config, "model_type", None) != "bert":
        return model, False
    try:
        from onnxruntime.transformers import optimizer

        with tempfile.TemporaryDirectory() as folder, _quiet_quantizer():
            source, target = Path(folder) / "fp32.onnx", Path(folder) / "fused.onnx"
            source.write_bytes(model)
            fused = optimizer.optimize_model(str(source), model_type="bert", num_heads=int(config.num_attention_heads),
                                             hidden_size=int(config.hidden_size), opt_level=0)
            if not fused.get_fused_operator_statistics().get("Attention"):
                return model, False
            fused.save_model_to_file(str(target))
            return target.read_bytes(), True
    except Exception as e:  # noqa: BLE001 - a graph the optimizer cannot read: unfused still serves
        logger.info("the %s serves unfused (ONNX Runtime's transformer optimizer: %s)", what, e)
        return model, False


def _quantize(model: bytes) -> bytes:
    """ONNX Runtime's dynamic int8 quantization of a model's weights (per output channel), in a temporary folder.
    Float is the type assumed where shape inference cannot tell (the outputs of fused transformer kernels)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder, _quiet_quantizer():
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        source.write_bytes(model)
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        return target.read_bytes()


def min_row_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    norms = np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return float(((a * b).sum(axis=-1) / norms).min())


@contextmanager
def _quiet_quantizer():
    """The quantizer advises "pre-processing" through the root logger at every load: nothing a user can act on.
    Warnings are off for the 1-2 s it runs (a filter on the root logger let it through under Rasa's logging set-up)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)
