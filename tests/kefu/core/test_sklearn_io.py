"""skops.io imported through `sklearn_io.skops_io`: the same trusted types as skops' own import, and models load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# A fresh interpreter with what a Rasa process has loaded before kefu's components (torch, transformers, scipy), then
# skops through kefu: its trusted ufunc names against the names pickle's own lookup gives in the same process.
CHILD = """
import json, pickle, sys
import numpy as np, scipy.special, torch, transformers  # noqa: F401
from sklearn.feature_extraction.text import TfidfVectorizer
from kefu.core import sklearn_io
sio = sklearn_io.skops_io()
from skops.io import _trusted_types, _utils

def expected(module):
    prefix = module.__name__.rpartition(".")[0]
    names = {f"{pickle.whichmodule(f, f.__name__)}.{f.__name__}" for f in (getattr(module, a) for a in dir(module))
             if isinstance(f, np.ufunc)}
    return sorted(n for n in names if n.startswith(prefix))

vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).fit(["where is my parcel", "refund please"])
path = sys.argv[1]
sklearn_io.save(path, vectorizer)
loaded = sklearn_io.load(path)
print(json.dumps({
    "lookup": _utils.whichmodule.__qualname__,
    "scipy": [_trusted_types.SCIPY_UFUNC_TYPE_NAMES, expected(scipy.special)],
    "numpy": [_trusted_types.NUMPY_UFUNC_TYPE_NAMES, expected(np)],
    "same_features": (loaded.transform(["my parcel"]) != vectorizer.transform(["my parcel"])).nnz == 0,
}))
"""


def test_skops_trusts_the_same_ufuncs_as_its_own_import_and_loads_what_it_saved(tmp_path):
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "vectorizer.skops")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["lookup"] == "_which_module"  # kefu's lookup was the one skops used
    for view in ("scipy", "numpy"):
        trusted, expected = found[view]
        assert trusted == expected and len(trusted) > 20, (view, set(trusted) ^ set(expected))
    assert found["same_features"]
