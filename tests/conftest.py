"""Shared fixtures: a tiny NLU data set and one model trained on it per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KEFU_TORCH_THREADS", str(os.cpu_count() or 1))

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
# Exported ONNX graphs (kefu.core.onnx_cache) inside the clone: the suite's many loads of one model export once,
# and nothing of another clone's runs serves here. Servers the tests start inherit it.
os.environ.setdefault("KEFU_ONNX_CACHE", str(ROOT / "build" / "test" / "onnx-cache"))

# Small but real: trains in seconds on a 2-core CPU.
FAST_TRAINING = {
    "epochs": 8,
    "batch_size": 8,
    "max_length": 32,
    "validation_fraction": 0.25,
    "time_budget_minutes": None,
    "seed": 7,
}


@pytest.fixture(scope="session")
def tiny_nlu() -> Path:
    return FIXTURES / "tiny_nlu.yml"


@pytest.fixture(scope="session")
def tiny_examples(tiny_nlu):
    from finetune import load_nlu_examples

    return load_nlu_examples([tiny_nlu])


@pytest.fixture(scope="session")
def tiny_model(tiny_examples):
    from finetune import TrainConfig, train

    return train(tiny_examples, TrainConfig(**FAST_TRAINING), progress=False)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_model, tmp_path_factory) -> Path:
    return tiny_model.save(tmp_path_factory.mktemp("model") / "intent")
