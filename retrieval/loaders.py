"""Reading historical Q&A from CSV, JSONL and Rasa retrieval-intent data.

Every problem is reported as a `QADataError` naming the file (and the line
where there is one), because the person fixing it has a spreadsheet export
open, not a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from retrieval.errors import QADataError
from retrieval.qa import QAPair, parse_timestamp, stable_id

REQUIRED_COLUMNS = ("question", "answer")
OPTIONAL_COLUMNS = ("id", "source", "tags", "timestamp")
TABLE_SUFFIXES = {".csv", ".jsonl"}
RASA_SUFFIXES = {".yml", ".yaml"}
_TAG_SEPARATORS = re.compile(r"[;|]")


def load_qa(paths: Iterable[str | Path]) -> List[QAPair]:
    """Loads Q&A pairs from files or directories, in the order given.

    `.csv` and `.jsonl` files are read on their own; all `.yml`/`.yaml` files
    together are read as Rasa data, so that retrieval-intent examples in
    `data/nlu` find their responses in `domain.yml`.
    """
    paths = [Path(p) for p in paths]
    pairs: List[QAPair] = []
    rasa_files: List[Path] = []
    for file in _expand(paths):
        if file.suffix.lower() == ".csv":
            pairs.extend(load_csv(file))
        elif file.suffix.lower() == ".jsonl":
            pairs.extend(load_jsonl(file))
        else:
            rasa_files.append(file)
    if rasa_files:
        pairs.extend(load_rasa_retrieval(rasa_files))
    if not pairs:
        raise QADataError(f"No Q&A pairs found in {', '.join(map(str, paths))}")
    return pairs


def load_csv(path: Path) -> List[QAPair]:
    """A header row naming at least `question` and `answer`; optionally id, source, tags, timestamp."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        _check_header(header, path)
        pairs = []
        row_start = reader.line_num + 1
        for row in reader:
            where = f"{path}, line {row_start}"
            row_start = reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise QADataError(
                    f"{where}: expected {len(header)} fields ({', '.join(header)}), found {len(row)}; "
                    "put fields that contain commas in double quotes"
                )
            pairs.append(_make_pair(dict(zip(header, row)), where))
    except csv.Error as exc:
        raise QADataError(f"{path}, line {reader.line_num}: malformed CSV: {exc}") from exc
    return pairs


def load_jsonl(path: Path) -> List[QAPair]:
    """One JSON object per line with the same keys as the CSV columns; blank lines are skipped."""
    pairs = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            values = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QADataError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(values, dict):
            raise QADataError(f"{where}: expected a JSON object, found {type(values).__name__}")
        missing = [key for key in REQUIRED_COLUMNS if key not in values]
        if missing:
            raise QADataError(f"{where}: missing key(s) {', '.join(missing)}")
        pairs.append(_make_pair(values, where))
    return pairs


def load_rasa_retrieval(files: Sequence[Path], retrieval_intent: str = "faq") -> List[QAPair]:
    """Examples of `faq/<name>` intents paired with the `utter_faq/<name>` responses.

    Uses Rasa's own loader (imported here only) so every NLU syntax `rasa
    train` accepts works, entity annotations included. The id of each pair is
    the intent's response key, `faq/<name>`.
    """
    from rasa.shared.exceptions import RasaException
    from rasa.shared.nlu.training_data.loading import load_data

    examples = []
    responses: Dict[str, Any] = {}
    for file in files:
        try:
            data = load_data(str(file))
        except (RasaException, ValueError, OSError) as exc:
            raise QADataError(f"Cannot read Rasa data from {file}: {exc}") from exc
        for message in data.intent_examples:
            key = message.get("intent_response_key")
            if key and key.startswith(f"{retrieval_intent}/") and message.get("text"):
                examples.append((key, message.get("text"), file))
        responses.update(data.responses)

    pairs = []
    for key, text, file in examples:
        answer = _response_text(responses.get(f"utter_{key}"))
        if answer is None:
            raise QADataError(
                f"{file}: retrieval intent {key} has no text response utter_{key} in "
                f"{', '.join(map(str, files))}; pass the domain or responses file too"
            )
        pairs.append(QAPair(id=key, question=text.strip(), answer=answer, source=str(file)))
    return pairs


def _expand(paths: Sequence[Path]) -> List[Path]:
    files = []
    for path in paths:
        if not path.exists():
            raise QADataError(f"Q&A data not found: {path}")
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TABLE_SUFFIXES | RASA_SUFFIXES))
        elif path.suffix.lower() in TABLE_SUFFIXES | RASA_SUFFIXES:
            files.append(path)
        else:
            raise QADataError(f"{path}: unsupported Q&A file type {path.suffix!r} (use .csv, .jsonl or Rasa .yml)")
    return files


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise QADataError(
            f"{path}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from exc


def _response_text(variations: Any) -> str | None:
    """The first text variation of a response (the others are rephrasings of it)."""
    for variation in variations or []:
        text = variation.get("text") if isinstance(variation, dict) else None
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def _check_header(header: List[str], path: Path) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        found = ", ".join(h for h in header if h) or "nothing"
        raise QADataError(f"{path}, line 1: missing column(s) {', '.join(missing)} in the header row (found: {found})")
    duplicated = sorted({name for name in header if name and header.count(name) > 1})
    if duplicated:
        raise QADataError(f"{path}, line 1: column(s) named twice: {', '.join(duplicated)}")


def _make_pair(values: Dict[str, Any], where: str) -> QAPair:
    question = _text(values.get("question"), "question", where)
    answer = _text(values.get("answer"), "answer", where)
    if not question or not answer:
        raise QADataError(f"{where}: empty {'question' if not question else 'answer'}")
    timestamp = _text(values.get("timestamp"), "timestamp", where) or None
    if timestamp:
        try:
            parse_timestamp(timestamp)
        except ValueError:
            raise QADataError(f"{where}: timestamp {timestamp!r} is not ISO 8601 (e.g. 2024-05-01T09:30:00Z)") from None
    identifier = values.get("id")
    identifier = str(identifier).strip() if identifier is not None else ""
    return QAPair(
        id=identifier or stable_id(question, answer),
        question=question,
        answer=answer,
        source=_text(values.get("source"), "source", where) or None,
        tags=_tags(values.get("tags"), where),
        timestamp=timestamp,
    )


def _text(value: Any, key: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise QADataError(f"{where}: {key} must be text, found {type(value).__name__}")
    return value.strip()


def _tags(value: Any, where: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = _TAG_SEPARATORS.split(value)
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise QADataError(f"{where}: tags must be text separated by ';' or '|', or a list of strings")
    return [tag.strip() for tag in value if tag.strip()]


def load_intent_examples(paths: Sequence[str | Path]) -> List[Tuple[str, str]]:
    """(text, intent) of every intent example in Rasa NLU files (`kefu kb build --nlu`)."""
    from rasa.shared.exceptions import RasaException
    from rasa.shared.nlu.training_data.loading import load_data

    examples = []
    for file in _expand([Path(p) for p in paths]):
        if file.suffix not in (".yml", ".yaml", ".json", ".md"):
            continue
        try:
            data = load_data(str(file))
        except (RasaException, ValueError, OSError) as exc:
            raise QADataError(f"Cannot read Rasa NLU data from {file}: {exc}") from exc
        examples.extend((m.get("text"), m.get("intent")) for m in data.intent_examples if m.get("intent") and m.get("text"))
    return examples

