"""Scikit-learn objects on disk with skops, not pickles: loading never runs code from the file.

`load` accepts only the types the file was written with by kefu (the allow-list
of the caller); anything else is refused as corrupt or tampered.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path
from typing import Any, Iterable

from kefu.core import atomic
from kefu.core.errors import ModelLoadError

_MISSING = object()


def save(path: Path, obj: Any) -> Path:
    return atomic.write_bytes(path, skops_io().dumps(obj))


def load(path: Path, allowed_prefixes: Iterable[str] = ("sklearn.", "numpy.", "scipy.", "builtins.")) -> Any:
    sio = skops_io()
    path = Path(path)
    try:
        data = path.read_bytes()
        untrusted = sio.get_untrusted_types(data=data)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path} is missing") from exc
    except Exception as exc:  # a damaged zip raises many types
        raise ModelLoadError(f"{path} is corrupt: {exc}") from exc
    prefixes = tuple(allowed_prefixes)
    refused = [t for t in untrusted if not t.startswith(prefixes)]
    if refused:
        raise ModelLoadError(f"{path} holds unexpected types ({', '.join(sorted(refused))}); refusing to load it")
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise ModelLoadError(f"{path} is corrupt: {exc}") from exc


def skops_io():
    """`skops.io`, imported (the first time) with a faster lookup of the modules its trusted ufuncs live in.

    At import, skops names the numpy and scipy.special ufuncs it trusts by finding each one's module as pickle does:
    a getattr on every loaded module, each miss raising an AttributeError whose message formats the module's repr.
    In a Rasa process (TensorFlow, torch and transformers loaded: about 8,000 modules) that is 1.2 million misses and
    7.1 s of every server start, `rasa test` and retrain probe, against 1.5 s in a bare interpreter. skops 0.9 is the
    last release for Rasa 3.6's numpy 1.23, and later ones look modules up the same way. `_which_module` is the same
    lookup, in the same order, without the exceptions: the same names (tests/kefu/core/test_sklearn_io.py), and the
    import takes 2.7 s there (bench/model_load.py: a cold load 24.28 -> 19.50 s).
    """
    if "skops.io" not in sys.modules:
        finder = _FastModuleLookup()
        sys.meta_path.insert(0, finder)
        try:
            import skops.io  # noqa: F401
        finally:
            sys.meta_path.remove(finder)
    import skops.io as sio

    return sio


def _which_module(obj: Any, name: str) -> str:
    """skops' `whichmodule` (pickle's): `obj.__module__`, else the first loaded module where `name` leads to `obj`."""
    module_name = getattr(obj, "__module__", None)
    if module_name is not None:
        return module_name
    for module_name, module in sys.modules.copy().items():
        if module_name in ("__main__", "__mp_main__") or module is None:
            continue
        found = module
        for part in name.split("."):
            found = getattr(found, part, _MISSING)
            if found is _MISSING:
                break
        if found is obj:
            return module_name
    return "__main__"


class _FastModuleLookup(importlib.abc.MetaPathFinder):
    """Finds `skops.io._utils` as Python would and swaps its `whichmodule` for `_which_module` once it has run (before
    the rest of `skops.io`, which calls it at import)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "skops.io._utils":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return None  # not laid out as expected: the import goes on as usual
        run = loader.exec_module

        def exec_module(module):
            run(module)
            if callable(getattr(module, "whichmodule", None)):
                module.whichmodule = _which_module

        loader.exec_module = exec_module
        return spec
