"""Device choice, threads and seeding shared by training and inference."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def pick_device(preference: str = "auto") -> torch.device:
    """`auto` uses a GPU when one is present; KEFU_DEVICE overrides the config."""
    preference = os.environ.get("KEFU_DEVICE", preference)
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def use_all_cores() -> None:
    threads = int(os.environ.get("KEFU_TORCH_THREADS", os.cpu_count() or 1))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
