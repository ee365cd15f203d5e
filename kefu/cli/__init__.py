"""The `kefu` command: one entry point, each subcommand a thin call into a lower floor.

One module per command group (`nlu`, `kb`, `retrain`, `run`), each with an
`add_parser(subparsers)`. Start-up stays light: building the parser imports
no torch, transformers or Rasa; a command imports its heavy library when it runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from kefu import __version__
from kefu.cli import cluster, desk, kb, nlu, retrain, run
from kefu.core import runtime
from kefu.core.errors import KefuError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="kefu customer-service chatbot tools")
    parser.add_argument("--version", action="version", version=f"kefu {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for group in (nlu, kb, run, retrain, cluster, desk):
        group.add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # Offline / no-TensorFlow defaults, before any command imports transformers.
    runtime.configure()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KefuError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
