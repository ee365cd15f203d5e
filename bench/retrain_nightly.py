"""Times a nightly `kefu retrain` on the default bot plus 1,000 new transcripts, and the accuracy change.

    .venv/bin/python bench/retrain_nightly.py [--conversations 1000] [--model build/test/models/kefu.tar.gz]

In a scratch copy of the project: serves the trained default model (LiveBot),
has scripted customers hold N conversations through the REST channel
(paraphrases written for this bench - not tests/data/nlu.yml - with typos, some
out-of-scope questions, some handoffs where a human agent answers through the
HTTP API), then runs `kefu retrain` as cron would (night 1); with `--label N` a
simulated support lead then labels the top N rows of the review queue with the
true intents and it runs again (night 2). Prints wall times, the mode, the decision and the
held-out metrics before and after. Holds the CPU for several minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from retrain.redact import redact  # noqa: E402
from tests.live_bot import LiveBot  # noqa: E402

# Paraphrases per intent, written for this bench only.
POOL = {
    "order_status": ["any news on my parcel", "my package is taking ages, where is it", "has order {o} left the warehouse",
                     "when is my stuff arriving", "tracking for my purchase please", "is {o} out for delivery",
                     "my order from last week hasn't come", "can u check where my order is"],
    "cancel_order": ["i dont want order {o} anymore", "please stop my order from shipping", "cancel my purchase",
                     "i ordered by mistake, cancel it", "can i still cancel {o}"],
    "return_item": ["how do i send something back", "i want to return these shoes", "whats your returns process",
                    "can i return an opened item"],
    "refund_status": ["still waiting for my money back", "when will the refund hit my account", "refund not received yet"],
    "shipping_times": ["how many days does shipping take", "whats the delivery time to scotland", "how fast is standard delivery"],
    "payment_failed": ["my payment keeps failing", "checkout says card declined", "why was my payment rejected"],
    "reset_password": ["cant get into my account forgot pw", "how do i get a new password", "password reset email never came"],
    "damaged_item": ["the mug arrived smashed", "my lamp came broken", "item was damaged in the post"],
    "wrong_item": ["you sent me the wrong colour", "got a medium instead of a large", "this isnt what i ordered"],
    "gift_card_balance": ["how much is left on my gift card", "check gift voucher balance", "can i use two gift cards"],
    "contact_info": ["whats your phone number", "when are you open", "how can i email support"],
    "greet": ["hey hey", "hello!!", "good afternoon"],
    "thanks": ["cheers mate", "thx", "brilliant thank you"],
}
NEW_TOPIC = ["do you sell pet food", "have you got dog beds", "any cat toys in stock", "do you stock aquarium supplies",
             "where can i find bird cages", "do you have hamster food"]
OUT_OF_SCOPE = ["what's the weather tomorrow", "tell me a joke", "who won the football", "what is 17 times 23"]
HANDOFF_QA = [("do you offer student discount?", "Yes: verify with UNiDAYS at checkout and you get 10% off full-price items."),
              ("can I collect my order in store?", "Not yet, we only deliver; you can choose a parcel locker at checkout instead."),
              ("do you price match?", "We match any UK retailer's price for the same item within 14 days of purchase.")]


def typo(text: str, rng: random.Random) -> str:
    if len(text) < 6 or rng.random() > 0.3:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def converse(bot: LiveBot, n: int, rng: random.Random) -> dict:
    truth, kinds = {}, {"in_scope": 0, "new_topic": 0, "out_of_scope": 0, "handoff": 0}
    started = time.perf_counter()
    for i in range(n):
        sender = f"bench-{i}"
        roll = rng.random()
        if roll < 0.08:
            kinds["handoff"] += 1
            question, answer = rng.choice(HANDOFF_QA)
            bot.say(sender, "i need to speak to a human")
            bot.say(sender, question)
            bot.request("POST", f"/conversations/{sender}/tracker/events",
                        json.dumps({"event": "bot", "text": answer, "metadata": {"agent": "human"}, "timestamp": time.time()}),
                        {"Content-Type": "application/json"})
            continue
        if roll < 0.16:
            kinds["new_topic"] += 1
            bot.say(sender, typo(rng.choice(NEW_TOPIC), rng))
            continue
        if roll < 0.20:
            kinds["out_of_scope"] += 1
            bot.say(sender, rng.choice(OUT_OF_SCOPE))
            continue
        kinds["in_scope"] += 1
        intent = rng.choice(sorted(POOL))
        text = typo(rng.choice(POOL[intent]).format(o=rng.choice(["104233", "#583920", "771204"])), rng)
        truth[text] = intent
        bot.say(sender, text)
        if rng.random() < 0.3:
            bot.say(sender, "thanks")
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{n} conversations ({time.perf_counter() - started:.0f} s)", flush=True)
    return {"truth": truth, "kinds": kinds, "seconds": round(time.perf_counter() - started, 1)}


def retrain(project: Path) -> dict:
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).with_name("kefu")), "retrain", "--config", str(project / "retrain.yml")],
                            cwd=project, capture_output=True, text=True)
    print(result.stdout[-3000:], result.stderr[-1500:] if result.returncode else "", flush=True)
    report = json.loads((project / "var/retrain/reports/latest.json").read_text())
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    return report


def label_top(project: Path, truth: dict, n: int) -> int:
    path = project / "var/retrain/review.csv"
    rows = list(csv.DictReader(open(path, newline="")))
    by_redacted = {redact(t)[0]: i for t, i in truth.items()}
    done = 0
    for row in rows:
        if done < n and row["kind"] == "message" and not row["label"] and row["text"] in by_redacted:
            row["label"] = by_redacted[row["text"]]
            done += 1
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--model", default=str(ROOT / "build/test/models/kefu.tar.gz"))
    parser.add_argument("--label", type=int, default=0, help="review rows a simulated lead labels for a second night (0: one night)")
    args = parser.parse_args()
    # Subprocesses (kefu, rasa) import this checkout, wherever the venv's editable install points.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    # `kefu retrain` tells the live bot to load a promoted champion (PUT /model): with the bot's API token.
    os.environ["KEFU_API_TOKEN"] = LiveBot.TOKEN
    work = Path(tempfile.mkdtemp(prefix="kefu-retrain-bench-"))
    project = work / "project"
    project.mkdir()
    for name in ("config.yml", "domain.yml", "credentials.yml", "data", "tests"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, project / name)
    (project / "models").mkdir()
    shutil.copyfile(args.model, project / "models" / "kefu.tar.gz")
    bot = LiveBot(project / "models" / "kefu.tar.gz", work).start()
    try:
        (project / "endpoints.yml").write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{bot.actions_port}/webhook"\n'
            f'tracker_store:\n  type: SQL\n  dialect: "sqlite"\n  db: "{bot.tracker_db}"\n')
        (project / "retrain.yml").write_text(f"server: {{url: {bot.url}}}\n")
        print(f"{args.conversations} scripted conversations through the REST channel ...", flush=True)
        talk = converse(bot, args.conversations, random.Random(7))
        print(f"  done in {talk['seconds']} s: {talk['kinds']}")
        nights = [retrain(project)]
        if args.label:
            labelled = label_top(project, talk["truth"], args.label)
            print(f"simulated lead labelled {labelled} review rows", flush=True)
            nights.append(retrain(project))
    finally:
        bot.stop()
    for n, report in enumerate(nights, 1):
        m = report.get("metrics", {})
        print(f"night {n}: {report.get('decision')} in {report['wall_seconds']} s wall; "
              f"training {report.get('training', {}).get('mode')} {report.get('training', {}).get('seconds')} s; "
              f"added {({k: v for k, v in report.get('added', {}).items() if not isinstance(v, dict)})}")
        for line in m.get("comparison", []):
            print(f"  {line}")
    print(f"work dir (delete when done): {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
