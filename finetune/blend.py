"""How the views of a message are blended into one distribution, per message.

Three views: the fine-tuned transformer (reads English), the multilingual
head (reads every language, finetune/multilingual.py) and the character n-gram
companion (reads any characters, finetune/lexical.py). The transformer's share
of a message is `transformer_share * coverage**2`, and nothing below
`min_coverage`: what it cannot read (Chinese [UNK]) it does not vote on. A
Chinese message of which MiniLM knows a few characters (a quarter, typically)
gave the transformer a few per cent of the vote, enough to flatten a right
answer of the other views under FallbackClassifier's threshold (held-out
Chinese: 3 in 100 right intents lost that way). The rest is split between the multilingual head and
the n-gram companion by `lexical_share`. Both shares are fitted on the held-out
split (accuracy first, then likelihood); the in-domain probabilities are blended
with the same weights. No temperature on top: one fitted on the blend sharpened
borderline confidences past FallbackClassifier's threshold and a conversation
test that needs the bot to be unsure failed, for no held-out accuracy gained.
Training and prediction use this one implementation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from kefu.core.text import transformer_weight

SHARES = np.round(np.linspace(0.0, 1.0, 11), 2)
LEXICAL_SHARES = (0.0, 0.25, 0.5, 0.75)


@dataclass
class View:
    probs: np.ndarray  # (messages, labels), calibrated
    in_domain: np.ndarray  # (messages,), P(in domain)


@dataclass
class Blend:
    transformer_share: float = 1.0
    lexical_share: float = 1.0
    # Messages read less than this get no transformer vote (0: every message; models saved before it existed).
    min_coverage: float = 0.0

    def mix(self, coverage: np.ndarray, transformer: View, multilingual: Optional[View] = None,
            lexical: Optional[View] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(probabilities, in-domain probability) per message."""
        other = _other(multilingual, lexical, self.lexical_share)
        if other is None:
            return transformer.probs, transformer.in_domain
        weight = transformer_weight(coverage) * (np.asarray(coverage) >= self.min_coverage)
        share = self.transformer_share * weight if multilingual is not None else weight
        probs = share[:, None] * transformer.probs + (1 - share[:, None]) * other.probs
        return probs, share * transformer.in_domain + (1 - share) * other.in_domain

    @classmethod
    def fit(cls, coverage: np.ndarray, labels: np.ndarray, transformer: View, multilingual: Optional[View],
            lexical: Optional[View], combine, min_coverage: float = 0.0) -> "Blend":
        """The shares that classify the held-out messages best; `combine(probs, in_domain)` gives final scores."""
        if multilingual is None:
            return cls(1.0, 1.0, min_coverage)
        if not len(labels):
            return cls(0.5, 0.0, min_coverage)

        def score(blend: "Blend"):
            probs, p_in = blend.mix(coverage, transformer, multilingual, lexical)
            final = combine(probs, p_in)
            accuracy = float((final.argmax(1) == labels).mean())
            nll = float(-np.log(np.clip(final[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())
            # Ties go to the middle: an even blend generalises better than an extreme one.
            return accuracy, -nll, -abs(blend.transformer_share - 0.5)

        lexical_shares = LEXICAL_SHARES if lexical is not None else (0.0,)
        return max((cls(float(t), float(b), min_coverage) for t in SHARES for b in lexical_shares), key=score)

    def to_dict(self) -> Dict[str, float]:
        return asdict(self)


def _other(multilingual: Optional[View], lexical: Optional[View], lexical_share: float) -> Optional[View]:
    if multilingual is None:
        return lexical
    if lexical is None or lexical_share <= 0:
        return multilingual
    return View((1 - lexical_share) * multilingual.probs + lexical_share * lexical.probs,
                (1 - lexical_share) * multilingual.in_domain + lexical_share * lexical.in_domain)
