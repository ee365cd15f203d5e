"""Detached service processes with pid files: start, wait until they answer, stop (TERM, then KILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

from cluster.config import ClusterError
from kefu.core.text import read_log


def pid_file(state: Path, name: str) -> Path:
    return state / "run" / f"{name}.pid"


def spawn(state: Path, name: str, command: List[str], env: Optional[Dict[str, str]] = None,
          cwd: Optional[Path] = None) -> int:
    """Starts `command` in its own session (it outlives `kefu cluster up`), output to logs/<name>.log."""
    (state / "run").mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(parents=True, exist_ok=True)
    with open(state / "logs" / f"{name}.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=dict(os.environ, **(env or {})), cwd=cwd, start_new_session=True)
    pid_file(state, name).write_text(f"{process.pid}\n")
    return process.pid


def read_pid(state: Path, name: str) -> Optional[int]:
    try:
        return int(pid_file(state, name).read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as dead
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop(state: Path, name: str, grace_s: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Stops the process group of `name` (`sig`, then SIGKILL after `grace_s`); True if it was running."""
    pid = read_pid(state, name)
    pid_file(state, name).unlink(missing_ok=True)
    if not alive(pid):
        return False
    _signal_group(pid, sig)
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if alive(pid):
        _signal_group(pid, signal.SIGKILL)
    _reap(pid)
    return True


def running(state: Path) -> List[str]:
    return sorted(p.stem for p in (state / "run").glob("*.pid") if alive(read_pid(state, p.stem)))


def wait_http(url: str, timeout_s: float, name: str, pid: Optional[int] = None, log: Optional[Path] = None,
              ok=(200,)) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in ok:
                    return
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
        except (OSError, ValueError):
            pass
        if pid is not None and not alive(pid):
            raise ClusterError(f"{name} exited during start-up{_tail(log)}")
        if time.monotonic() > deadline:
            raise ClusterError(f"{name} not answering {url.split('?')[0]} after {timeout_s:.0f} s{_tail(log)}")
        time.sleep(0.3)


def _tail(log: Optional[Path]) -> str:
    if log is None or not log.exists():
        return ""
    return f"; last lines of {log}:\n" + "\n".join(read_log(log).splitlines()[-15:])


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def make_traversable(path: Path) -> None:
    """o+x on `path` and its parents: nginx workers and PostgreSQL run as other users than root."""
    for parent in (path, *path.parents):
        if parent == Path("/"):
            break
        mode = os.stat(parent).st_mode
        if mode & 0o001 == 0:
            os.chmod(parent, mode | 0o011)
