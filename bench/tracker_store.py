"""The SQL tracker store per message, Rasa's and kefu's (bot/tracker_cache.py), side by side in one run.

    flock /tmp/kefu-cpu.lock .venv/bin/python bench/tracker_store.py [--conversations 200] [--rounds 2]

Each message as Rasa's processor handles it: retrieve the conversation (or create it),
add the message's events, save. The conversation is the order-status one the
throughput bench sends (hi, where is my order, 104233, thanks, bye: 34 events, each
customer message carrying a parse like kefu's, about 5 KB with its intent ranking and
the knowledge base's five candidates) on a SQLite file in WAL mode, one process per
variant and round, alternating. Prints p50 and mean per message of retrieve and save.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TURNS = [("hi", "greet", ["utter_greet"], []),
         ("where is my order", "order_status", ["order_status_form", "utter_ask_order_number"], ["requested_slot"]),
         ("104233", "inform_order_number", ["order_status_form", "action_order_status"],
          ["order_number", "order_status", "order_eta", "requested_slot"]),
         ("thanks", "thanks", ["utter_you_are_welcome"], []),
         ("bye", "goodbye", ["utter_goodbye"], [])]
ANSWER = ("All online orders ship from our warehouse in Columbus, Ohio, USA; our pop-up stores don't send out orders. "
          "International orders are handed over to our partner DHL, which handles customs and delivery.")


def parse(text: str, intent: str) -> dict:
    ranking = [{"name": intent, "confidence": 0.97}] + [{"name": f"intent_{i}", "confidence": 0.003} for i in range(9)]
    candidates = [{"answer": ANSWER, "question": f"where do you ship from {i}", "source": "https://help.example/a",
                   "id": f"ship-{i}", "score": 0.47} for i in range(5)]
    return {"intent": ranking[0], "entities": [], "text": text, "intent_ranking": ranking, "intent_in_domain": 0.96,
            "kb": {"match": "none", "route": "intent", "p_answer": 0.29, **candidates[0], "top_k": candidates}}


def message_events(n: int, text: str, intent: str, actions, slots):
    from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered

    meta = {"model_id": "0" * 32, "assistant_id": "kefu"}
    events = [UserUttered(text, {"name": intent, "confidence": 0.97}, [], parse(text, intent), metadata=meta)]
    for action in actions:
        events.append(ActionExecuted(action, policy="RulePolicy", confidence=1.0, metadata=meta))
        if action.endswith("_form"):
            events.append(ActiveLoop(action, metadata=meta))
        events.append(BotUttered(f"reply to {text}", {"elements": None, "buttons": None}, {"utter_action": action, **meta}))
    events += [SlotSet(slot, f"value {n}", metadata=meta) for slot in slots]
    return events + [ActionExecuted("action_listen", metadata=meta)]


async def serve(store, conversations: int):
    retrieve, save = [], []
    for c in range(conversations):
        sender = f"customer-{c}"
        for n, turn in enumerate(TURNS):
            started = time.perf_counter()
            tracker = await store.get_or_create_tracker(sender)
            got = time.perf_counter()
            for event in message_events(n, *turn):
                tracker.update(event)
            saving = time.perf_counter()
            await store.save(tracker)
            save.append(time.perf_counter() - saving)
            retrieve.append(got - started)
    return retrieve, save


def one(variant: str, conversations: int) -> dict:
    import sqlite3

    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain

    if variant == "kefu":
        from bot import speedups

        speedups.install()
    with tempfile.TemporaryDirectory(prefix="kefu-bench-store-") as tmp:
        db = Path(tmp) / "tracker.db"
        with sqlite3.connect(db) as connection:
            connection.execute("PRAGMA journal_mode=WAL")  # as `kefu run` sets it
        store = SQLTrackerStore(Domain.load(str(ROOT / "domain.yml")), dialect="sqlite", db=str(db))
        asyncio.run(serve(store, 5))  # warm-up: imports, the table, the first statements
        retrieve, save = asyncio.run(serve(store, conversations))
    return {"variant": variant, "messages": len(save),
            **{f"{name}_{stat}_ms": round(f(values) * 1000, 3) for name, values in (("retrieve", retrieve), ("save", save))
               for stat, f in (("p50", statistics.median), ("mean", statistics.mean))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--one", choices=("rasa", "kefu"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.conversations)))
        return
    print("| variant | retrieve p50 | retrieve mean | save p50 | save mean | messages |\n|---|---|---|---|---|---|")
    for _ in range(args.rounds):
        for variant in ("rasa", "kefu"):
            out = subprocess.run([sys.executable, __file__, "--one", variant, "--conversations", str(args.conversations)],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            label = "Rasa's SQLTrackerStore" if variant == "rasa" else "with bot/tracker_cache.py"
            print(f"| {label} | {r['retrieve_p50_ms']} ms | {r['retrieve_mean_ms']} ms | {r['save_p50_ms']} ms | "
                  f"{r['save_mean_ms']} ms | {r['messages']} |", flush=True)


if __name__ == "__main__":
    main()
