"""Lists project imports made inside functions; fails when there are more than the budget.

A project import inside a function hides a dependency from import-linter's
reader and is usually there to dodge a cycle. The only good reason is a light
start-up (the CLI parser must not import torch through a library); each one
left must say so in a comment on its line or the line above. Usage:
`python scripts/local_imports.py [--budget 15]` from the project root.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGES = ("kefu", "finetune", "retrieval", "bot", "retrain", "desk", "cluster")


def local_project_imports(root: Path):
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for function in ast.walk(tree):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(function):
                    names = []
                    if isinstance(node, ast.Import):
                        names = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        names = [node.module]
                    if any(name.split(".")[0] in PACKAGES for name in names):
                        yield path.relative_to(root), node.lineno, ", ".join(names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=15)
    args = parser.parse_args()
    found = sorted(set(local_project_imports(Path.cwd())))
    for path, line, names in found:
        print(f"  {path}:{line}  {names}")
    verdict = "within" if len(found) <= args.budget else "OVER"
    print(f"lint: {len(found)} project imports inside functions ({verdict} the budget of {args.budget})")
    return 0 if len(found) <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
