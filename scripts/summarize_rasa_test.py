"""Prints the figures of a `rasa test` results directory in three lines."""

import json
import sys
from pathlib import Path

results = Path(sys.argv[1])
label = sys.argv[2] if len(sys.argv) > 2 else "held-out NLU"
stories = results / "failed_test_stories.yml"
failed = 0
if stories.exists():
    failed = stories.read_text().count("- story:")
intent = json.loads((results / "intent_report.json").read_text()) if (results / "intent_report.json").exists() else {}
story_report = json.loads((results / "story_report.json").read_text()) if (results / "story_report.json").exists() else {}
if stories.exists() or (results / "story_report.json").exists():
    print(f"conversation tests: {failed} failed stories")
if story_report:
    print(f"action accuracy: {story_report.get('accuracy', float('nan')):.4f}")
if intent:
    print(f"{label}: accuracy {intent['accuracy']:.4f}, macro F1 {intent['macro avg']['f1-score']:.4f}")
