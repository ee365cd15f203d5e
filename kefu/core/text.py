"""Text helpers shared by the libraries and the adapters: cleaning, normalising, child logs, language, tokenizer coverage."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

_SURROGATES = re.compile("[\ud800-\udfff]")
_PUNCTUATION_OR_SPACE = re.compile(r"[\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def clean_text(text: str) -> str:
    """Makes any str safe for a tokenizer: lone surrogates (undecodable bytes) become U+FFFD."""
    return _SURROGATES.sub("\ufffd", text).strip()


@lru_cache(maxsize=1 << 16)
def normalize_text(text: str) -> str:
    """Case, width, punctuation and spacing folded away: 'Where is my order?' == 'where is  my ORDER'.

    Kept for the last 65,536 texts: the knowledge base groups every message's 20 candidates by their
    normalised answers, the same few hundred answers all day."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _PUNCTUATION_OR_SPACE.sub(" ", text).strip()


# ------------------------------------------------------------------ logs
# A progress bar in a log: frames separated by carriage returns, one per step, on one "line" (Rasa's
# TED epochs redraw at every epoch whatever tqdm is told). A CRLF line end is not a redraw.
_REDRAWN = re.compile(r"[^\n]*\r(?!\n)")


def without_redraws(text: str) -> str:
    """The log as a reader wants it: of each progress bar, only its last frame."""
    return _REDRAWN.sub("", text)


def read_log(path) -> str:
    """A child's log, progress-bar redraws dropped (read as bytes were written: universal newlines would
    turn every redraw into a line of its own)."""
    with open(Path(path), encoding="utf-8", errors="replace", newline="") as handle:
        return without_redraws(handle.read())


def log_tail(path, chars: int = 1500) -> str:
    """The end of a child's log for an error message (else a failure during training shows 1,500
    characters of one progress bar's frames)."""
    return read_log(path)[-chars:]


# ------------------------------------------------------------------ language
# Short Latin-letter replies that people write in any language: they say nothing about it.
_NEUTRAL_WORDS = {
    "ok", "okay", "okk", "k", "kk", "yes", "yep", "yeah", "ya", "no", "nope", "hi", "hey", "hello", "bye", "thx", "ty",
    "lol", "haha", "hh", "hhh", "hmm", "em", "en", "ah", "oh", "wow", "sorry", "pls", "plz", "please", "thanks", "thank",
    "you", "u", "good", "fine", "cool", "nice", "ok.", "id", "no.", "app", "vip", "dd", "kf",
}
_WORD = re.compile(r"[A-Za-z]+")


def detect_language(text: Optional[str]) -> Optional[str]:
    """'zh', 'en', or None when the text says nothing about the language.

    No model needed for the two languages the store serves: a message with a
    real share of CJK characters is Chinese. None for button payloads
    (`/affirm`), order numbers, emoji, and short replies written the same in
    any language ("ok", "yes", "thx", "hi"): those keep the conversation's
    language instead of switching a Chinese customer to English.
    """
    if not text or text.startswith("/"):
        return None
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk and cjk * 5 >= latin:  # a Chinese character carries about as much as a short English word
        return "zh"
    if not latin:
        return None
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) <= 2 and all(w in _NEUTRAL_WORDS for w in words):
        return None
    return "en"


def conversation_language(user_texts_newest_first: Iterable[Optional[str]], default: str = "en") -> str:
    """The language of the latest user message that says which (payloads, numbers and "ok" say nothing)."""
    for text in user_texts_newest_first:
        language = detect_language(text)
        if language:
            return language
    return default


# ------------------------------------------------------------- Chinese scripts
HANS, HANT = "hans", "hant"  # Simplified, Traditional


@lru_cache(maxsize=None)
def _opencc(config: str):
    import opencc

    return opencc.OpenCC(config)


def _convert(config: str, text: str) -> str:
    # OpenCC takes UTF-8: lone surrogates (undecodable bytes in a message) would make it raise.
    return _opencc(config).convert(_SURROGATES.sub("\ufffd", text))


def to_simplified(text: str) -> str:
    """Traditional characters folded to Simplified (OpenCC t2s); other text unchanged.

    Models and knowledge bases are trained on Simplified Chinese; customers in
    Hong Kong and Taiwan write Traditional. Folding at the input makes both one.
    """
    if not text or not _CJK.search(text):
        return text
    return _convert("t2s", text)


def chinese_script(text: Optional[str]) -> Optional[str]:
    """HANT when the text has Traditional-only characters, HANS when it has Simplified-only ones, else None."""
    if not text or not _CJK.search(text):
        return None
    text = _SURROGATES.sub("\ufffd", text)
    if _convert("t2s", text) != text:
        return HANT
    if _convert("s2t", text) != text:
        return HANS
    return None


def conversation_script(user_texts_newest_first: Iterable[Optional[str]], default: str = HANS) -> str:
    """The Chinese script of the latest user message that shows one."""
    for text in user_texts_newest_first:
        script = chinese_script(text)
        if script:
            return script
    return default


def to_script(text: str, script: str) -> str:
    """A Simplified text in the customer's script (Traditional: OpenCC s2t; Simplified: unchanged)."""
    if script != HANT or not text or not _CJK.search(text):
        return text
    return _convert("s2t", text)


# ------------------------------------------------------------ tokenizer coverage
def coverage_of_ids(ids: Sequence[int], unk_id: Optional[int], special_ids: Iterable[int] = ()) -> float:
    """Share of word pieces that are not the unknown token (1.0 for no pieces); special tokens are skipped."""
    special = set(special_ids)
    pieces = [t for t in ids if t not in special]
    if not pieces:
        return 1.0
    return 1.0 - sum(1 for t in pieces if t == unk_id) / len(pieces)


def token_coverage(tokenizer, texts: Sequence[str]) -> np.ndarray:
    """Per text, the share of its word pieces the tokenizer knows (1.0 for empty text).

    all-MiniLM-L6-v2's WordPiece vocabulary has 244 CJK characters, so most
    Chinese text becomes [UNK]; the libraries lean on character n-grams where
    the transformer reads little. Where the ids exist already (a forward pass
    tokenized the text), use `coverage_of_ids` on them instead of tokenizing again.
    """
    if not len(texts):
        return np.ones(0, dtype=np.float32)
    encoded = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return np.array([coverage_of_ids(ids, tokenizer.unk_token_id) for ids in encoded], dtype=np.float32)


def needs_lexical(coverage: np.ndarray, min_coverage: float, min_share: float) -> bool:
    """True when at least `min_share` of the texts are read below `min_coverage`."""
    return bool(len(coverage)) and float((coverage < min_coverage).mean()) >= min_share


def transformer_weight(coverage: np.ndarray) -> np.ndarray:
    """How much the transformer's score counts for a text it reads this well.

    Squared: a half-read message is mostly noise to the transformer.
    """
    return np.clip(coverage, 0.0, 1.0) ** 2


# ------------------------------------------------------- the question an agent's answer answers
# Words that carry no question: greetings, thanks, acknowledgements, asking for a person, nudges while waiting,
# and the words around an order number ("my order number is 104233"). A message of these alone is not a question.
# Shared by the desk (proposals a lead reviews) and the retrain (answers posted to Rasa's API), which must agree.
FILLER_WORDS = frozenset("""
hi hello hey hiya morning afternoon evening good dear there anyone anybody someone somebody still waiting wait
thanks thank thx ty cheers ok okay k kk yes yeah yep no nope sure fine great please pls plz sorry hmm oh ah
i i'm im me my mine you your we our us is it it's its this that are am be was a an the and or to of for on in at
want wanna need would like can could may talk speak chat contact connect get give put through transfer real live
person human agent people staff operator representative support service customer team someone somebody help
order orders number no. id reference ref here again
""".split())
FILLER_CHARS = frozenset("你好您在吗嗎谢謝请請人工客服转轉接找要想我的订訂单單号號是和有没沒呢啊吧哦嗯好的了一下帮幫")
ORDER_NUMBER = re.compile(r"(?<!\d)\d{6}(?!\d)")
# Intents whose message is never the question an agent answers unless it says more (the retrain's
# handoff_qa.skip_intents default).
QUESTION_SKIP_INTENTS = frozenset({"greet", "goodbye", "thanks", "affirm", "deny", "human_handoff"})
_LATIN_WORD = re.compile(r"[a-z][a-z'.]*")
_CJK_CHAR = re.compile(r"[\u3400-\u9fff]")


def is_question(text: str, intent: Optional[str] = None, skip_intents: Iterable[str] = QUESTION_SKIP_INTENTS) -> bool:
    """Whether a customer message can stand as the question an agent's answer answers: not a button payload,
    not only a greeting, thanks, a request for a person, a nudge or an order number. A message the bot took for
    one of `skip_intents` needs more content than that ("hi, can I pay with klarna?" parsed as greet still counts)."""
    text = (text or "").strip()
    if not text or text.startswith("/"):
        return False
    plain = normalize_text(ORDER_NUMBER.sub(" ", text))
    words = [w for w in _LATIN_WORD.findall(plain) if w.strip(".'") not in FILLER_WORDS and len(w.strip(".'")) > 1]
    chars = [c for c in _CJK_CHAR.findall(plain) if c not in FILLER_CHARS]
    return len(words) + len(chars) / 2 >= (3 if intent in set(skip_intents) else 1.5)
