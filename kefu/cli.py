"""The `kefu` command: one entry point, each subcommand a thin call into a library."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from kefu import __version__


def build_parser() -> argparse.ArgumentParser:
    from finetune import cli as nlu_cli
    from finetune.retrain import cli as retrain_cli
    from kefu import run as run_cli
    from retrieval import cli as retrieval_cli

    parser = argparse.ArgumentParser(prog="kefu", description="kefu customer-service chatbot tools")
    parser.add_argument("--version", action="version", version=f"kefu {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    nlu_cli.add_parser(subparsers)
    retrieval_cli.add_parser(subparsers)
    run_cli.add_parser(subparsers)
    retrain_cli.add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from kefu.errors import KefuError

    args = build_parser().parse_args(argv)
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
