"""Chinese Q&A with an English-only embedding vocabulary: character n-gram scores blended in."""

from __future__ import annotations

from retrieval import IndexConfig, QAIndex, QAPair, build

ZH = [
    ("ship-zh-a", "运费多少钱", "满49美元包邮，否则运费5.99美元。"),
    ("ship-zh-b", "邮费怎么算", "满49美元包邮，否则运费5.99美元。"),
    ("ret-zh-a", "怎么退货", "收货后30天内可以免费退货，在订单页面点击“退货”。"),
    ("ret-zh-b", "可以退货吗", "收货后30天内可以免费退货，在订单页面点击“退货”。"),
    ("pay-zh-a", "支持支付宝吗", "我们支持信用卡、PayPal和支付宝付款。"),
    ("pay-zh-b", "可以用什么付款", "我们支持信用卡、PayPal和支付宝付款。"),
    ("gift-zh-a", "礼品卡余额怎么查", "在“我的账户 > 礼品卡”里输入卡号即可查看余额。"),
    ("gift-zh-b", "礼品卡还剩多少钱", "在“我的账户 > 礼品卡”里输入卡号即可查看余额。"),
]
EN = [
    ("ship-en", "how much is shipping", "Free over $49, otherwise $5.99."),
    ("ret-en", "how do I return an item", "Free returns within 30 days from the Orders page."),
]


def pairs():
    return [QAPair(i, q, a) for i, q, a in ZH + EN]


def best(index, question):
    return index.search(question, k=3)[0].answers[0].answer


def test_chinese_questions_find_their_answers_through_character_ngrams(embedder, tmp_path):
    index = build(pairs(), IndexConfig(kind="flat", multilingual="off"), embedder=embedder, progress=False)
    assert index.lexical is not None and index.stats["lexical"] is True
    assert best(index, "退货要怎么弄").startswith("收货后30天内")
    assert best(index, "能用支付宝付钱吗").startswith("我们支持信用卡")
    assert best(index, "礼品卡里还有多少余额").startswith("在“我的账户")
    # English queries are read fully by the tokenizer: embedding scores only, as before.
    english = index.search("what does delivery cost", k=3)[0]
    assert english.answers[0].answer == "Free over $49, otherwise $5.99."
    loaded = QAIndex.load(index.save(tmp_path / "kb"), embedder=embedder)
    assert loaded.lexical is not None and best(loaded, "退货要怎么弄").startswith("收货后30天内")


def test_lexical_scores_follow_add_and_delete(embedder):
    index = build(pairs(), IndexConfig(kind="flat", multilingual="off"), embedder=embedder, progress=False)
    index.add([QAPair("size-zh-a", "尺码表在哪里", "每个商品页面的尺码选择下方都有“尺码指南”。")], progress=False)
    assert best(index, "哪里看尺码表").startswith("每个商品页面")
    index.delete(["ret-zh-a", "ret-zh-b"])
    assert not best(index, "怎么退货").startswith("收货后30天内")
    assert len(index.lexical.ids) == index.entries


def test_english_only_data_gets_no_lexical_scores(small_index):
    assert small_index.lexical is None and small_index.stats["lexical"] is False
