"""The knowledge base picks how much answer texts weigh in the ranking from its own held-out questions."""

from __future__ import annotations

import dataclasses

from retrieval import KBConfig, KnowledgeBase

# The answer head's shares are tried in tests/retrieval/test_joint_head.py; here only the answer-text weight moves.
CONFIG = KBConfig(adapt=False, calibration_folds=2, answer_head_weights=[])


def misleading(pairs):
    """Each answer's text worded like another answer's questions (as terse category labels can be)."""
    answers = list(dict.fromkeys(p.answer for p in pairs))
    first_question = {}
    for pair in pairs:
        first_question.setdefault(pair.answer, pair.question)
    text = {a: "About: " + first_question[answers[(i + 1) % len(answers)]] for i, a in enumerate(answers)}
    return [dataclasses.replace(p, answer=text[p.answer]) for p in pairs]


def test_answer_texts_that_mislead_weigh_less_and_the_choice_survives_saving(small_pairs, embedder, tmp_path):
    kb = KnowledgeBase.build(misleading(small_pairs), CONFIG, progress=False)
    ranking = kb.index.stats["ranking"]
    held_out = {t["answer_text_weight"]: t["top1"] for t in ranking["tried"]}
    chosen = ranking["chosen"]["answer_text_weight"]
    assert chosen < 1.0 and kb.index.config.answer_text_weight == chosen
    assert held_out[chosen] >= held_out[1.0] + CONFIG.answer_text_weight_gain
    kb.save(tmp_path / "kb")
    assert KnowledgeBase.load(tmp_path / "kb").index.config.answer_text_weight == chosen


def test_answer_texts_that_read_like_answers_keep_the_configured_weight(small_pairs, embedder):
    kb = KnowledgeBase.build(small_pairs, CONFIG, progress=False)
    assert kb.index.config.answer_text_weight == 1.0
    assert kb.index.stats["ranking"]["chosen"]["answer_text_weight"] == 1.0


def test_no_weights_to_try_keeps_the_index_weight(small_pairs, embedder):
    kb = KnowledgeBase.build(misleading(small_pairs), dataclasses.replace(CONFIG, answer_text_weights=[]), progress=False)
    assert kb.index.config.answer_text_weight == 1.0 and "ranking" not in kb.index.stats
