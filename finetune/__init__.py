"""Fine-tuned transformer intent classifier.

Public API::

    from finetune import TrainConfig, train, evaluate, IntentModel, load_nlu_examples

    examples = load_nlu_examples(["data/nlu"])
    model = train(examples, TrainConfig(seed=7))
    model.save("models/intent")
    model = IntentModel.load("models/intent")
    model.predict(["where is my parcel?"])[0].intent

Library entry points (`train`, `IntentModel.load`) set up the process
themselves (`kefu.core.runtime`): offline mode, threads, seed.

Nothing here imports Rasa except `load_nlu_examples`, which uses Rasa's own
YAML loader so that every format `rasa train` accepts is accepted here too.
"""

from finetune.config import TrainConfig
from finetune.data import Example, load_nlu_examples
from finetune.errors import DataError, FinetuneError, ModelLoadError
from finetune.evaluate import evaluate
from finetune.model import MANIFEST as INTENT_MANIFEST
from finetune.model import IntentModel, Prediction, read_manifest
from finetune.trainer import train

__all__ = [
    "INTENT_MANIFEST",
    "DataError",
    "Example",
    "FinetuneError",
    "IntentModel",
    "ModelLoadError",
    "Prediction",
    "TrainConfig",
    "evaluate",
    "load_nlu_examples",
    "read_manifest",
    "train",
]
