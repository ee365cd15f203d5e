"""The action server (rasa-sdk's executor over `bot.actions`) bound to one interface, loopback by default.

`rasa run actions` (rasa-sdk 3.6) listens on every interface and has no
`--host` option; this serves the same Sanic app (`rasa_sdk.endpoint.create_app`:
POST /webhook, GET /health, GET /actions) on `--host` so it is not reachable
from outside the machine. Usage: `python -m bot.action_server --port 5055 [--host 127.0.0.1]`.
"""

from __future__ import annotations

import argparse
import logging
from typing import List, Optional

from rasa_sdk.endpoint import create_app


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", default="bot.actions", help="Python package of the actions")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(args.actions, cors_origins=None)
    app.run(args.host, args.port, workers=args.workers, access_log=False)


if __name__ == "__main__":
    main()
