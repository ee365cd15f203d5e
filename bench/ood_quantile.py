"""What the classifier's `ood_quantile` trades: in-scope accuracy against out-of-scope messages caught.

A trained classifier's in-domain scalers (finetune/calibration.py) are refitted at each quantile on the
model's own held-out split (the texts its manifest records as held out, read from `--train`), exactly
as training fits them, and the eval files are predicted with each. The other fitted parts (temperature,
kNN weight, blend) stay as trained. Accuracy is read as `rasa test nlu` reads it (the first choice; a
fallback does not count), plus the share right with a confidence over FallbackClassifier's 0.45.
Develop on a validation split, never the test file; for CLINC150 (bench/public_data.py writes val.yml):

    .venv/bin/python bench/ood_quantile.py --model OUT/models --train OUT/train.yml --nlu OUT/val.yml
    .venv/bin/python bench/ood_quantile.py --model models --train data/nlu \\
        --nlu tests/data/nlu.yml tests/data/nlu_zh.yml     # the shop's held-out sets
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FALLBACK_THRESHOLD = 0.45  # config.yml's FallbackClassifier


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="a model archive, or a directory (its newest archive)")
    parser.add_argument("--train", required=True, help="the NLU data the model was trained on (finds its held-out split)")
    parser.add_argument("--nlu", required=True, nargs="+", help="NLU files to predict (Rasa YAML), out_of_scope included")
    parser.add_argument("--quantiles", nargs="+", type=float, default=[0.005, 0.01, 0.015, 0.02])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.disable(logging.WARNING)
    from rasa.model import get_local_model

    from finetune.calibration import OUT_OF_SCOPE, SigmoidScaler, knn_similarity
    from finetune.data import held_out_examples, load_nlu_examples
    from finetune.encoding import encode
    from retrain.train_candidate import load_intent_model

    archive = Path(get_local_model(str(args.model))) if args.model.is_dir() else args.model
    model = load_intent_model(archive)
    if model is None:
        parser.error(f"{archive} has no kefu intent classifier")
    config = model.manifest["train_config"]
    held = held_out_examples(load_nlu_examples([args.train]), model.manifest["validation_split"])
    texts = [model.fold(e.text) for e in held]
    in_scope = np.array([e.intent != OUT_OF_SCOPE for e in held])
    encoded = encode(model.model, model.tokenizer, texts, model.max_length, model.device, runner=model.onnx)
    # As training fits them: the transformer's scaler on what it read (when another view reads the rest),
    # the multilingual one on every held-out message, the n-gram one on the poorly read when there are 5.
    readable = encoded.coverage >= config["lexical_min_coverage"]
    if (model.multilingual is None and model.lexical is None) or (readable & in_scope).sum() < 2:
        readable = np.ones(len(held), bool)
    similarity = knn_similarity(encoded.embeddings @ model.bank.T, model.neighbours)
    nearest = model.multilingual.score(model.encoder.encode(texts))[1] if model.multilingual is not None else None
    lexical = model.lexical.score(texts)[1] if model.lexical is not None else None
    poor = in_scope & ~readable

    def refit(quantile: float) -> None:
        model.scaler = SigmoidScaler.fit(similarity[in_scope & readable], quantile)
        if nearest is not None:
            model.multilingual_in_domain = SigmoidScaler.fit(nearest[in_scope], quantile)
        if lexical is not None:
            model.lexical_in_domain = SigmoidScaler.fit(lexical[poor if poor.sum() >= 5 else in_scope], quantile, default_threshold=0.2)

    saved = model.scaler.threshold
    refit(float(config["ood_quantile"]))
    print(f"{len(held)} held-out messages ({int((~in_scope).sum())} out of scope); refit at the trained quantile "
          f"{config['ood_quantile']}: transformer threshold {model.scaler.threshold:.4f} (saved {saved:.4f})")
    eval_sets = [(path, load_nlu_examples([path])) for path in args.nlu]
    print(f"{'quantile':>8}  {'file':28}  {'in-scope':>8}  {'caught':>7}  {'in-scope sure':>13}")
    for quantile in args.quantiles:
        refit(quantile)
        for path, examples in eval_sets:
            predictions = model.predict([e.text for e in examples])
            truth = np.array([e.intent for e in examples])
            predicted = np.array([p.intent for p in predictions])
            sure = np.array([p.confidence >= FALLBACK_THRESHOLD for p in predictions])
            inside = truth != OUT_OF_SCOPE
            right = predicted == truth
            caught = f"{right[~inside].mean():.3f}" if (~inside).any() else "-"
            print(f"{quantile:>8}  {Path(path).name[-28:]:28}  {right[inside].mean():8.4f}  {caught:>7}  {(right & sure)[inside].mean():13.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
