"""`kefu run`: train if needed, then serve the bot and the web chat (the orchestrator is kefu/run.py)."""

from __future__ import annotations

from pathlib import Path

from kefu import run as orchestrator


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="train if needed, then serve the bot and the web chat")
    p.add_argument("--host", default="127.0.0.1", help="interface for the Rasa server and the chat page")
    p.add_argument("--port", type=int, default=5005, help="Rasa server port")
    p.add_argument("--actions-port", type=int, default=5055,
                   help="action server port (a local action_endpoint in endpoints.yml is pointed at it)")
    p.add_argument("--web-port", type=int, default=8080, help="chat page port")
    p.add_argument("--model", help="model archive (default: newest in models/, trained if there is none)")
    p.add_argument("--desk-port", type=int, default=8090, help="agent desk port on loopback (0: no desk)")
    p.add_argument("--workers", type=int, default=None,
                   help="Rasa server processes on the one port, each with its own model "
                        "(default: KEFU_WORKERS, else 1; more than 1 needs endpoints.yml's lock_store)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    return orchestrator.run_bot(host=args.host, port=args.port, actions_port=args.actions_port,
                                web_port=args.web_port, model=Path(args.model) if args.model else None,
                                desk_port=args.desk_port, workers=args.workers)
