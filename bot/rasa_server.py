"""`rasa run` with the HTTP API token from the environment, so that `ps` never shows it.

`rasa run --auth-token TOKEN` puts the secret on the command line, where every
user of the machine reads it (`ps`, /proc/<pid>/cmdline). `kefu run` and
`kefu cluster up` start the Rasa server as `python -m bot.rasa_server <rasa run
arguments>` with KEFU_API_TOKEN in its environment; this hands the token to
Rasa's own command line parser inside the process (the process's command line
stays without it) and runs Rasa's `rasa run` as usual.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from kefu.core.secrets import ENV


def rasa_argv(args: List[str], environ=os.environ) -> List[str]:
    """The argv Rasa's parser sees: `rasa run <args> --auth-token=<token from the environment>`."""
    if any(a == "--auth-token" or a.startswith("--auth-token=") for a in args):
        raise SystemExit("error: do not pass --auth-token on the command line (ps shows it); set KEFU_API_TOKEN")
    token = environ.get(ENV, "").strip()
    if not token:
        raise SystemExit(f"error: {ENV} is not set: the Rasa HTTP API is never served without a token")
    # One argument: a token_urlsafe token starts with "-" one time in 64, which argparse takes for an option.
    return ["rasa", "run", *args, f"--auth-token={token}"]


def main(argv: Optional[List[str]] = None) -> None:
    sys.argv = rasa_argv(list(sys.argv[1:] if argv is None else argv))
    from rasa.__main__ import main as rasa_main  # local: the whole Rasa server, only in this process

    from bot import reuseport, speedups

    speedups.install()  # before Sanic forks its workers: every worker has it
    reuseport.install()  # with several workers, each accepts on its own socket
    rasa_main()


if __name__ == "__main__":
    main()
