"""The knowledge-base entries a night adds, each judged on its own evidence (the gate's `kb_new_entry_agreement`).

The fixed held-out paraphrases (retrain/kb_probe.py) rarely touch what a night
adds: a night where a lead accepted agents' answers filed under questions they
do not answer moved their precision by 0.014. So the gate also checks every
question-answer row the challenger's knowledge base has and the champion's has
not (both read from the archives' `knowledge_base/pairs.jsonl`, whatever the
source: answers accepted in the desk, edited Q&A files, handoff pairs):

    hold the row's question out of the challenger's knowledge base and search it
    there; the row *agrees* when the best answer is the row's own answer.

An accepted answer with several customers' wordings is then found by its other
wordings (and by its own text, `IndexConfig.index_answers`); a wrong one is
not: its question's nearest neighbours are the questions the knowledge base
already files under the answer it really needs (a conflict with the champion's
entries), or other topics. The search uses the retrieval library's index over
the challenger's Q&A rows, embedded with the champion's knowledge-base model
(which never saw the new rows; the challenger's adapted model did, and would
pull each row towards its own answer; the champion's rows keep the vectors
its index holds, so only the night's questions go through the model) and with
both answer heads off, the multilingual view's and the joint one
(retrieval/joint_head.py): they would
have learnt the held-out row too (with the joint head on, deliberately wrong
rows agreed 35 of 35). Runs in a child process
(`python -m retrain.kb_entries`), like the probe, so the retrain stays light.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kefu.core.text import normalize_text
from retrain.kb_probe import run_child
from retrieval import Embedder, IndexConfig, QAIndex, QAPair
from retrieval.index import question_vectors
from retrieval.qa import is_answer_text
from retrieval.ranking import group_by_answer
from retrieval.store import StoredIndex

KB_DIR = "knowledge_base"
PAIRS_FILE = "pairs.jsonl"
MANIFEST_FILE = "manifest.json"


def _key(pair: QAPair) -> Tuple[str, str]:
    return normalize_text(pair.question), normalize_text(pair.answer)


def _kb_members(tar: tarfile.TarFile) -> List[tarfile.TarInfo]:
    """The archive's knowledge-base directory (the retriever component's `knowledge_base/`)."""
    return [m for m in tar.getmembers() if f"/{KB_DIR}/" in f"/{m.name}" and ".." not in m.name]


def read_archive_pairs(archive: Path) -> Optional[List[QAPair]]:
    """The Q&A rows of a model archive's knowledge base (answer-text entries left out); None without one."""
    with tarfile.open(archive, "r:gz") as tar:
        found = [m for m in _kb_members(tar) if m.name.endswith(f"{KB_DIR}/{PAIRS_FILE}")]
        if not found:
            return None
        data = tar.extractfile(found[0]).read().decode("utf-8")
    pairs = [QAPair.from_dict(json.loads(line)) for line in data.splitlines() if line.strip()]
    return [p for p in pairs if not is_answer_text(p)]


def new_pairs(champion: Sequence[QAPair], challenger: Sequence[QAPair]) -> List[QAPair]:
    """Rows of the challenger's knowledge base the champion's does not have (question and answer normalised)."""
    known = {_key(p) for p in champion}
    found: Dict[Tuple[str, str], QAPair] = {}
    for pair in challenger:
        if _key(pair) not in known:
            found.setdefault(_key(pair), pair)
    return list(found.values())


def agreement(pairs: Sequence[QAPair], new: Sequence[QAPair], embedder: Optional[Embedder], config: Optional[IndexConfig] = None,
              top_k: int = 5, show_misses: int = 10, known_vectors: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, Any]:
    """Per new row: is its own answer among the `top_k` answers its question finds, held out of the index over `pairs`?

    `pairs`: the knowledge base as it will be served (the new rows included); `config`: its index options
    (the answer heads are switched off: they would have learnt the held-out rows); `known_vectors`: questions the
    champion's index already embedded with `embedder` (`retrieval.index.question_vectors`), not embedded again.
    Returns the rows, how many agree (and how many find their answer first), the share, and the misses.
    """
    if not new:
        return {"new_rows": 0, "agreeing": 0, "first": 0, "agreement": None, "top_k": top_k, "new_answers": 0, "misses": []}
    config = dataclasses.replace(config or IndexConfig(), multilingual_head=0.0, answer_head=0.0)
    index = QAIndex.build(list(pairs), config, embedder=embedder, progress=False, known_vectors=known_vectors)
    # Enough question hits that, the held-out one dropped, `top_k` answers remain ranked as the index ranks them.
    results = index.search([p.question for p in new], k=max(config.candidates, 4 * top_k))
    agreeing = first = 0
    misses = []
    for pair, result in zip(new, results):
        held_out = _key(pair)
        hits = [h for h in result.hits if is_answer_text(h.pair) or _key(h.pair) != held_out]
        answers = group_by_answer(hits, index.config.answer_bonus, 0.0 if result.second_view else index.config.answer_text_weight)
        rank = next((n for n, a in enumerate(answers, start=1) if normalize_text(a.answer) == held_out[1]), None)
        agreeing += rank is not None and rank <= top_k
        first += rank == 1
        if rank is None or rank > top_k:
            best = answers[0] if answers else None
            misses.append({"question": pair.question, "answer": pair.answer, "id": pair.id, "rank": rank,
                           "got": best.answer if best else None, "got_id": best.pair.id if best else None,
                           "got_question": best.pair.question if best else None, "score": round(best.score, 4) if best else None})
    return {"new_rows": len(new), "agreeing": agreeing, "first": first, "agreement": round(agreeing / len(new), 4), "top_k": top_k,
            "new_answers": len({normalize_text(p.answer) for p in new}), "misses": misses[:show_misses]}


def check_archives(champion: Path, challenger: Path, work: Path, top_k: int = 5) -> Dict[str, Any]:
    """`agreement` of the rows `challenger` adds to `champion`'s knowledge base ({} when the challenger has none)."""
    after = read_archive_pairs(challenger)
    if after is None:
        return {}
    before = read_archive_pairs(champion) or []
    new = new_pairs(before, after)
    if not new:
        return agreement(after, [], None, top_k=top_k)
    stored = _champion_index(champion, work)
    if stored is None:
        embedder, config = _challenger_base_model(challenger)
        return agreement(after, new, embedder, config, top_k=top_k) | {"embedder": embedder.name}
    # The champion's rows keep the vectors its index holds (same model): only the night's questions are embedded.
    return agreement(after, new, stored.embedder, stored.config, top_k=top_k,
                     known_vectors=question_vectors(stored)) | {"embedder": stored.embedder.name}


def _champion_index(archive: Path, work: Path) -> Optional[StoredIndex]:
    """The champion's stored knowledge base: its embedding model (adapted: bundled in the archive), index options and
    question vectors."""
    with tarfile.open(archive, "r:gz") as tar:
        members = _kb_members(tar)
        if not any(m.name.endswith(f"{KB_DIR}/{MANIFEST_FILE}") for m in members):
            return None
        tar.extractall(work, members=members)
    directory = next(p.parent for p in work.rglob(MANIFEST_FILE) if p.parent.name == KB_DIR)
    return QAIndex.read(directory)


def _challenger_base_model(archive: Path) -> Tuple[Embedder, IndexConfig]:
    """A champion without a knowledge base: the challenger's index options and their (unadapted) base model."""
    with tarfile.open(archive, "r:gz") as tar:
        found = [m for m in _kb_members(tar) if m.name.endswith(f"{KB_DIR}/{MANIFEST_FILE}")]
        manifest = json.loads(tar.extractfile(found[0]).read().decode("utf-8")) if found else {}
    config = IndexConfig.from_dict(manifest.get("config") or {})
    return Embedder.load(config.model, config.device), config


def measure(champion: Path, challenger: Path, out: Path, timeout_s: float, top_k: int = 5) -> Dict[str, Any]:
    """`check_archives` in a child process; its figures and the seconds."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run_child("retrain.kb_entries", ["--champion", str(champion), "--challenger", str(challenger), "--work", str(out / "champion-kb"),
                                     "--out", str(out / "entries.json"), "--top-k", str(top_k)],
              out / "kb_entries.log", timeout_s, f"the new knowledge-base entries check of {challenger.name}")
    found = json.loads((out / "entries.json").read_text(encoding="utf-8"))
    return found | {"seconds": round(time.perf_counter() - started, 1)} if found else {}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--champion", required=True)
    parser.add_argument("--challenger", required=True)
    parser.add_argument("--work", required=True, help="folder the champion's knowledge-base model is extracted to")
    parser.add_argument("--out", required=True, help="JSON: the figures")
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    found = check_archives(Path(args.champion), Path(args.challenger), work, args.top_k)
    Path(args.out).write_text(json.dumps(found, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
