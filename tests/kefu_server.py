"""`kefu run` (what `make run` starts) as a subprocess, on free loopback ports, for live tests.

It runs in a scratch working copy (the Rasa project files copied from the repo, data/ linked),
so its tracker store (`var/tracker.db`), orders database and logs never touch
the repo's `var/`. `stop()` is a Ctrl-C (SIGTERM); `start()` again reuses the
same ports and stores, like restarting the server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from tests.live_bot import free_port

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("config.yml", "domain.yml", "credentials.yml", "endpoints.yml")


class KefuRun:
    def __init__(self, model: Path, workdir: Path):
        self.model = Path(model).resolve()
        self.workdir = workdir
        self.port, self.actions_port, self.web_port, self.desk_port = free_port(), free_port(), free_port(), free_port()
        self.rasa_url = f"http://127.0.0.1:{self.port}"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.tracker_db = workdir / "var" / "tracker.db"
        self.log_path = workdir / "kefu-run.log"
        self.process: Optional[subprocess.Popen] = None
        for name in PROJECT_FILES:
            shutil.copy(ROOT / name, workdir / name)
        (workdir / "data").symlink_to(ROOT / "data", target_is_directory=True)  # read by endpoints.yml's NLG

    def start(self, timeout_s: float = 300) -> "KefuRun":
        # PYTHONPATH: this checkout's code, whatever editable install the shared environment points at.
        env = dict(os.environ, HF_HUB_OFFLINE="1", KEFU_ORDERS_DB=str(self.workdir / "orders.db"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        kefu = str(Path(sys.executable).with_name("kefu"))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [kefu, "run", "--model", str(self.model), "--port", str(self.port),
                 "--actions-port", str(self.actions_port), "--web-port", str(self.web_port), "--desk-port", str(self.desk_port)],
                cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        # The chat page comes up last, once Rasa and the action server answer.
        while not self._ok(f"{self.web_url}/health"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kefu run did not start; log:\n{self.log()[-4000:]}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        """Like Ctrl-C: kefu run stops its Rasa and action servers and exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @staticmethod
    def _ok(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
