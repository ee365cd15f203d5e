"""How the views are blended per message: a message the transformer cannot read gets no vote from it."""

import numpy as np

from finetune.blend import Blend, View
from finetune.calibration import combine

LABELS = ["order_status", "shipping_times", "out_of_scope"]


def _views():
    # The other views agree on order_status; the transformer, reading [UNK]s, leans elsewhere.
    transformer = View(np.array([[0.05, 0.9, 0.05]] * 2), np.array([0.3, 0.3]))
    multilingual = View(np.array([[0.5, 0.3, 0.2]] * 2), np.array([0.95, 0.95]))
    lexical = View(np.array([[0.5, 0.3, 0.2]] * 2), np.array([0.95, 0.95]))
    return transformer, multilingual, lexical


def test_a_poorly_read_message_gets_no_transformer_vote():
    transformer, multilingual, lexical = _views()
    coverage = np.array([0.6, 1.0])  # a Chinese message with a few known characters; an English one
    gated, _ = Blend(0.5, 0.5, min_coverage=0.7).mix(coverage, transformer, multilingual, lexical)
    ungated, _ = Blend(0.5, 0.5).mix(coverage, transformer, multilingual, lexical)
    assert np.allclose(gated[0], multilingual.probs[0])  # the other views alone
    assert ungated[0, 0] < gated[0, 0]  # before: the transformer flattened the right intent
    assert np.allclose(gated[1], ungated[1])  # a message it reads is blended as before


def test_the_fitted_blend_keeps_the_gate_and_an_old_manifest_has_none():
    transformer, multilingual, lexical = _views()
    blend = Blend.fit(np.array([0.2, 0.3]), np.array([0, 0]), transformer, multilingual, lexical,
                      lambda p, i: combine(p, i, LABELS), min_coverage=0.7)
    assert blend.min_coverage == 0.7 and Blend(**blend.to_dict()) == blend
    assert Blend(**{"transformer_share": 0.5, "lexical_share": 0.5}).min_coverage == 0.0
