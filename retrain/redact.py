"""Personal data out of transcripts before anything becomes training data or leaves the database.

Library: scrubadub 2 (emails, phone numbers via Google's libphonenumber for the
configured regions, URLs, social handles, credentials). Added here, because
scrubadub has no detector for them or misses common forms: card numbers with
spaces or dashes (digits + Luhn check), this store's six-digit order numbers,
and names introduced by a phrase ("my name is ...", "I'm ...", "this is ...",
a sign-off) or found in a first-name list. Measured on a labelled sample:
`kefu retrain pii-check` (tests/data/pii_sample.yml).

Two styles: `placeholder` ("[EMAIL]") for what people read (the review file),
`surrogate` (a fixed, realistic, non-personal value of the same shape) for
training data, so the classifier still sees "order 000000" where a customer
wrote an order number.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Tuple

import scrubadub
from scrubadub.detectors import PhoneDetector, RegexDetector
from scrubadub.filth import Filth

PLACEHOLDER, SURROGATE = "placeholder", "surrogate"
SURROGATES = {
    "email": "customer@example.com",
    "phone": "555 0100",
    "credit_card": "0000 0000 0000 0000",
    "order_number": "000000",
    "name": "Alex",
    "url": "https://example.com",
}
_NAMES_FILE = Path(__file__).with_name("first_names.txt")


class OrderNumberFilth(Filth):
    type = "order_number"


class CardNumberFilth(Filth):
    type = "credit_card"


class NameFilth(Filth):
    type = "name"


class StrictEmailFilth(Filth):
    type = "email"


class StrictEmailDetector(RegexDetector):
    """Plain addresses; scrubadub's detector also reads " at " as "@" and then cuts "me at name@x.org" short."""

    name = "email_strict"
    filth_cls = StrictEmailFilth
    regex = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class OrderNumberDetector(RegexDetector):
    """Six digits standing alone (optionally after '#'), not part of a longer digit run like a phone number."""

    name = "order_number"
    filth_cls = OrderNumberFilth
    regex = re.compile(r"(?<![\d+])(?<!\d[ -])#?\d{6}(?![ -]?\d)")


class CardNumberDetector(scrubadub.detectors.Detector):
    """13-19 digits, optionally grouped by spaces or dashes, passing the Luhn check."""

    name = "card_number"
    filth_cls = CardNumberFilth
    _regex = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")

    def iter_filth(self, text, document_name=None):
        for match in self._regex.finditer(text):
            if _luhn(re.sub(r"\D", "", match.group())):
                yield CardNumberFilth(beg=match.start(), end=match.end(), text=match.group(),
                                      detector_name=self.name, document_name=document_name, locale=self.locale)


class NameDetector(scrubadub.detectors.Detector):
    """Names after an introduction or sign-off, and known first names written with a capital."""

    name = "person_name"
    filth_cls = NameFilth
    _word = r"[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?"
    _intro = re.compile(
        r"(?i:\bmy name is|\bmy name's|\bname is|\bthis is|\bi am|\bi'm|\bim|\bcall me|\bspeaking with)\s+"
        rf"(?P<name>[^\W\d_]+(?:\s+{_word})?)"
    )
    _signoff = re.compile(rf"(?i:\b(?:thanks|thank you|regards|cheers|best|sincerely)),?\s*(?:-\s*)?(?P<name>{_word}(?:\s+{_word})?)\s*[.!]?\s*$")
    _capitalised = re.compile(rf"\b{_word}(?:\s+{_word})?\b")

    def iter_filth(self, text, document_name=None):
        names = first_names()
        spans = []
        for match in self._intro.finditer(text):
            words = match.group("name").split()
            # "I'm stuck", "this is broken": only a known first name, or any word after "my name is".
            explicit = match.group(0).lower().startswith(("my name", "name is"))
            if words and (explicit or words[0].lower() in names or (words[0][0].isupper() and match.group(0).lower().startswith(("call me", "speaking")))):
                start = match.start("name")
                end = start + len(words[0]) if len(words) > 1 and not words[1][:1].isupper() else match.end("name")
                spans.append((start, end))
        for match in self._signoff.finditer(text):
            spans.append((match.start("name"), match.end("name")))
        for match in self._capitalised.finditer(text):
            first = match.group().split()[0]
            if first.lower() in names and match.start() > 0:  # sentence-initial words are too often not names
                spans.append((match.start(), match.end()))
        for start, end in spans:
            yield NameFilth(beg=start, end=end, text=text[start:end], detector_name=self.name,
                            document_name=document_name, locale=self.locale)


@lru_cache(maxsize=1)
def first_names() -> frozenset:
    lines = [line for line in _NAMES_FILE.read_text().splitlines() if not line.startswith("#")]
    return frozenset(w.lower() for line in lines for w in line.split())


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@lru_cache(maxsize=4)
def _scrubber(regions: Tuple[str, ...]) -> scrubadub.Scrubber:
    scrubber = scrubadub.Scrubber(locale=regions[0])
    scrubber.remove_detector("credit_card")  # replaced by CardNumberDetector (misses spaced numbers)
    for region in regions[1:]:
        scrubber.add_detector(PhoneDetector(locale=region, name=f"phone_{region.lower()}"))
    for detector in (StrictEmailDetector, CardNumberDetector, OrderNumberDetector, NameDetector):
        scrubber.add_detector(detector)
    return scrubber


# Phone-number regions as scrubadub locales (language_REGION).
DEFAULT_REGIONS = ("en_US", "en_GB", "en_CA", "en_AU", "zh_CN")


def find_pii(text: str, regions: Tuple[str, ...] = DEFAULT_REGIONS) -> List[Tuple[int, int, str]]:
    """(start, end, type) of each piece of personal data, overlaps merged (the widest span and its first type win)."""
    found = []
    for filth in _scrubber(tuple(regions)).iter_filth(text):
        parts = getattr(filth, "filths", None) or [filth]
        kinds = [p.type for p in parts]
        # A card number also looks like a phone number to libphonenumber: the specific detector wins.
        kind = next((k for k in ("credit_card", "email", "order_number", "phone", "name") if k in kinds), kinds[0])
        found.append((filth.beg, filth.end, kind))
    return sorted(found)


def redact(text: str, style: str = SURROGATE, regions: Tuple[str, ...] = DEFAULT_REGIONS) -> Tuple[str, Counter]:
    """The text with personal data replaced, and how many of each type were replaced."""
    counts: Counter = Counter()
    if not text:
        return text, counts
    out, last = [], 0
    for start, end, kind in find_pii(text, regions):
        if start < last:
            continue
        counts[kind] += 1
        out.append(text[last:start])
        if style == SURROGATE:
            original = text[start:end]
            value = SURROGATES.get(kind, f"[{kind.upper()}]")
            out.append("#" + value if kind == "order_number" and original.startswith("#") else value)
        else:
            out.append(f"[{kind.upper()}]")
        last = end
    out.append(text[last:])
    return "".join(out), counts


# ------------------------------------------------------------ measurement
def evaluate_sample(path: str | Path) -> Dict[str, Dict[str, float]]:
    """Recall and precision per type on a labelled sample (YAML list of {text, pii: [{type, value}]}).

    A labelled value counts as found when a detection of the same type covers it;
    a detection that covers no labelled value of its type is a false positive.
    """
    import yaml

    items = yaml.safe_load(Path(path).read_text())
    stats: Dict[str, Counter] = {}
    missed: List[str] = []
    for item in items:
        text = item["text"]
        detections = find_pii(text)
        used = set()
        for label in item.get("pii") or []:
            kind, value = label["type"], str(label["value"])
            start = text.find(value)
            if start < 0:
                raise ValueError(f"{path}: {value!r} is not in {text!r}")
            end = start + len(value)
            s = stats.setdefault(kind, Counter())
            s["labelled"] += 1
            hit = next((i for i, (b, e, k) in enumerate(detections) if k == kind and b <= start and e >= end), None)
            if hit is None:
                missed.append(f"{kind}: {value!r} in {text!r}")
            else:
                s["found"] += 1
                used.add(hit)
        for i, (b, e, k) in enumerate(detections):
            stats.setdefault(k, Counter())["detected"] += 1
            if i not in used and not any(
                lbl["type"] == k and b <= text.find(str(lbl["value"])) < e for lbl in item.get("pii") or []
            ):
                stats[k]["false_positive"] += 1
    report = {}
    for kind, s in sorted(stats.items()):
        report[kind] = {
            "labelled": s["labelled"],
            "recall": round(s["found"] / s["labelled"], 3) if s["labelled"] else None,
            "precision": round(1 - s["false_positive"] / s["detected"], 3) if s["detected"] else None,
            "false_positives": s["false_positive"],
        }
    report["_missed"] = missed  # type: ignore[assignment]
    return report
