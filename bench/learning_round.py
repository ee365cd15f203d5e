"""One learning round, end to end through the running bot and the agent desk: does the loop close?

    .venv/bin/python bench/learning_round.py [--customers 300] [--withhold-answers 8] [--kb-share 0.25] [--label 50] [--wrong-round]
                                             [--budget-minutes N] [--kb-budget-minutes M] [--from-base]
    .venv/bin/python bench/learning_round.py --prepare-only     # the scratch project and what was withheld

`--budget-minutes N` writes `time_budget_minutes: N` for the intent classifier and
`--kb-budget-minutes M` (default: N, at most 5) for the knowledge base's embedding
adaptation into the scratch project's config.yml (the project's own: 12 and 5), so
every `rasa train` of the round (the champion, the nights' challengers) fits a smaller
machine; the output says which budgets were used. `--from-base` has the nights'
challengers train from the base model instead of continuing from the champion.

In a scratch copy of the project:
1. Withholds knowledge: `--withhold-answers` knowledge-base answers (every question
   variant of them) and `--holdout` (25%) of each intent's NLU examples; trains
   the champion on the rest (`rasa train`).
2. Day 1: simulated customers (held-back NLU examples, bench paraphrases, the
   first question variant of each withheld answer) talk to the bot over REST.
   When the bot cannot help (unsure, no answer, fallback, or a wrong answer: the
   customer knows what they asked) the customer asks for a person and asks again;
   a simulated agent signs in to the desk, claims the conversation from the queue,
   answers through the desk API (a withheld question: its right answer; anything
   else: a personal reply that is no knowledge-base material) and closes it.
3. `kefu retrain` (night 1) fills the review queue (and learns pseudo-labels); a
   simulated lead, through the desk API, accepts the agents' answers that are
   knowledge-base material (rejects the rest) and labels the top `--label` rows of
   the queue with the true intents; `kefu retrain` again (night 1b).
4. Day 2: new customers (the other question variants, other held-back examples)
   talk to the new champion.
With `--wrong-round`, a second round where agents give wrong answers, the lead
accepts them all and labels with wrong intents: the gate should refuse the
challenger (champion kept).

A conversation counts as resolved by the bot when the customer got the right
answer (a withheld question: its answer from the knowledge base; an intent
example: the right intent, or a knowledge-base answer while the classifier had
the right intent) and did not ask for a person. Where the bot had no answer but
offered "did you mean" buttons (bot/nlg.py), a customer asking about a withheld
answer picks the question whose entry holds it, as a customer recognises their
own question, and is resolved if the bot then gives that answer (counted apart
as well); customers of scripted intents pick none. Picks are not counted in the
knowledge base's answer precision, which judges the answers the bot chose.

Prints, day 1 vs day 2: share of conversations resolved by the bot without a
person, knowledge-base answers given and their precision (over answers to the
withheld questions, whose right answer is known; answers given to intent
examples are counted apart), handoff rate, held-out intent accuracy (the
retrain reports' gate metrics on tests/data/nlu.yml, and the live intent
accuracy on the day's customers). Holds the CPU for a long time (four
`rasa train` runs and their `rasa test` evaluations).
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
from typing import Dict, List, Optional, Tuple

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
NEEDS_PERSON = ("rephrase", "not sure", "couldn't find", "connect you", "can't help with that", "didn't quite get",
                "passing you to", "in the queue")
PERSONAL_REPLY = "Thanks for waiting, I have sorted this out for you personally ({topic}); anything else I can do?"


def group_of(entry_id: str) -> str:
    return re.sub(r"-[a-z]$", "", entry_id)


def plain(example: str) -> str:
    """What a customer types: the example without Rasa's entity markup ([104233](order_number), [x]{...})."""
    return re.sub(r"\[([^\]]*)\](\([^)]*\)|\{[^}]*\})", r"\1", example)


def set_budgets(project: Path, classifier_minutes: Optional[float], kb_minutes: Optional[float]) -> Dict[str, object]:
    """Writes the training budgets into the scratch project's config.yml; returns the budgets in force."""
    path = project / "config.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    used: Dict[str, object] = {}
    for component in config.get("pipeline") or []:
        name = str(component.get("name", ""))
        if name.endswith("TransformerIntentClassifier"):
            if classifier_minutes is not None:
                component["time_budget_minutes"] = classifier_minutes
            used["classifier_time_budget_minutes"] = component.get("time_budget_minutes", 12)
        elif name.endswith("FaissAnswerRetriever"):
            options = component.setdefault("adapt_options", {}) or {}
            component["adapt_options"] = options
            if kb_minutes is not None:
                options["time_budget_minutes"] = kb_minutes
            used["kb_adapt_time_budget_minutes"] = options.get("time_budget_minutes") if component.get("adapt", True) else "off"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return used


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
        groups[group_of(row["id"])].append(row)
    withheld = rng.sample(sorted(g for g, v in groups.items() if len(v) >= 2), withhold_answers)
    with open(qa_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if group_of(r["id"]) not in withheld)
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
            held[block["intent"]] += [plain(e) for e in examples[:cut]]
            block["examples"] = "".join(f"- {e}\n" for e in examples[cut:])
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return {"answers": answers, "questions": questions, "held_examples": dict(held)}


def train(project: Path, out: Path) -> Path:
    started = time.perf_counter()
    log = out.parent / "champion-train.log"
    with open(log, "wb") as handle:
        subprocess.run([str(Path(sys.executable).with_name("rasa")), "train", "--out", str(out.parent),
                        "--fixed-model-name", out.name.replace(".tar.gz", "")], cwd=project, check=True,
                       stdout=handle, stderr=subprocess.STDOUT, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    print(f"  champion trained in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def customers(material: Dict, day: int, n: int, kb_share: float, rng: random.Random) -> List[Tuple[str, str, str]]:
    """(kind, text, truth): truth is an intent name, or a withheld answer's group id. A `kb_share` of the
    customers ask about the withheld answers (day 1: each answer's first `day1_wordings` question variants,
    day 2: the others)."""
    kb: List[Tuple[str, str, str]] = []
    first = material.get("day1_wordings", 1)
    for group, variants in material["questions"].items():
        picks = variants[:first] if day == 1 else variants[first:]
        kb += [("kb", q, group) for q in picks]
    intents: List[Tuple[str, str, str]] = []
    for intent, examples in material["held_examples"].items():
        half = examples[: len(examples) // 2] if day == 1 else examples[len(examples) // 2:]
        intents += [("intent", e, intent) for e in half]
    for intent, texts in POOL.items():
        intents += [("intent", t.format(o="104233"), intent) for t in (texts[::2] if day == 1 else texts[1::2])]
    rng.shuffle(kb)
    rng.shuffle(intents)
    n_kb = round(n * kb_share) if kb else 0
    chosen = (kb * (n_kb // max(1, len(kb)) + 1))[:n_kb] + (intents * (n // max(1, len(intents)) + 1))[: n - n_kb]
    rng.shuffle(chosen)
    return chosen


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
        found = re.search(r'name="csrf-token" content="([^"]+)"', page)
        if found is None:
            raise RuntimeError(f"desk sign-in of {self.username} failed: {page[:300]}")
        self.csrf = found.group(1)

    async def call(self, method: str, path: str, body=None):
        async with self.session.request(method, self.url + path, json=body,
                                        headers={"X-CSRF-Token": self.csrf}) as response:
            try:
                data = await response.json()
            except (aiohttp.ContentTypeError, ValueError):
                data = {"error": (await response.text())[:300]}
            return response.status, data

    async def answer(self, conversation_id: str, text: str, timeout_s: float = 15) -> bool:
        """Claims the conversation from the live queue, replies, closes it; False if it never showed up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _, queue = await self.call("GET", "/api/queue")
            mine = [i for i in queue.get("items", []) if i["conversation_id"] == conversation_id and i["status"] == "waiting"]
            if mine:
                hid = mine[0]["id"]
                await self.call("POST", f"/api/handoffs/{hid}/claim")
                status, body = await self.call("POST", f"/api/handoffs/{hid}/reply", {"text": text})
                if status != 200:
                    print(f"  desk reply to {conversation_id} refused: {status} {body}", flush=True)
                await self.call("POST", f"/api/handoffs/{hid}/close", {})
                return status == 200
            await asyncio.sleep(0.2)
        print(f"  {conversation_id} never reached the desk queue", flush=True)
        return False


def latest_parse(bot: LiveBot, sender: str) -> Dict:
    status, body = bot.request("GET", f"/conversations/{sender}/tracker")
    return (json.loads(body).get("latest_message") or {}) if status == 200 else {}


def run_day(bot: LiveBot, desk_url: str, material: Dict, day: int, n: int, kb_share: float, wrong: bool,
            rng: random.Random, label: str) -> Dict:
    kb_answers = {}
    for row in csv.DictReader(open(ROOT / "data/qa/store_faq.csv", newline="", encoding="utf-8")):
        kb_answers[row["answer"][:60]] = group_of(row["id"])
    stats: Dict[str, int] = defaultdict(int)
    traces: List[Dict] = []
    started = time.perf_counter()

    day_customers = customers(material, day, n, kb_share, rng)

    async def go():
        agent = DeskAgent(desk_url, "agent1")
        await agent.sign_in()
        for i, (kind, text, truth) in enumerate(day_customers):
            sender = f"{label}-{i}"
            messages = await asyncio.to_thread(bot.say, sender, text)
            replies = " ".join(m.get("text") or "" for m in messages)
            parse = await asyncio.to_thread(latest_parse, bot, sender)
            intent = (parse.get("intent") or {}).get("name")
            before = (parse.get("kb") or {}).get("intent_before")
            stats["conversations"] += 1
            stats[f"{kind}_conversations"] += 1
            given = next((g for a, g in kb_answers.items() if a in replies), None)
            if kind == "intent":
                stats["intent_right"] += int(intent == truth)
            else:
                traces.append(kb_trace(parse, text, truth, kb_answers))
            if given is not None:
                if kind == "kb":
                    stats["kb_answers"] += 1
                    stats["kb_correct"] += int(given == truth)
                else:
                    stats["kb_answers_to_intent_examples"] += 1
            right = (given == truth) if kind == "kb" else (intent == truth or (given is not None and before == truth))
            if right and replies.strip() and not any(p in replies.lower() for p in NEEDS_PERSON):
                stats["resolved_by_bot"] += 1
                continue
            # "Did you mean": a customer asking about a withheld answer picks the offered question whose entry
            # holds it (they know what they asked); customers of scripted intents pick nothing.
            offered = shown_suggestions(messages, parse)
            stats["suggestions_shown"] += bool(offered)
            pick = next((c for c in offered if kind == "kb" and group_of_answer(c.get("answer"), kb_answers) == truth), None)
            if pick is not None:
                stats["suggestion_picked"] += 1
                picked = await asyncio.to_thread(bot.say, sender, "/kb_pick" + json.dumps({"kb_id": pick["id"]}))
                if next((g for a, g in kb_answers.items() if a in " ".join(m.get("text") or "" for m in picked)), None) == truth:
                    stats["resolved_by_bot"] += 1
                    stats["resolved_by_suggestion"] += 1
                    continue
            # Not helped: ask for a person, then ask again for them (the bot is paused and stays silent).
            await asyncio.to_thread(bot.say, sender, "/human_handoff")
            await asyncio.to_thread(bot.say, sender, text)
            stats["handoffs"] += 1
            answer = material["answers"].get(truth) if kind == "kb" else None
            if wrong:
                others = [a for g, a in material["answers"].items() if g != truth]
                answer = rng.choice(others)
            stats["agent_answered"] += int(await agent.answer(
                sender, answer or PERSONAL_REPLY.format(topic=truth.replace("_", " "))))
            if (i + 1) % 50 == 0:
                print(f"  {label}: {i + 1}/{n} customers ({time.perf_counter() - started:.0f} s)", flush=True)
        await agent.session.close()

    asyncio.run(go())
    total = max(1, stats["conversations"])
    return {"resolution_rate": round(stats["resolved_by_bot"] / total, 3),
            "resolved_by_suggestion_rate": round(stats["resolved_by_suggestion"] / total, 3),
            "handoff_rate": round(stats["handoffs"] / total, 3),
            "kb_answers": stats["kb_answers"],
            "kb_precision": round(stats["kb_correct"] / stats["kb_answers"], 3) if stats["kb_answers"] else None,
            "kb_recall": round(stats["kb_correct"] / max(1, stats["kb_conversations"]), 3),
            "live_intent_accuracy": round(stats["intent_right"] / max(1, stats["intent_conversations"]), 3),
            "seconds": round(time.perf_counter() - started, 1), **stats,
            "intent_customers": [[text, truth] for kind, text, truth in day_customers if kind == "intent"],
            "kb_traces": traces}


def shown_suggestions(messages: List[Dict], parse: Dict) -> List[Dict]:
    """The knowledge-base candidates the bot's reply offered as "did you mean" buttons (their `/kb_pick` payloads)."""
    candidates = {c.get("id"): c for c in (parse.get("kb") or {}).get("top_k") or []}
    shown = []
    for message in messages:
        for button in message.get("buttons") or []:
            payload = str(button.get("payload") or "")
            if payload.startswith("/kb_pick{"):
                shown.append(candidates.get(json.loads(payload[len("/kb_pick"):]).get("kb_id")) or {})
    return [c for c in shown if c]


def group_of_answer(answer: Optional[str], kb_answers: Dict[str, str]) -> Optional[str]:
    return next((g for a, g in kb_answers.items() if (answer or "").startswith(a)), None)


def kb_trace(parse: Dict, text: str, truth: str, kb_answers: Dict[str, str]) -> Dict:
    """What the bot decided for one question about a withheld answer: intent, knowledge-base route and
    probability, and where the right answer ranked among the candidates (None: not among them)."""
    kb = parse.get("kb") or {}
    groups = [group_of_answer(c.get("answer"), kb_answers) for c in kb.get("top_k") or []]
    return {"text": text, "truth": truth, "intent": (parse.get("intent") or {}).get("name"),
            "confidence": round(float((parse.get("intent") or {}).get("confidence") or 0.0), 4),
            "match": kb.get("match"), "route": kb.get("route"), "p_answer": kb.get("p_answer"),
            "rank": groups.index(truth) + 1 if truth in groups else None, "suggest": kb.get("suggest") or 0,
            "scores": [c.get("score") for c in (kb.get("top_k") or [])][:3], "top": groups[:3]}


def pseudo_label_precision(report: Dict, truth: Dict[str, str]) -> Dict[str, int]:
    """The night's new pseudo-labels (the bot's own confident guesses) against what the customers really meant."""
    by_redacted = {redact(t)[0]: i for t, i in truth.items()}
    found = {}
    for name, key in (("kept", "pseudo_labels_new"), ("dropped_by_second_view", "pseudo_labels_second_view_dropped")):
        rows = report.get(key) or []
        judged = [(t, i) for t, i in rows if t in by_redacted]
        found[name] = {"rows": len(rows), "judged": len(judged), "right": sum(by_redacted[t] == i for t, i in judged)}
    return found


def classifiers_side_by_side(project: Path, work: Path, days: Dict[str, List]) -> Dict[str, Dict[str, float]]:
    """Every kept version's intent classifier alone on the same customers of each day: whether a night's classifier
    is better or worse, without the day's own difficulty in the figure (live accuracy compares different texts)."""
    from finetune import IntentModel
    from retrain.train_candidate import extract_intent_model

    registry = project / "var/retrain/registry"
    found: Dict[str, Dict[str, float]] = {}
    for version in sorted(p for p in registry.iterdir() if (p / "model.tar.gz").exists()):
        model = IntentModel.load(extract_intent_model(version / "model.tar.gz", work / "side-by-side" / version.name))
        found[version.name] = {}
        for day, rows in days.items():
            predicted = model.predict([text for text, _ in rows])
            found[version.name][day] = round(sum(p.intent == t for p, (_, t) in zip(predicted, rows)) / max(1, len(rows)), 3)
    return found


def lead_round(desk_url: str, material: Dict, truth: Dict[str, str], label: int, wrong: bool,
               rng: random.Random) -> Dict:
    """The lead's work in the desk: knowledge-base proposals (accept real answers once, reject the rest; in the
    wrong round accept everything) and the top `label` open rows of the review queue (in the wrong round the
    top `label` rows, labelled or not, get wrong intents)."""
    real_answers = set(material["answers"].values())

    async def go():
        lead = DeskAgent(desk_url, "lead1")
        await lead.sign_in()
        accepted = rejected = 0
        seen = set()
        _, proposals = await lead.call("GET", "/api/proposals")
        for p in proposals.get("proposals", []):
            # One entry per question and answer (the same customer question answered again is a duplicate).
            key = (p["question"].strip().lower(), p["answer"])
            accept = (wrong or p["answer"] in real_answers) and key not in seen
            seen.add(key)
            status, _ = await lead.call("POST", f"/api/proposals/{p['id']}/{'accept' if accept else 'reject'}", {})
            accepted += accept and status == 200
            rejected += (not accept) and status == 200
        _, review = await lead.call("GET", "/api/review")
        by_redacted = {redact(t)[0]: i for t, i in truth.items()}
        intents = review.get("intents", [])
        labelled = unknown = 0
        for row in review.get("rows", []):
            if labelled >= label:
                break
            if row["kind"] != "message" or (row["label"] and not wrong):  # a careless lead overwrites labels too
                continue
            if row["text"] not in by_redacted:
                unknown += 1
                continue
            intent = by_redacted[row["text"]]
            if wrong:
                intent = rng.choice([i for i in intents if i != intent])
            status, _ = await lead.call("POST", f"/api/review/{row['index']}/label", {"label": intent})
            labelled += status == 200
        await lead.session.close()
        return {"kb_entries_accepted": accepted, "kb_entries_rejected": rejected, "labelled": labelled,
                "queue_rows": len([r for r in review.get("rows", []) if r["kind"] == "message"]),
                "rows_of_unknown_text_skipped": unknown}

    return asyncio.run(go())


def retrain(project: Path, name: str) -> Dict:
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).with_name("kefu")), "retrain", "--config",
                             str(project / "retrain.yml")], cwd=project, capture_output=True, text=True)
    print(f"--- {name}: kefu retrain (exit {result.returncode})", flush=True)
    print(result.stdout[-2500:], result.stderr[-2500:] if result.returncode else "", flush=True)
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


def gate_accuracy(report: Dict, which: str) -> Optional[float]:
    metrics = report.get("metrics") or {}
    if which == "challenger" and report.get("promoted_part") == "knowledge base only":
        return (metrics.get("knowledge_base_only") or {}).get("metrics", {}).get("intent_accuracy")
    return (metrics.get(which) or {}).get("intent_accuracy")


def table(results: Dict, budgets: Dict, args: argparse.Namespace) -> str:
    d1, d2 = results["day1"], results["day2"]
    night = results["night1b"]
    promoted = [r for r in (results["night1"], night) if r.get("decision") == "promoted"]
    before = gate_accuracy(results["night1"], "champion") or gate_accuracy(night, "champion")
    after = gate_accuracy(promoted[-1], "challenger") if promoted else before

    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}%"

    def num(x):
        return "-" if x is None else f"{x:.3f}"

    lines = [
        f"learning round: {args.customers} customers a day ({int(args.kb_share * 100)}% asking about withheld answers), "
        f"{args.withhold_answers} KB answers and "
        f"{int(args.holdout * 100)}% of each intent's examples withheld, lead labels top {args.label}; budgets {budgets}; "
        f"challengers {'from the base model' if args.from_base else 'continued from the champion'}",
        "",
        f"| {'':46} | {'day 1':>12} | {'day 2':>12} | {'change':>9} |",
        f"|{'-' * 48}|{'-' * 14}|{'-' * 14}|{'-' * 11}|",
    ]
    rows = [
        ("resolved by the bot without a person", pct(d1["resolution_rate"]), pct(d2["resolution_rate"]),
         f"{100 * (d2['resolution_rate'] - d1['resolution_rate']):+.1f} pt"),
        ("  of which through a \"did you mean\" pick", pct(d1.get("resolved_by_suggestion_rate")),
         pct(d2.get("resolved_by_suggestion_rate")),
         f"{100 * (d2.get('resolved_by_suggestion_rate', 0) - d1.get('resolved_by_suggestion_rate', 0)):+.1f} pt"),
        ("handoff rate", pct(d1["handoff_rate"]), pct(d2["handoff_rate"]),
         f"{100 * (d2['handoff_rate'] - d1['handoff_rate']):+.1f} pt"),
        ("KB answers to withheld questions (given/asked)", f"{d1['kb_answers']}/{d1.get('kb_conversations', 0)}",
         f"{d2['kb_answers']}/{d2.get('kb_conversations', 0)}", ""),
        ("KB answer precision (withheld questions)", num(d1["kb_precision"]), num(d2["kb_precision"]), ""),
        ("KB answers given to intent examples", str(d1.get("kb_answers_to_intent_examples", 0)),
         str(d2.get("kb_answers_to_intent_examples", 0)), ""),
        ("held-out intent accuracy (gate, tests/data)", num(before), num(after),
         "" if before is None or after is None else f"{after - before:+.3f}"),
        ("live intent accuracy (the day's customers)", num(d1["live_intent_accuracy"]), num(d2["live_intent_accuracy"]),
         f"{d2['live_intent_accuracy'] - d1['live_intent_accuracy']:+.3f}"),
    ]
    for name, a, b, c in rows:
        lines.append(f"| {name:46} | {a:>12} | {b:>12} | {c:>9} |")
    lines.append("")
    for day in ("day1", "day2"):
        traces = results[day].get("kb_traces") or []
        routes, first = defaultdict(int), defaultdict(int)
        for t in traces:
            routes[t["route"] or "none"] += 1
            first[t["route"] or "none"] += t["rank"] == 1
        lines.append(f"{day} withheld questions ({len(traces)}): right answer first among the candidates "
                     f"{sum(t['rank'] == 1 for t in traces)}, among the top 5 {sum(t['rank'] is not None for t in traces)}; "
                     f"routes {dict(sorted(routes.items()))}; routes while the right answer was first "
                     f"{dict(sorted(first.items()))}")
    lines.append("")
    for key in ("night1", "night1b", "night_wrong"):
        r = results.get(key)
        if not r:
            continue
        added = {k: v for k, v in (r.get("added") or {}).items() if not isinstance(v, dict)}
        part = f" {r['promoted_part']}" if r.get("promoted_part") else ""
        lines.append(f"{key}: {r.get('decision')}{part} ({r.get('training', {}).get('mode')}, {r['wall_seconds']} s); "
                     f"added {added}")
        for line in (r.get("metrics") or {}).get("comparison", []):
            lines.append(f"    {line}")
        alone = (r.get("metrics") or {}).get("knowledge_base_only") or {}
        if alone.get("tried"):
            lines.append(f"    the night's knowledge base with the champion's classifier: {'passed' if alone['passed'] else 'refused'}")
            lines.extend(f"      {line}" for line in alone["comparison"])
        if r.get("error"):
            lines.append(f"    error: {r['error'][:300]}")
    pseudo = results.get("pseudo_labels_night1")
    if pseudo:
        lines.append("night1 pseudo-labels right/judged (judged: texts of the day's customers): " + "; ".join(
            f"{name.replace('_', ' ')} {v['right']}/{v['judged']} of {v['rows']}" for name, v in pseudo.items()))
    for version, days in (results.get("classifiers_side_by_side") or {}).items():
        lines.append(f"classifier alone, {version}: " + ", ".join(f"{d} customers {a:.3f}" for d, a in days.items()))
    for key in ("lead", "lead_wrong"):
        if key in results:
            lines.append(f"{key}: {results[key]}")
    if "night_wrong" in results:
        kept = results["night_wrong"].get("decision") != "promoted"
        lines.append(f"wrong round: gate {'REFUSED the challenger, champion kept' if kept else 'PROMOTED the challenger'}"
                     f" ({results['night_wrong'].get('decision')})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--withhold-answers", type=int, default=8)
    parser.add_argument("--kb-share", type=float, default=0.25,
                        help="share of each day's customers asking about the withheld answers (the rest: intent examples)")
    parser.add_argument("--holdout", type=float, default=0.25)
    parser.add_argument("--label", type=int, default=50)
    parser.add_argument("--budget-minutes", type=float, default=None,
                        help="intent classifier time_budget_minutes in the scratch config.yml (default: the project's)")
    parser.add_argument("--kb-budget-minutes", type=float, default=None,
                        help="knowledge-base adaptation time_budget_minutes (default: --budget-minutes, at most 5)")
    parser.add_argument("--from-base", action="store_true",
                        help="challengers train from the base model (retrain.yml training.continue_when_labels_unchanged: "
                             "false) instead of continuing from the champion")
    parser.add_argument("--wrong-round", action="store_true")
    parser.add_argument("--day1-wordings", type=int, default=1,
                        help="question variants of each withheld answer asked on day 1 (each has 3; the rest on day 2)")
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    kb_budget = args.kb_budget_minutes
    if kb_budget is None and args.budget_minutes is not None:
        kb_budget = min(args.budget_minutes, 5)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # The desk and `kefu retrain` (PUT /model) talk to the live bot's HTTP API with its token.
    os.environ["KEFU_API_TOKEN"] = LiveBot.TOKEN
    os.environ["HF_HUB_OFFLINE"] = "1"
    rng = random.Random(12)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="kefu-learning-round-"))
    project = work / "project"
    project.mkdir()
    material = prepare(project, args.withhold_answers, args.holdout, rng)
    material["day1_wordings"] = args.day1_wordings
    budgets = set_budgets(project, args.budget_minutes, kb_budget)
    print(f"withheld {len(material['answers'])} KB answers and "
          f"{sum(map(len, material['held_examples'].values()))} NLU examples; scratch project {project}; "
          f"training budgets {budgets}", flush=True)
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
    results: Dict[str, Dict] = {}
    try:
        (project / "endpoints.yml").write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{bot.actions_port}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{bot.tracker_db}"\n')
        (project / "retrain.yml").write_text(f"server: {{url: {bot.url}}}\n"
                                             + ("training: {continue_when_labels_unchanged: false}\n" if args.from_base else ""))
        truth = {t: i for i, ex in material["held_examples"].items() for t in ex}
        truth.update({t.format(o="104233"): i for i, texts in POOL.items() for t in texts})
        results["day1"] = run_day(bot, desk.url, material, 1, args.customers, args.kb_share, False, rng, "day1")
        print("day1", json.dumps({k: v for k, v in results["day1"].items() if k not in ("intent_customers", "kb_traces")}), flush=True)
        results["night1"] = retrain(project, "night 1")
        results["pseudo_labels_night1"] = pseudo_label_precision(results["night1"], truth)
        print("pseudo labels night 1", results["pseudo_labels_night1"], flush=True)
        results["lead"] = lead_round(desk.url, material, truth, args.label, False, rng)
        print("lead", results["lead"], flush=True)
        results["night1b"] = retrain(project, "night 1b")
        results["day2"] = run_day(bot, desk.url, material, 2, args.customers, args.kb_share, False, rng, "day2")
        print("day2", json.dumps({k: v for k, v in results["day2"].items() if k not in ("intent_customers", "kb_traces")}), flush=True)
        results["classifiers_side_by_side"] = classifiers_side_by_side(
            project, work, {day: results[day]["intent_customers"] for day in ("day1", "day2")})
        if args.wrong_round:
            results["day_wrong"] = run_day(bot, desk.url, material, 2, args.customers // 2, args.kb_share, True, rng, "wrong")
            results["lead_wrong"] = lead_round(desk.url, material, truth, args.label, True, rng)
            print("lead_wrong", results["lead_wrong"], flush=True)
            results["night_wrong"] = retrain(project, "wrong night")
    finally:
        desk.stop()
        bot.stop()
    (work / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print()
    print(table(results, budgets, args))
    print(f"\nwhole bench: {time.perf_counter() - started:.0f} s wall; results: {work / 'results.json'} "
          f"(delete {work} when done)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
