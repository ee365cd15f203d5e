"""The `kefu` command starts light: its help needs no torch, transformers or Rasa (a user would notice a slow CLI)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "transformers", "rasa", "tensorflow", "sentence_transformers", "faiss", "scrubadub")


def _python(code_or_args, timeout=120):
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_kefu_help_exits_0_and_lists_every_command():
    result = _python(["-m", "kefu", "--help"])
    assert result.returncode == 0, result.stderr
    for command in ("nlu", "kb", "run", "retrain"):
        assert command in result.stdout


@pytest.mark.parametrize("argv", [[], ["retrain", "--help"], ["run", "--help"], ["nlu", "train", "--help"]])
def test_building_the_parser_imports_no_heavy_library(argv):
    code = (
        "import json, sys\n"
        "from kefu.cli import build_parser\n"
        f"try:\n    build_parser().parse_args({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [], f"kefu {' '.join(argv)} imported these"
