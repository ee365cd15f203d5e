"""One learning round, end to end through the running bot and the agent desk: does the loop close?

    .venv/bin/python bench/learning_round.py [--customers 300] [--withhold-answers 8] [--label 50] [--wrong-round]
    .venv/bin/python bench/learning_round.py --prepare-only     # the scratch project and what was withheld

In a scratch copy of the project:
1. Withholds knowledge: `--withhold-answers` knowledge-base answers (every question
   variant of them) and `--holdout` (25%) of each intent's NLU examples; trains
   the champion on the rest (`rasa train`).
2. Day 1: simulated customers (held-back NLU examples, bench paraphrases, the
   first question variant of each withheld answer) talk to the bot over REST.
   When the bot cannot help (unsure, no answer, fallback) the customer asks for a
   person; a simulated agent signs in to the desk, claims the conversation from
   the queue, answers with the right text through the desk API and closes it.
   A simulated lead accepts the agents' answers as knowledge-base entries.
3. `kefu retrain` (night 1) fills the review queue; the lead labels its top
   `--label` rows with the true intents through the desk API; `kefu retrain` again.
4. Day 2: new customers (the other question variants, other held-back examples)
   talk to the new champion.
With `--wrong-round`, a second round where the lead labels with wrong intents and
accepts wrong answers: the gate should refuse the challenger (champion kept).

Prints, day 1 vs day 2: share of conversations resolved by the bot without a
person, knowledge-base answers given and their precision, handoff rate,
held-out intent accuracy (the retrain reports' gate metrics). Holds the CPU for
a long time (four `rasa train` runs and their `rasa test` evaluations).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.retrain_nightly import POOL  # noqa: E402
from desk.accounts import Accounts  # noqa: E402
from desk.config import DeskConfig  # noqa: E402
from desk.server import start as start_desk  # noqa: E402
from retrain.redact import redact  # noqa: E402
from tests.live_bot import LiveBot  # noqa: E402

PASSWORD = "bench password 123"
NEEDS_PERSON = ("rephrase", "not sure", "couldn't find", "connect you", "can't help with that")


def prepare(project: Path, withhold_answers: int, holdout: float, rng: random.Random) -> Dict:
    """Copies the project and withholds knowledge; returns what was withheld (the day-1/day-2 material)."""
    for name in ("config.yml", "domain.yml", "credentials.yml", "data", "tests"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, project / name)
    # Knowledge base: whole answers out (all their question variants).
    qa_path = project / "data/qa/store_faq.csv"
    rows = list(csv.DictReader(open(qa_path, newline="", encoding="utf-8")))
    groups: Dict[str, List[dict]] = defaultdict(list)
    for row in rows:
        groups[re.sub(r"-[a-z]$", "", row["id"])].append(row)
    withheld = rng.sample(sorted(g for g, v in groups.items() if len(v) >= 2), withhold_answers)
    with open(qa_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if re.sub(r"-[a-z]$", "", r["id"]) not in withheld)
    answers = {g: groups[g][0]["answer"] for g in withheld}
    questions = {g: [r["question"] for r in groups[g]] for g in withheld}
    # NLU: a share of each English intent's examples held back.
    held: Dict[str, List[str]] = defaultdict(list)
    for path in sorted((project / "data/nlu").glob("*.yml")):
        if path.name == "zh.yml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for block in data.get("nlu") or []:
            if "intent" not in block or "examples" not in block:
                continue
            examples = [line[2:] for line in block["examples"].splitlines() if line.startswith("- ")]
            rng.shuffle(examples)
            cut = int(len(examples) * holdout) if len(examples) >= 8 else 0
            held[block["intent"]] += examples[:cut]
            block["examples"] = "".join(f"- {e}\n" for e in examples[cut:])
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return {"answers": answers, "questions": questions, "held_examples": dict(held)}


def train(project: Path, out: Path) -> Path:
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("rasa")), "train", "--out", str(out.parent),
                    "--fixed-model-name", out.name.replace(".tar.gz", "")], cwd=project, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"  champion trained in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def customers(material: Dict, day: int, n: int, rng: random.Random) -> List[Tuple[str, str, str]]:
    """(kind, text, truth): truth is an intent name, or a withheld answer's group id."""
    pool: List[Tuple[str, str, str]] = []
    for group, variants in material["questions"].items():
        picks = variants[:1] if day == 1 else variants[1:]
        pool += [("kb", q, group) for q in picks]
    for intent, examples in material["held_examples"].items():
        half = examples[: len(examples) // 2] if day == 1 else examples[len(examples) // 2:]
        pool += [("intent", e, intent) for e in half]
    for intent, texts in POOL.items():
        pool += [("intent", t.format(o="104233"), intent) for t in (texts[::2] if day == 1 else texts[1::2])]
    rng.shuffle(pool)
    return (pool * (n // max(1, len(pool)) + 1))[:n]


class DeskAgent:
    """A simulated agent (or lead) using the desk's HTTP API like the page does."""

    def __init__(self, url: str, username: str):
        self.url, self.username = url, username
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def sign_in(self) -> None:
        page = await (await self.session.get(self.url + "/login")).text()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        await self.session.post(self.url + "/login", data={"username": self.username, "password": PASSWORD,
                                                           "csrf_token": csrf})
        page = await (await self.session.get(self.url + "/")).text()
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    async def call(self, method: str, path: str, body=None):
        async with self.session.request(method, self.url + path, json=body,
                                        headers={"X-CSRF-Token": self.csrf}) as response:
            return response.status, await response.json()

    async def answer(self, conversation_id: str, text: str, timeout_s: float = 10) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _, queue = await self.call("GET", "/api/queue")
            mine = [i for i in queue["items"] if i["conversation_id"] == conversation_id and i["status"] == "waiting"]
            if mine:
                hid = mine[0]["id"]
                await self.call("POST", f"/api/handoffs/{hid}/claim")
                status, _ = await self.call("POST", f"/api/handoffs/{hid}/reply", {"text": text})
                await self.call("POST", f"/api/handoffs/{hid}/close", {})
                return status == 200
            await asyncio.sleep(0.3)
        return False


def run_day(bot: LiveBot, desk_url: str, material: Dict, day: int, n: int, wrong: bool, rng: random.Random) -> Dict:
    kb_answers = {}
    for row in csv.DictReader(open(ROOT / "data/qa/store_faq.csv", newline="", encoding="utf-8")):
        kb_answers[row["answer"]] = re.sub(r"-[a-z]$", "", row["id"])
    intent_texts = {}
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for name, variants in (domain.get("responses") or {}).items():
        for v in variants:
            intent_texts[v.get("text", "")[:40]] = name
    stats = defaultdict(int)

    async def go():
        agent = DeskAgent(desk_url, "agent1")
        await agent.sign_in()
        for i, (kind, text, truth) in enumerate(customers(material, day, n, rng)):
            sender = f"day{day}-{i}"
            replies = " ".join(m.get("text") or "" for m in bot.say(sender, text))
            stats["conversations"] += 1
            given = next((g for a, g in kb_answers.items() if a[:60] in replies), None)
            if given is not None:
                stats["kb_answers"] += 1
                stats["kb_correct"] += int(kind == "kb" and given == truth)
            if any(p in replies.lower() for p in NEEDS_PERSON) or not replies.strip():
                bot.say(sender, "/human_handoff")
                stats["handoffs"] += 1
                answer = material["answers"].get(truth) if kind == "kb" else None
                if wrong and answer:
                    answer = rng.choice(list(material["answers"].values()))
                await agent.answer(sender, answer or f"Let me help you with that myself ({truth.replace('_', ' ')}).")
            else:
                stats["resolved_by_bot"] += 1
        await agent.session.close()

    asyncio.run(go())
    n = max(1, stats["conversations"])
    return {"resolution_rate": round(stats["resolved_by_bot"] / n, 3), "handoff_rate": round(stats["handoffs"] / n, 3),
            "kb_answers": stats["kb_answers"],
            "kb_precision": round(stats["kb_correct"] / stats["kb_answers"], 3) if stats["kb_answers"] else None,
            **stats}


def lead_round(desk_url: str, project: Path, truth: Dict[str, str], label: int, wrong: bool,
               rng: random.Random) -> Dict:
    async def go():
        lead = DeskAgent(desk_url, "lead1")
        await lead.sign_in()
        accepted = 0
        _, proposals = await lead.call("GET", "/api/proposals")
        for p in proposals["proposals"]:
            status, _ = await lead.call("POST", f"/api/proposals/{p['id']}/accept", {})
            accepted += status == 200
        _, review = await lead.call("GET", "/api/review")
        by_redacted = {redact(t)[0]: i for t, i in truth.items()}
        intents = review["intents"]
        labelled = 0
        for row in review["rows"]:
            if labelled >= label or row["kind"] != "message" or row["label"] or row["text"] not in by_redacted:
                continue
            intent = by_redacted[row["text"]] if not wrong else rng.choice(intents)
            status, _ = await lead.call("POST", f"/api/review/{row['index']}/label", {"label": intent})
            labelled += status == 200
        await lead.session.close()
        return {"kb_entries_accepted": accepted, "labelled": labelled}

    return asyncio.run(go())


def retrain(project: Path) -> Dict:
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).with_name("kefu")), "retrain", "--config",
                             str(project / "retrain.yml")], cwd=project, capture_output=True, text=True)
    print(result.stdout[-1500:], result.stderr[-1500:] if result.returncode else "", flush=True)
    report = json.loads((project / "var/retrain/reports/latest.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


class DeskThread:
    def __init__(self, config: DeskConfig):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.runner = asyncio.run_coroutine_threadsafe(start_desk(config, port=0), self.loop).result(30)
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--withhold-answers", type=int, default=8)
    parser.add_argument("--holdout", type=float, default=0.25)
    parser.add_argument("--label", type=int, default=50)
    parser.add_argument("--wrong-round", action="store_true")
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    rng = random.Random(12)
    work = Path(tempfile.mkdtemp(prefix="kefu-learning-round-"))
    project = work / "project"
    project.mkdir()
    material = prepare(project, args.withhold_answers, args.holdout, rng)
    print(f"withheld {len(material['answers'])} KB answers and "
          f"{sum(map(len, material['held_examples'].values()))} NLU examples; scratch project {project}")
    if args.prepare_only:
        return 0
    (project / "models").mkdir()
    model = train(project, project / "models" / "kefu.tar.gz")
    desk_yml = work / "desk.yml"
    desk_yml.write_text("hours: {always: true}\n")
    os.environ["KEFU_DESK_CONFIG"] = str(desk_yml)
    bot = LiveBot(model, work).start()
    accounts = Accounts(work / "desk.db")
    accounts.add("agent1", PASSWORD, "agent")
    accounts.add("lead1", PASSWORD, "lead")
    config = DeskConfig.load(desk_yml, root=project, rasa_url=bot.url, db=str(work / "desk.db"),
                             orders_db=str(bot.orders_db), secret_file=str(work / "desk-secret"))
    desk = DeskThread(config)
    results = {}
    try:
        (project / "endpoints.yml").write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{bot.actions_port}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{bot.tracker_db}"\n')
        (project / "retrain.yml").write_text(f"server: {{url: {bot.url}}}\n")
        truth = {t: i for i, ex in material["held_examples"].items() for t in ex}
        truth.update({t.format(o="104233"): i for i, texts in POOL.items() for t in texts})
        results["day1"] = run_day(bot, desk.url, material, 1, args.customers, False, rng)
        results["night1"] = retrain(project)
        results["lead"] = lead_round(desk.url, project, truth, args.label, False, rng)
        results["night1b"] = retrain(project)
        results["day2"] = run_day(bot, desk.url, material, 2, args.customers, False, rng)
        if args.wrong_round:
            run_day(bot, desk.url, material, 2, args.customers // 2, True, rng)
            results["lead_wrong"] = lead_round(desk.url, project, truth, args.label, True, rng)
            results["night_wrong"] = retrain(project)
    finally:
        desk.stop()
        bot.stop()
    for day in ("day1", "day2"):
        print(day, json.dumps(results[day]))
    for night in ("night1", "night1b", "night_wrong"):
        if night in results:
            print(night, results[night].get("decision"), results[night].get("metrics", {}).get("comparison"))
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"results: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
