"""The intent classifier in int8 with parts of its transformer kept in fp32: which part moves the predictions?

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/int8_parts.py --model build/test/models/kefu.tar.gz \
        [--keep 'Attention_' 'layer\\.5/' 'Gemm' 'intermediate|output/dense']

`KEFU_INT8=all` quantizes every weight matrix of the classifier's transformer (ONNX Runtime's
dynamic quantization, kefu/core/onnx_runtime.py). Each `--keep` pattern is a row that keeps the
graph nodes whose names match it in fp32 (`quantize_dynamic(nodes_to_exclude=...)`); the node
names of the fused MiniLM graph are `Attention_0..5`, `/inner/bert/encoder/layer.N/attention/output/dense/MatMul`,
`.../layer.N/intermediate/dense/MatMul`, `.../layer.N/output/dense/MatMul`, and the pooler's and the
head's `Gemm`. Per row: intent accuracy on the English and Chinese held-out files, predictions that
differ from fp32's, the largest change of a top confidence, and the classifier's predict time per
message (p50 over the first 300 English messages, one at a time, in this process: the weights stay
in the CPU's caches, unlike a real parse, so it understates int8's gain; bench/nlu_backends.py times
the whole NLU). One model is loaded per row; nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def quantizer(keep: Optional[str]):
    """A stand-in for kefu.core.onnx_runtime._quantize that leaves the nodes matching `keep` in fp32."""

    def quantize(model: bytes) -> bytes:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        import kefu.core.onnx_runtime as onnx_runtime

        graph = onnx.load_from_string(model).graph
        excluded = [n.name for n in graph.node if keep and re.search(keep, n.name)]
        with tempfile.TemporaryDirectory() as folder, onnx_runtime._quiet_quantizer():
            source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
            source.write_bytes(model)
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=excluded,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            return target.read_bytes()

    return quantize


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a Rasa model archive with kefu's intent classifier")
    parser.add_argument("--test", default="tests/data/nlu.yml")
    parser.add_argument("--test-zh", default="tests/data/nlu_zh.yml")
    parser.add_argument("--keep", nargs="*", default=["Attention_", r"layer\.5/", "Gemm", "intermediate|output/dense"],
                        help="regular expressions over node names: one row each, those nodes kept in fp32")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import kefu.core.onnx_runtime as onnx_runtime
    from finetune import IntentModel, load_nlu_examples
    from retrain.train_candidate import extract_intent_model

    directory = extract_intent_model(Path(args.model), Path(tempfile.mkdtemp(prefix="kefu-int8-parts-")))
    if directory is None:
        parser.error(f"{args.model} has no kefu intent classifier")
    english, chinese = load_nlu_examples([args.test]), load_nlu_examples([args.test_zh])
    texts = [t for t, _ in english] + [t for t, _ in chinese]
    rows = [("fp32", "off", None), ("int8, every matrix", "all", None)] + [(f"int8, /{k}/ kept fp32", "all", k) for k in args.keep]
    print(f"{len(english)} English and {len(chinese)} Chinese held-out messages; model {args.model}")
    print(f"| {'classifier':44} | {'intents en':>10} | {'intents zh':>10} | {'differ':>6} | {'max drift':>9} | {'predict p50':>11} |")
    print(f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|{'-' * 8}|{'-' * 11}|{'-' * 13}|")
    original, reference = onnx_runtime._quantize, None
    try:
        for label, int8, keep in rows:
            os.environ["KEFU_INT8"] = int8
            onnx_runtime._quantize = quantizer(keep)
            model = IntentModel.load(directory)
            predictions = model.predict(texts)
            names = [p.intent for p in predictions]
            confidences = np.array([p.confidence for p in predictions])
            reference = reference or (names, confidences)
            seconds = []
            for text, _ in english[:300]:
                started = time.perf_counter()
                model.predict([text])
                seconds.append(time.perf_counter() - started)
            en = np.mean([n == i for n, (_, i) in zip(names, english)])
            zh = np.mean([n == i for n, (_, i) in zip(names[len(english):], chinese)])
            differ = sum(a != b for a, b in zip(names, reference[0]))
            drift = float(np.abs(confidences - reference[1]).max())
            print(f"| {label:44} | {en:>10.4f} | {zh:>10.4f} | {differ:>6} | {drift:>9.3f} | {1000 * np.median(seconds):>8.2f} ms |",
                  flush=True)
    finally:
        onnx_runtime._quantize = original
    return 0


if __name__ == "__main__":
    sys.exit(main())
