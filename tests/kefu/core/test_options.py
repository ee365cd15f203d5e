"""Option classes: typos and out-of-range values are refused when the object is built."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from kefu.core.options import Options


class ShopError(Exception):
    pass


@dataclasses.dataclass
class ShopOptions(Options):
    threshold: float = 0.5
    name: str = "kefu"

    error: ClassVar[type] = ShopError
    what: ClassVar[str] = "shop"

    def validate(self) -> None:
        self.require(0.0 < self.threshold <= 1.0, "threshold must be in (0, 1]")


def test_unknown_keys_are_named():
    with pytest.raises(ShopError, match=r"Unknown shop option\(s\): treshold. Known: name, threshold"):
        ShopOptions.from_dict({"treshold": 0.3})


def test_invalid_values_cannot_exist_not_even_by_replace():
    with pytest.raises(ShopError, match="threshold"):
        ShopOptions(threshold=2.0)
    with pytest.raises(ShopError, match="threshold"):
        dataclasses.replace(ShopOptions(), threshold=0.0)
    assert ShopOptions.from_dict(None) == ShopOptions()
    assert ShopOptions.from_dict({"threshold": 0.9}).to_dict() == {"threshold": 0.9, "name": "kefu"}


def test_the_libraries_use_the_one_base():
    from finetune import TrainConfig
    from retrieval import AdaptConfig, IndexConfig, KBConfig

    assert all(issubclass(cls, Options) for cls in (TrainConfig, IndexConfig, AdaptConfig, KBConfig))
