"""The Prometheus metrics of one Rasa replica (prometheus_client, the process's default registry).

Names and labels are what deploy/grafana/kefu.json queries; labels stay bounded
(channels, the domain's intents and actions, a few outcomes), never per sender.
One Sanic worker per replica (the cluster's default); with SANIC_WORKERS > 1 set
PROMETHEUS_MULTIPROC_DIR as prometheus_client documents.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

MESSAGES = Counter("kefu_messages_total", "Customer messages handled, by channel", ["channel"])
STAGE_SECONDS = Histogram("kefu_stage_seconds", "Time per message stage: nlu, policy (each prediction), action (each run), total",
                          ["stage"], buckets=LATENCY_BUCKETS)
ACTIONS = Counter("kefu_actions_total", "Actions run, by name and outcome", ["action", "outcome"])
INTENTS = Counter("kefu_intents_total", "Predicted intents (after the fallback classifier)", ["intent"])
CONFIDENCE = Histogram("kefu_intent_confidence", "Confidence of the predicted intent", buckets=CONFIDENCE_BUCKETS)
NLU_OUTCOMES = Counter("kefu_nlu_outcomes_total", "Messages by NLU outcome: intent, fallback (nlu_fallback), out_of_scope",
                       ["outcome"])
KB_DECISIONS = Counter("kefu_kb_decisions_total", "Knowledge-base decisions per message: high (answered), low, none", ["match"])
HANDOFFS = Counter("kefu_handoffs_total", "Conversations handed to a person, by channel", ["channel"])
ERRORS = Counter("kefu_message_errors_total", "Messages whose handling raised (the channel answers an error)", ["channel"])
REFUSALS = Counter("kefu_refused_messages_total", "Messages refused by the channel limits: 413 too long, 429 too fast",
                   ["channel", "status"])
CACHE_LOOKUPS = Counter("kefu_inference_cache_lookups_total",
                        "Lookups in the inference caches (kefu.core.memo) by cache (intent, kb, dialogue) and outcome (hit, miss)",
                        ["cache", "outcome"])
LOCK_TICKETS_RECLAIMED = Counter("kefu_lock_tickets_reclaimed_total",
                                 "Conversation lock tickets given back because the process holding them died (its lease expired)")
MODEL_INFO = Gauge("kefu_model_info", "The model this replica serves (value 1)", ["model_id", "model_file"])
MODEL_LOADED_AT = Gauge("kefu_model_loaded_timestamp_seconds", "When the served model was loaded (Unix time)")
MODEL_LOADS = Counter("kefu_model_loads_total", "Model loads from the model server, by outcome (ok, failed)", ["outcome"])
MODEL_FINGERPRINT = Gauge("kefu_model_fingerprint_info", "The model server's ETag of the archive this replica loaded (value 1)",
                          ["fingerprint"])


def cache_observer(cache: str):
    """`Memo(observe=...)` for the cache named `cache`: counts its hits and misses in CACHE_LOOKUPS."""
    hit, miss = CACHE_LOOKUPS.labels(cache, "hit"), CACHE_LOOKUPS.labels(cache, "miss")

    def observe(hits: int, misses: int) -> None:
        if hits:
            hit.inc(hits)
        if misses:
            miss.inc(misses)

    return observe
