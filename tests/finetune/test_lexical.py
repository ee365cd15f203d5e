"""Chinese with an English-only vocabulary: measured coverage, and the character n-gram companion."""

from __future__ import annotations

import pytest

from finetune import Example, IntentModel, ModelLoadError, TrainConfig, train
from kefu.core.text import token_coverage
from tests.conftest import FAST_TRAINING

ZH = {
    "greet": ["你好", "您好", "在吗", "早上好", "哈喽", "你好呀", "嗨，有人吗", "晚上好", "你好，客服", "您好，请问在吗"],
    "order_status": ["我的订单到哪了", "快递什么时候到", "帮我查一下订单", "包裹发货了吗", "我的货怎么还没到",
                     "查询订单状态", "订单现在什么状态", "物流信息在哪看", "东西寄出了吗", "我买的衣服什么时候送到"],
    "reset_password": ["忘记密码了", "怎么重置密码", "密码登不上去", "我想改密码", "登录密码忘了怎么办",
                       "重设密码的链接在哪", "密码错误进不去账号", "帮我重置一下密码", "改登录密码", "找回密码"],
    "thanks": ["谢谢", "多谢", "谢谢你", "非常感谢", "感谢帮忙", "好的谢谢", "太感谢了", "谢啦", "谢谢客服", "辛苦了，谢谢"],
}


@pytest.fixture(scope="module")
def bilingual_model(tiny_examples):
    chinese = [Example(text, intent) for intent, texts in ZH.items() for text in texts]
    return train(list(tiny_examples) + chinese, TrainConfig(**FAST_TRAINING), progress=False)


def test_the_packaged_vocabulary_reads_little_chinese(tiny_model):
    chinese = [t for texts in ZH.values() for t in texts]
    english = ["where is my order", "I forgot my password", "thanks a lot"]
    assert token_coverage(tiny_model.tokenizer, english).min() == 1.0
    assert token_coverage(tiny_model.tokenizer, chinese).mean() < 0.6


def test_companion_is_trained_only_when_the_data_needs_it(tiny_model, bilingual_model):
    assert tiny_model.manifest["lexical"]["enabled"] is False and tiny_model.lexical is None
    info = bilingual_model.manifest["lexical"]
    assert info["enabled"] is True and info["train_share_poorly_read"] > 0.2


def test_chinese_messages_are_classified_and_english_still_is(bilingual_model, tmp_path):
    unseen = {"我的包裹到哪里了": "order_status", "密码忘记了怎么办": "reset_password", "谢谢你的帮助": "thanks", "你好啊": "greet"}
    english = {"where is my parcel": "order_status", "I can't remember my password": "reset_password"}
    loaded = IntentModel.load(bilingual_model.save(tmp_path / "model"))
    assert loaded.lexical is not None
    for model in (bilingual_model, loaded):
        predictions = model.predict(list(unseen) + list(english))
        assert [p.intent for p in predictions] == list(unseen.values()) + list(english.values())


def test_companion_is_stored_without_pickles_and_a_damaged_file_is_refused(bilingual_model, tmp_path):
    directory = bilingual_model.save(tmp_path / "model")
    assert not [p for p in directory.iterdir() if p.suffix in (".joblib", ".pkl", ".pickle")]
    classifier = directory / "lexical_classifier.skops"
    classifier.write_bytes(classifier.read_bytes()[:100])
    with pytest.raises(ModelLoadError, match="corrupt"):
        IntentModel.load(directory)


def test_lexical_option_is_validated():
    with pytest.raises(Exception, match="lexical"):
        TrainConfig(lexical="sometimes").validate()
