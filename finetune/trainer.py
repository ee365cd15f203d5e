"""The fine-tuning loop.

Warmup + linear decay, AdamW with a faster learning rate for the new head,
class weights for imbalanced intents, length-bucketed batches, early stopping on
a held-out split (best epoch kept), a time budget that shortens the schedule
rather than truncating it, and post-hoc calibration (see calibration.py).

The budget (`time_budget_minutes`) is for the whole of `train`: the companions
train before the schedule, and the forward passes after it (the training
examples' bank, about a quarter of a step's time per example) are foreseen
from a pilot pass, so 10-15k examples end on time as well as 500.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from finetune.blend import Blend, View
from finetune.calibration import OUT_OF_SCOPE, SigmoidScaler, combine, fit_knn_weight, fit_temperature, knn_similarity, knn_vote, softmax
from finetune.config import TrainConfig
from finetune.data import SPLIT_RULE, Example, check_examples, continued_split, data_fingerprint, has_split_record, split_record, stratified_split
from finetune.encoding import encode, forward, length_sorted_batches, quiet_padding
from finetune.errors import ModelLoadError
from finetune.evaluate import expected_calibration_error
from finetune.head_growth import regrow_head
from finetune.lexical import CharNgramClassifier
from finetune.model import IntentModel
from finetune.multilingual import MultilingualHead
from finetune.pairs import pair_batches, pair_loss
from finetune.sentence_head import SentenceHead
from kefu.core import runtime, sentence_encoder, train_step
from kefu.core.base_model import resolve_base_model
from kefu.core.schedule import TimeBudget, lr_factor
from kefu.core.text import needs_lexical, to_simplified, token_coverage

logger = logging.getLogger(__name__)

# The forward passes' batch size (encode's), and the slack on the pilot's foresight (saving the model, a busier machine).
PILOT_BATCH = 64
AFTER_MARGIN = 1.2


def train(
    examples: Sequence[Example],
    config: Optional[TrainConfig] = None,
    validation: Optional[Sequence[Example]] = None,
    progress: bool = True,
    init_from: Optional[IntentModel] = None,
) -> IntentModel:
    """Fine-tunes a sequence classifier on `examples` and returns the calibrated model.

    `validation` overrides the automatic stratified held-out split. `init_from`
    continues from an existing model's weights; where its intents differ, its head is
    regrown (head_growth.py: kept intents keep their rows, new ones are imprinted).
    """
    runtime.configure()
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    config = config or TrainConfig()
    fold = to_simplified if config.fold_traditional else (lambda text: text)
    examples = [Example(fold(e.text), e.intent) for e in examples if e.text]
    if validation is not None:
        validation = [Example(fold(e.text), e.intent) for e in validation]
    check_examples(examples)
    runtime.seed_everything(config.seed)
    runtime.set_threads(runtime.training_threads())
    device = runtime.pick_device(config.device)
    started = time.perf_counter()

    init_from = _continuable(init_from, validation)
    train_set, val_set, split = _split(examples, validation, init_from, config)
    labels = sorted({e.intent for e in train_set})
    label_ids = {label: i for i, label in enumerate(labels)}
    val_set = [e for e in val_set if e.intent in label_ids]

    label_changes: Dict[str, List[str]] = {}
    if init_from is not None:
        tokenizer = init_from.tokenizer
        model = copy.deepcopy(init_from.model).cpu()
        base = init_from.manifest.get("base_model", "unknown")
        mode = "continued"
        if init_from.labels != labels:
            label_changes = regrow_head(model, tokenizer, init_from.labels, labels, train_set, config.max_length, "cpu")
    else:
        base = resolve_base_model(config.base_model)
        try:
            tokenizer = AutoTokenizer.from_pretrained(base)
            model = AutoModelForSequenceClassification.from_pretrained(
                base,
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id=label_ids,
                ignore_mismatched_sizes=True,
            )
        except OSError as exc:
            raise ModelLoadError(
                f"Cannot load base model {config.base_model!r} ({base}): {exc}. "
                "Use a local directory, or set HF_HUB_OFFLINE=0 where the hub is reachable."
            ) from exc
        mode = "from_base"
    model.to(device)
    if config.freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    quiet_padding(tokenizer)
    # Text the tokenizer cannot read (mostly [UNK]) is noise to the transformer: it trains on
    # the readable examples, the character n-gram companion on all of them.
    full_train, full_val = train_set, val_set
    train_set, val_set = _readable_for_transformer(tokenizer, train_set, val_set, config)

    train_ids = tokenizer([e.text for e in train_set], truncation=True, max_length=config.max_length)["input_ids"]
    train_y = np.array([label_ids[e.intent] for e in train_set])
    loss_fn = torch.nn.CrossEntropyLoss(
        weight=torch.tensor(_class_weights(train_y, len(labels), config.class_weight_power), dtype=torch.float32, device=device),
        label_smoothing=config.label_smoothing,
    )

    # The companions do not depend on the transformer: they train first, inside the time budget.
    lexical, lexical_info = _train_lexical(tokenizer, full_train, full_val, label_ids, labels, config)
    encoder = sentence_encoder.load(config.multilingual_encoder)
    multilingual, multilingual_info, full_val_vectors = _train_multilingual(encoder, full_train, full_val, label_ids, labels, config)

    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    epochs = _epochs(config, steps_per_epoch)
    full_plan = epochs * steps_per_epoch
    budget = TimeBudget(full_plan, config.time_budget_minutes, "fine-tuning intents")
    # The budget covers the whole training: what ran so far, and the forward passes after the schedule.
    if budget.seconds is not None:
        after_texts, after_ids = [e.text for e in train_set], list(train_ids)
        if not _same_examples(full_val, val_set):
            after_texts += [e.text for e in full_val]
            after_ids += tokenizer([e.text for e in full_val], truncation=True, max_length=config.max_length)["input_ids"]
        after = _forward_seconds(model, tokenizer, after_texts, after_ids, config, device) * AFTER_MARGIN
        spent = time.perf_counter() - started
        budget.spend(spent + after)
        logger.info("Time budget: %.0f s spent before the schedule, %.0f s foreseen after it", spent, after)
    optimizer = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, budget.total, config.warmup_ratio))

    rng = np.random.default_rng(config.seed)
    best = {"score": (-1.0, -math.inf), "state": None, "epoch": 0, "val": None}
    history: List[Dict[str, float]] = []
    patience = 0
    step = 0
    bar = tqdm(total=budget.total, desc="fine-tuning intents", unit="step", disable=not runtime.show_progress(progress), dynamic_ncols=True)
    budget.started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        epoch_loss = 0.0
        batches = _epoch_batches(train_y, [len(x) for x in train_ids], config, rng)
        for batch_idx in batches:
            if step >= budget.total:
                break
            batch = tokenizer.pad({"input_ids": [train_ids[i] for i in batch_idx]}, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            batch_y = torch.as_tensor(train_y[batch_idx], device=device)
            with train_step.autocast(device):
                if config.contrastive > 0:
                    logits, embeddings = forward(model, batch)
                else:
                    logits, embeddings = model(**batch).logits, None
            loss = loss_fn(logits.float(), batch_y)
            if embeddings is not None:
                loss = loss + config.contrastive * pair_loss(embeddings.float(), batch_y, config.contrastive_scale)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            epoch_loss += loss.item()
            bar.update(1)
            if bar.total != budget.refit(step):
                bar.total = budget.total
                bar.refresh()
        record = {"epoch": epoch, "train_loss": epoch_loss / max(1, len(batches))}
        if val_set:
            val_encoded = encode(model, tokenizer, [e.text for e in val_set], config.max_length, device)
            val_acc, val_loss = _accuracy_and_loss(val_encoded.logits, val_set, label_ids)
            record.update(val_accuracy=val_acc, val_loss=val_loss)
            score = (val_acc, -val_loss)
            if score > best["score"]:
                # The best epoch's held-out pass is the calibration's: it is not run again.
                best = {"score": score, "state": _cpu_state(model), "epoch": epoch, "val": val_encoded}
                patience = 0
            else:
                patience += 1
        history.append(record)
        bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
        if val_set and patience >= config.early_stopping_patience:
            logger.info("Early stopping after epoch %d (best epoch %d)", epoch, best["epoch"])
            break
        if step >= budget.total:
            break
    bar.close()
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    train_seconds = time.perf_counter() - started

    # Calibration on the held-out split; the bank holds the training examples.
    train_texts = [e.text for e in train_set]
    bank = encode(model, tokenizer, train_texts, config.max_length, device).embeddings
    bank_labels = np.array([label_ids[e.intent] for e in train_set])
    temperature, knn_weight, val_metrics = 1.0, 0.0, {}
    scaler = SigmoidScaler.fit(np.array([]), config.ood_quantile)
    sentence_head, sentence_head_info = _train_sentence_head(bank, bank_labels, len(labels), config)
    if val_set:
        val_logits, val_emb, _ = best["val"]
        val_y = np.array([label_ids[e.intent] for e in val_set])
        sims = val_emb @ bank.T
        temperature = fit_temperature(val_logits, val_y)
        probs = softmax(val_logits, temperature)
        votes = knn_vote(sims, bank_labels, len(labels))
        knn_weight = fit_knn_weight(probs, votes, val_y)
        mixed = (1 - knn_weight) * probs + knn_weight * votes
        without_head = mixed
        if sentence_head is not None:
            mixed = sentence_head.mix(mixed, val_emb, config.sentence_head)
        in_scope = np.array([e.intent != OUT_OF_SCOPE for e in val_set])
        scaler = SigmoidScaler.fit(knn_similarity(sims, config.ood_neighbours)[in_scope], config.ood_quantile)
        val_metrics = {
            "val_accuracy_classifier": round(float((val_logits.argmax(1) == val_y).mean()), 4),
            "val_accuracy": round(float((mixed.argmax(1) == val_y).mean()), 4),
            **({"val_accuracy_without_sentence_head": round(float((without_head.argmax(1) == val_y).mean()), 4)}
               if sentence_head is not None else {}),
            "val_examples": len(val_set),
            "val_ece": round(expected_calibration_error(mixed.max(1), mixed.argmax(1) == val_y), 4),
        }

    blend = Blend()
    if full_val and multilingual is not None:
        full_val_encoded = best["val"] if _same_examples(full_val, val_set) else None
        blend, blend_metrics = _fit_blend(model, tokenizer, device, config, full_val, label_ids, labels, bank, bank_labels,
                                          temperature, knn_weight, scaler, lexical, lexical_info, multilingual, multilingual_info,
                                          full_val_vectors, full_val_encoded, sentence_head)
        val_metrics.update(blend_metrics)

    manifest = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": config.base_model if init_from is None else base,
        "training_mode": mode,
        **({"continued_with": label_changes} if label_changes else {}),
        "validation_split": split,
        "train_config": config.to_dict(),
        "data_fingerprint": data_fingerprint(examples),
        "label_counts": dict(Counter(e.intent for e in examples)),
        "calibration": {"temperature": temperature, "knn_weight": knn_weight, "in_domain": scaler.to_dict(),
                        "neighbours": config.ood_neighbours},
        "lexical": lexical_info,
        "multilingual": multilingual_info,
        "sentence_head": sentence_head_info,
        "blend": blend.to_dict(),
        "metrics": {
            "train_examples": len(train_set),
            "epochs_run": len(history),
            "best_epoch": best["epoch"],
            "steps": step,
            "train_seconds": round(train_seconds, 1),
            "device": str(device),
            **val_metrics,
        },
        "history": history,
    }
    logger.info("Trained intent classifier: %s", manifest["metrics"])
    return IntentModel(model, tokenizer, labels, manifest, bank, bank_labels, device, lexical=lexical,
                       multilingual=multilingual, encoder=encoder, sentence_head=sentence_head)


def _train_sentence_head(bank: np.ndarray, bank_labels: np.ndarray, n_labels: int, config: TrainConfig):
    """The logistic regression over the transformer's vectors of the training examples (finetune/sentence_head.py)."""
    if config.sentence_head <= 0 or len(set(bank_labels.tolist())) < 2:
        return None, {"enabled": False}
    started = time.perf_counter()
    head = SentenceHead.fit(bank, bank_labels, n_labels, config.sentence_head_c, config.seed)
    info = {"enabled": True, "share": config.sentence_head, "c": config.sentence_head_c,
            "train_seconds": round(time.perf_counter() - started, 1)}
    logger.info("Sentence head trained (%d examples): %s", len(bank), info)
    return head, info


def _lexical_wanted(coverage: np.ndarray, config: TrainConfig) -> bool:
    return config.lexical == "on" or (
        config.lexical == "auto" and needs_lexical(coverage, config.lexical_min_coverage, config.lexical_min_share))


def _readable_for_transformer(tokenizer, train_set, val_set, config: TrainConfig):
    """The examples the transformer trains and calibrates on: all of them unless a companion reads the rest."""
    coverage = token_coverage(tokenizer, [e.text for e in train_set])
    if not _lexical_wanted(coverage, config) and config.multilingual_encoder in sentence_encoder.OFF:
        return train_set, val_set
    readable_train = [e for e, c in zip(train_set, coverage) if c >= config.lexical_min_coverage]
    val_coverage = token_coverage(tokenizer, [e.text for e in val_set])
    readable_val = [e for e, c in zip(val_set, val_coverage) if c >= config.lexical_min_coverage]
    if len(readable_train) < 2 * len({e.intent for e in train_set}):
        return train_set, val_set  # too little readable text: let the transformer see everything
    logger.info("Transformer trains on the %d of %d examples its tokenizer reads; the other views on all",
                len(readable_train), len(train_set))
    return readable_train, readable_val


def _train_lexical(tokenizer, train_set, val_set, label_ids, labels, config: TrainConfig):
    """The character n-gram companion, when the data needs it (see finetune/lexical.py)."""
    train_texts = [e.text for e in train_set]
    coverage = token_coverage(tokenizer, train_texts)
    poorly_read = round(float((coverage < config.lexical_min_coverage).mean()), 4) if len(coverage) else 0.0
    wanted = _lexical_wanted(coverage, config)
    info = {"enabled": bool(wanted), "train_share_poorly_read": poorly_read, "mean_token_coverage": round(float(coverage.mean()), 4)}
    if not wanted:
        return None, info
    lexical = CharNgramClassifier.fit(train_texts, np.array([label_ids[e.intent] for e in train_set]), len(labels), config.seed)
    in_domain = SigmoidScaler(threshold=0.2)
    if val_set:
        val_texts = [e.text for e in val_set]
        val_coverage = token_coverage(tokenizer, val_texts)
        in_scope = np.array([e.intent != OUT_OF_SCOPE for e in val_set])
        poor = in_scope & (val_coverage < config.lexical_min_coverage)
        chosen = poor if poor.sum() >= 5 else in_scope
        val_probs, val_similarity = lexical.score(val_texts)
        in_domain = SigmoidScaler.fit(val_similarity[chosen], config.ood_quantile, default_threshold=0.2)
        val_y = np.array([label_ids[e.intent] for e in val_set])
        # The regression spreads its probability over many intents; a temperature fitted on
        # the held-out split (the poorly read part when there is enough) makes it a confidence.
        log_probs = np.log(val_probs + 1e-9)
        info["temperature"] = fit_temperature(log_probs[chosen], val_y[chosen])
        lex_pred = log_probs.argmax(1)
        info["val_accuracy_lexical"] = round(float((lex_pred == val_y).mean()), 4)
        if poor.any():
            info["val_accuracy_lexical_poorly_read"] = round(float((lex_pred[poor] == val_y[poor]).mean()), 4)
    info["in_domain"] = in_domain.to_dict()
    logger.info("Character n-gram companion trained (%.1f%% of training texts poorly read by the tokenizer): %s", 100 * poorly_read, info)
    return lexical, info


def _train_multilingual(encoder, train_set, val_set, label_ids, labels, config: TrainConfig):
    """The multilingual head on every training example (finetune/multilingual.py), calibrated on the held-out split.

    Returns (head, info, the held-out split's vectors for the blend).
    """
    if encoder is None:
        return None, {"enabled": False}, None
    started = time.perf_counter()
    vectors = encoder.encode([e.text for e in train_set])
    head = MultilingualHead.fit(vectors, np.array([label_ids[e.intent] for e in train_set]), len(labels), config.multilingual_c, config.seed)
    info = {"enabled": True, "encoder": encoder.name, "dimension": encoder.dimension, "temperature": 1.0,
            "in_domain": SigmoidScaler().to_dict()}
    val_vectors = None
    if val_set:
        val_y = np.array([label_ids[e.intent] for e in val_set])
        val_vectors = encoder.encode([e.text for e in val_set])
        log_probs, nearest = head.score(val_vectors)
        info["temperature"] = fit_temperature(log_probs, val_y)
        in_scope = np.array([e.intent != OUT_OF_SCOPE for e in val_set])
        info["in_domain"] = SigmoidScaler.fit(nearest[in_scope], config.ood_quantile).to_dict()
        info["val_accuracy_multilingual"] = round(float((log_probs.argmax(1) == val_y).mean()), 4)
    info["train_seconds"] = round(time.perf_counter() - started, 1)
    logger.info("Multilingual head trained (%s, %d examples): %s", encoder.name, len(train_set), info)
    return head, info, val_vectors


def _fit_blend(model, tokenizer, device, config, val_set, label_ids, labels, bank, bank_labels, temperature, knn_weight, scaler,
               lexical, lexical_info, multilingual, multilingual_info, vectors, encoded=None, sentence_head=None):
    """Blend shares fitted on every held-out message (finetune/blend.py).

    `vectors`: the multilingual encoder's for `val_set`; `encoded`: the transformer's pass over it, when one was run.
    """
    texts = [e.text for e in val_set]
    val_y = np.array([label_ids[e.intent] for e in val_set])
    if encoded is None:
        encoded = encode(model, tokenizer, texts, config.max_length, device)
    sims = encoded.embeddings @ bank.T
    probs = softmax(encoded.logits, temperature)
    if knn_weight > 0:
        probs = (1 - knn_weight) * probs + knn_weight * knn_vote(sims, bank_labels, len(labels))
    if sentence_head is not None:
        probs = sentence_head.mix(probs, encoded.embeddings, config.sentence_head)
    transformer = View(probs, scaler.probability(knn_similarity(sims, config.ood_neighbours)))
    log_probs, nearest = multilingual.score(vectors)
    multi = View(softmax(log_probs, multilingual_info["temperature"]), SigmoidScaler(**multilingual_info["in_domain"]).probability(nearest))
    lex = None
    if lexical is not None:
        lex_probs, lex_similarity = lexical.score(texts)
        lex = View(softmax(np.log(lex_probs + 1e-9), lexical_info.get("temperature", 1.0)),
                   SigmoidScaler(**lexical_info["in_domain"]).probability(lex_similarity))
    blend = Blend.fit(encoded.coverage, val_y, transformer, multi, lex, lambda p, i: combine(p, i, labels), config.lexical_min_coverage)
    final_probs, final_in = blend.mix(encoded.coverage, transformer, multi, lex)
    final = combine(final_probs, final_in, labels)
    metrics = {"val_accuracy_blend": round(float((final.argmax(1) == val_y).mean()), 4), "val_examples_all": len(val_set),
               "blend": blend.to_dict()}
    logger.info("Views blended on %d held-out messages: %s", len(val_set), metrics)
    return blend, metrics


def _same_examples(a, b) -> bool:
    return a is b or list(a) == list(b)


def _forward_seconds(model, tokenizer, texts: Sequence[str], ids: Sequence[Sequence[int]], config: TrainConfig, device) -> float:
    """Seconds the forward passes over `texts` (tokenized: `ids`) will take here, now: a pilot on a few of their batches.

    Batches are length-sorted as in `encode`; the pilot times three from the middle
    and upper part, and the rest is scaled by padded tokens.
    """
    if not texts:
        return 0.0
    batches = length_sorted_batches([len(x) for x in ids], PILOT_BATCH)
    tokens = [len(batch) * max(len(ids[i]) for i in batch) for batch in batches]
    picks = sorted({int(q * (len(batches) - 1)) for q in (0.5, 0.75, 0.9)})
    encode(model, tokenizer, [texts[i] for i in batches[picks[0]][:8]], config.max_length, device)  # pays for allocations
    started = time.perf_counter()
    for pick in picks:
        encode(model, tokenizer, [texts[i] for i in batches[pick]], config.max_length, device, batch_size=PILOT_BATCH)
    return (time.perf_counter() - started) / sum(tokens[pick] for pick in picks) * sum(tokens)


def _class_weights(y: np.ndarray, n_labels: int, power: float) -> np.ndarray:
    counts = np.bincount(y, minlength=n_labels).astype(np.float64)
    counts[counts == 0] = 1.0
    weights = (counts.max() / counts) ** power
    return weights / weights.mean()


def _epochs(config: TrainConfig, steps_per_epoch: int) -> int:
    if config.epochs != "auto":
        return int(config.epochs)
    wanted = math.ceil(config.target_steps / max(1, steps_per_epoch))
    return int(min(config.max_epochs, max(config.min_epochs, wanted)))


def _split(examples: Sequence[Example], validation: Optional[Sequence[Example]], init_from: Optional[IntentModel],
           config: TrainConfig) -> Tuple[List[Example], List[Example], Dict]:
    """Training and validation examples, and the record of the split the manifest keeps."""
    if validation is not None:
        return list(examples), [e for e in validation if e.text], {"rule": "given"}
    if init_from is not None:
        train_set, val_set = continued_split(examples, init_from.manifest["validation_split"], config.validation_fraction, config.seed)
    else:
        train_set, val_set = stratified_split(examples, config.validation_fraction, config.seed)
    return train_set, val_set, split_record(train_set, val_set, config.validation_fraction, config.seed)


def _continuable(init_from: Optional[IntentModel], validation) -> Optional[IntentModel]:
    """`init_from`, or None where its split is unknown and continuing would validate on what it trained on.

    Validation picks the best epoch and fits calibration, the kNN weight, the in-domain scaler
    and the blend; on examples the model trained on, all of them read it as better than it is.
    """
    if init_from is None or validation is not None:
        return init_from
    if not has_split_record(init_from.manifest):
        logger.warning("The model to continue from has no record of its validation split (models before kefu's "
                       "%s split): continuing would validate on examples it trained on; training from the base model", SPLIT_RULE)
        return None
    return init_from


def _optimizer(model, config: TrainConfig):
    head_names = {"classifier", "score", "pre_classifier"}
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups: Dict[tuple, list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = name.split(".")[0] in head_names
        decay = 0.0 if name.endswith(no_decay) else config.weight_decay
        lr = config.head_learning_rate if is_head else config.learning_rate
        groups.setdefault((lr, decay), []).append(param)
    return train_step.adamw([{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()])


def _epoch_batches(train_y: np.ndarray, lengths: List[int], config: TrainConfig, rng: np.random.Generator) -> List[List[int]]:
    """One epoch's batches: length-bucketed examples, or pairs of one intent when the contrastive loss trains (finetune/pairs.py)."""
    if config.contrastive > 0:
        return pair_batches(train_y, lengths, config.batch_size, rng, _shuffled_length_batches)
    return _shuffled_length_batches(lengths, config.batch_size, rng)


def _shuffled_length_batches(lengths: List[int], batch_size: int, rng: np.random.Generator) -> List[List[int]]:
    """Random order overall, similar lengths within a batch (sorted inside 50-batch chunks)."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend([list(part[i : i + batch_size]) for i in range(0, len(part), batch_size)])
    rng.shuffle(batches)
    return batches


def _accuracy_and_loss(logits: np.ndarray, val_set, label_ids) -> Tuple[float, float]:
    y = np.array([label_ids[e.intent] for e in val_set])
    probs = softmax(logits)
    loss = float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1)).mean())
    return float((logits.argmax(1) == y).mean()), loss


def _cpu_state(model) -> Dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
