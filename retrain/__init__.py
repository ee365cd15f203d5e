"""Nightly retraining from new transcripts (`kefu retrain`), safe to run unattended.

intake (tracker store, export files, watermark) -> redact (scrubadub + custom
detectors) -> signals (review queue, reviewed labels, pseudo-labels, handoff
Q&A, candidate intents) -> train_candidate (`rasa train`, continued from the
champion when the label set is unchanged) -> gate (`rasa test`, champion vs
challenger) -> registry (atomic promote, keep N, rollback, `PUT /model`) ->
report. `pipeline.run` ties them together under `lock`.

Orchestration over the libraries (finetune, retrieval) and Rasa's command line;
the `kefu retrain` command itself is kefu/cli/retrain.py.
"""
