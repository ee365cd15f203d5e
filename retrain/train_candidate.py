"""Training the challenger: a normal `rasa train` on the project data plus what was learned.

Continued mode (the default, also when intents were added or removed: the
classifier regrows its head, finetune/head_growth.py): the generated config gives the
classifier `init_from` = the champion's intent model (extracted from its
archive) and the `training.continued_overrides` schedule. Rasa's graph cache
lives in `training.cache_dir` between nights, so parts whose inputs did not
change (e.g. the dialogue policies when only NLU data grew) are reused.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from finetune import INTENT_MANIFEST, IntentModel, read_manifest
from finetune.data import has_split_record
from kefu.core.archives import rasa_executable
from kefu.core.text import log_tail
from retrain.config import RetrainConfig, RetrainError

CLASSIFIER = "TransformerIntentClassifier"
RETRIEVER = "FaissAnswerRetriever"
FAULT_ENV = "KEFU_RETRAIN_FAULT"  # test-only fault injection, see pipeline.py


def extract_intent_model(archive: Path, into: Path) -> Optional[Path]:
    """Unpacks a Rasa model archive and returns its kefu intent model directory (None if it has none)."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if CLASSIFIER in m.name and ".." not in m.name]
            tar.extractall(into, members=members)
    except (tarfile.TarError, OSError) as exc:
        raise RetrainError(f"cannot read model archive {archive}: {exc}") from exc
    manifests = sorted(into.rglob(INTENT_MANIFEST))
    return manifests[0].parent if manifests else None


def load_intent_model(archive: Path) -> Optional[IntentModel]:
    """The archive's kefu intent classifier loaded to serve (None if it has none); its unpacked files are gone on return."""
    with tempfile.TemporaryDirectory(prefix="kefu-intent-model-") as work:
        directory = extract_intent_model(Path(archive), Path(work))
        return IntentModel.load(directory) if directory is not None else None


def _component(name: str) -> Optional[str]:
    """The component folder an archive member belongs to ('components/<node>/...' -> '<node>')."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return parts[1] if len(parts) >= 2 and parts[0] == "components" else None


def with_champion_classifier(challenger: Path, champion: Path, out: Path) -> Tuple[Optional[Path], str]:
    """The challenger's archive with the champion's intent classifier in place of its own: what a night ships when
    only its intent model failed the gate (the knowledge base, dialogue policies and domain stay the challenger's).
    (None, why) when the two archives' classifiers do not line up (another pipeline)."""
    try:
        with tarfile.open(champion, "r:gz") as old, tarfile.open(challenger, "r:gz") as new:
            old_members, new_members = old.getmembers(), new.getmembers()
            theirs = {c for m in old_members if (c := _component(m.name)) and CLASSIFIER in c}
            ours = {c for m in new_members if (c := _component(m.name)) and CLASSIFIER in c}
            if len(ours) != 1 or theirs != ours:
                return None, (f"the classifiers do not line up (champion {sorted(theirs) or 'none'}, "
                              f"challenger {sorted(ours) or 'none'})")
            partial = out.with_name(out.name + ".partial")
            with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
                for member in new_members:
                    if _component(member.name) not in ours and ".." not in member.name:
                        tar.addfile(member, new.extractfile(member) if member.isfile() else None)
                for member in old_members:
                    if _component(member.name) in ours and ".." not in member.name:
                        tar.addfile(member, old.extractfile(member) if member.isfile() else None)
    except (tarfile.TarError, OSError) as exc:
        raise RetrainError(f"cannot put the champion's classifier into the challenger's archive: {exc}") from exc
    os.replace(partial, out)
    return out, f"the challenger's archive with the champion's {next(iter(ours))}"


def write_nlu(path: Path, examples: Sequence[Tuple[str, str]]) -> Path:
    """Rasa NLU YAML, written with Rasa's own writer."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    messages = [Message(data={"text": " ".join(text.split()), "intent": intent}) for text, intent in examples]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RasaYAMLWriter().dumps(TrainingData(training_examples=messages)) if messages else 'version: "3.1"\nnlu: []\n')
    return path


def generate_config(config: RetrainConfig, out: Path, init_from: Optional[Path], qa_files: List[Path]) -> Path:
    source = config.path(config.config)
    values = yaml.safe_load(source.read_text())
    found = False
    for component in values.get("pipeline") or []:
        name = str(component.get("name", ""))
        if name.endswith(CLASSIFIER):
            found = True
            component.update(config.training.classifier_overrides)
            if init_from is not None:
                component.update(config.training.continued_overrides)
                component["init_from"] = str(init_from)
        elif name.endswith(RETRIEVER) and qa_files:
            base = component.get("qa_files", ["data/qa"])
            component["qa_files"] = [str(config.path(p)) for p in base] + [str(p) for p in qa_files]
    if not found:
        raise RetrainError(f"{source} has no {CLASSIFIER} in its pipeline: the retrain trains that classifier")
    out.write_text(yaml.safe_dump(values, sort_keys=False))
    return out


def retriever_options(config: RetrainConfig) -> Optional[Dict[str, Any]]:
    """The knowledge-base component's options in the Rasa config (None: the pipeline has no knowledge base)."""
    values = yaml.safe_load(config.path(config.config).read_text()) or {}
    return next((dict(c) for c in values.get("pipeline") or [] if str(c.get("name", "")).endswith(RETRIEVER)), None)


def has_retriever(config: RetrainConfig) -> bool:
    return retriever_options(config) is not None


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the retrain process dies (a crash must not leave training running)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def rasa_train(config: RetrainConfig, run_dir: Path, generated_config: Path, extra_data: List[Path]) -> Tuple[Path, float]:
    out = run_dir / "models"
    log = run_dir / "train.log"
    rasa = rasa_executable()
    command = [rasa, "train", "--config", str(generated_config), "--domain", str(config.path(config.domain)),
               "--data", *[str(config.path(d)) for d in config.data], *[str(p) for p in extra_data],
               "--out", str(out), "--fixed-model-name", "candidate"]
    env = dict(os.environ, RASA_CACHE_DIRECTORY=str(config.path(config.training.cache_dir)), HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    with open(log, "ab") as handle:
        process = subprocess.Popen(command, cwd=config.project, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   preexec_fn=_die_with_parent)
        if os.environ.get(FAULT_ENV) == "crash_during_training":
            time.sleep(5)
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            code = process.wait(timeout=config.training.timeout_minutes * 60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RetrainError(f"`rasa train` took longer than {config.training.timeout_minutes} min; see {log}") from None
    archive = out / "candidate.tar.gz"
    if code != 0 or not archive.exists():
        tail = log_tail(log)
        raise RetrainError(f"`rasa train` failed (exit {code}); its log is kept in the run's reports folder. Last lines:\n{tail}")
    return archive, time.perf_counter() - started


def training_mode(config: RetrainConfig, champion_model_dir: Optional[Path], labels: Sequence[str]) -> Tuple[str, str]:
    """('continued' | 'from_base', why)."""
    if not config.training.continue_when_labels_unchanged:
        return "from_base", "continued training is switched off"
    if champion_model_dir is None:
        return "from_base", "the champion has no kefu intent model"
    manifest = read_manifest(champion_model_dir)
    if not has_split_record(manifest):
        return "from_base", ("the champion's classifier has no record of its validation split "
                             "(continuing would validate on what it trained on)")
    champion_labels = manifest.get("labels") or []
    if sorted(champion_labels) != sorted(labels):
        added, removed = sorted(set(labels) - set(champion_labels)), sorted(set(champion_labels) - set(labels))
        change = f"label set changed (added {added or 'none'}, removed {removed or 'none'})"
        if not config.training.continue_when_labels_change:
            return "from_base", change
        return "continued", f"{change}; the champion's head regrown"
    return "continued", "label set unchanged"


def nlu_files(paths: Sequence[Path]) -> List[Path]:
    """The NLU files among Rasa data files and folders (stories and rules left out), as `rasa train` sorts them."""
    from rasa.shared.data import is_nlu_file

    files = []
    for path in paths:
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [p for p in candidates if p.suffix in (".yml", ".yaml", ".json", ".md") and is_nlu_file(str(p))]
    if not files:
        raise RetrainError(f"no NLU training data in {', '.join(map(str, paths))}")
    return files


def describe(values: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
