"""`kefu desk`: the agent desk (desk/): serve it, and manage its accounts."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from desk.accounts import ROLES, Accounts
from desk.config import DeskConfig
from kefu.core.errors import KefuError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("desk", help="the agent desk: serve it, manage agents and leads")
    p.add_argument("--config", help="desk configuration (default: KEFU_DESK_CONFIG or desk.yml)")
    sub = p.add_subparsers(dest="desk_command", required=True)

    run = sub.add_parser("run", help="serve the desk (loopback by default)")
    run.add_argument("--host", help="interface (default: desk.yml server.host)")
    run.add_argument("--port", type=int, help="port (default: desk.yml server.port, 8090)")
    run.add_argument("--rasa-url", help="Rasa server with --enable-api (default: desk.yml rasa.url)")
    run.set_defaults(func=_run)

    add = sub.add_parser("adduser", help="create an agent or lead account (password from KEFU_DESK_PASSWORD or a prompt)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, default="agent")
    add.add_argument("--name", help="display name")
    add.add_argument("--replace", action="store_true", help="reset an existing account's password and role")
    add.set_defaults(func=_adduser)

    users = sub.add_parser("users", help="list accounts")
    users.set_defaults(func=_users)

    disable = sub.add_parser("disable", help="disable an account (signs it out at its next request)")
    disable.add_argument("username")
    disable.set_defaults(func=_disable)


def _config(args) -> DeskConfig:
    return DeskConfig.load(args.config)


def _run(args) -> int:
    config = DeskConfig.load(args.config, host=args.host, port=args.port,
                             rasa_url=args.rasa_url.rstrip("/") if args.rasa_url else None)
    # Light start-up: the web server (aiohttp, socket.io and Slack clients) only when serving.
    from desk import server
    server.run(config)
    return 0


def _accounts(args) -> Accounts:
    config = _config(args)
    return Accounts(config.path(config.db))


def _adduser(args) -> int:
    password = os.environ.get("KEFU_DESK_PASSWORD")
    if not password:
        password = getpass.getpass(f"password for {args.username}: ")
        if password != getpass.getpass("again: "):
            raise KefuError("the passwords differ")
    user = _accounts(args).add(args.username, password, args.role, args.name, replace=args.replace)
    print(f"{user.role} {user.username} added to {Path(_config(args).path(_config(args).db))}")
    return 0


def _users(args) -> int:
    for user in _accounts(args).list():
        print(f"{user.username}\t{user.role}\t{'active' if user.active else 'disabled'}\t{user.display_name}")
    return 0


def _disable(args) -> int:
    if not _accounts(args).set_active(args.username, False):
        raise KefuError(f"no user {args.username}")
    print(f"{args.username} disabled")
    return 0
