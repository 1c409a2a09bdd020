"""What ``ftlit tune`` buys on real data: a study over learning rate, warmup and epochs on MRPC
(``configs/offline_minilm_mrpc_tune.yaml``, MiniLM offline, data from ${FTLIT_DATA}) against one run of the shipped
config's defaults, on the same training budget. Prints the default's dev score, the best trial's, its parameters,
the study's wall time and how many trials the median pruner stopped; writes them as JSON.

    python benchmarks/tune_glue.py                         # 12 trials on 1,000 training pairs (a CPU: ~30 min)
    python benchmarks/tune_glue.py --train-samples 0       # the whole training set
    python benchmarks/tune_glue.py --tiny                  # smoke check: tiny model, a few rows, 3 trials
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import optuna
from common import print_table, tiny_bert_folder

from ftlit.cli import main as ftlit

TUNE_CONFIG = "configs/offline_minilm_mrpc_tune.yaml"
DEFAULT_CONFIG = "configs/offline_minilm_mrpc.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--train-samples", type=int, default=1000, help="0: the whole training set")
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/tune_glue"))
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()
    budget = ["--trainer.enable_progress_bar", "false"]
    if args.train_samples:
        budget += ["--data.max_train_samples", str(args.train_samples)]
    trials = args.trials
    if args.tiny:  # a tiny random encoder, a few rows, short runs
        budget += ["--model.model_name_or_path", tiny_bert_folder(), "--data.max_train_samples", "64",
                   "--data.max_eval_samples", "32", "--data.batch_size", "16"]  # fmt: skip
        trials = 3
    shutil.rmtree(args.output, ignore_errors=True)  # a fresh study: its wall time is the benchmark's figure

    started = time.perf_counter()
    ftlit(["fit", "--config", DEFAULT_CONFIG, *budget, "--output_dir", str(args.output / "default"),
           "--trainer.default_root_dir", str(args.output / "default")])  # fmt: skip
    default_s = time.perf_counter() - started
    default = json.loads((args.output / "default/results.json").read_text())
    metric = default["eval"]["main_metric"]

    study_dir = args.output / "study"
    started = time.perf_counter()
    ftlit(["tune", "--config", TUNE_CONFIG, "--tune.n_trials", str(trials), "--tune.output_dir", str(study_dir),
           "--tune.seed", "0", *budget])  # fmt: skip
    study_s = time.perf_counter() - started
    study = optuna.load_study(study_name="offline_minilm_mrpc_tune", storage=f"sqlite:///{study_dir / 'study.db'}")
    states = [trial.state for trial in study.trials]
    best = study.best_trial
    table = [
        {"run": "shipped defaults (lr 1e-4, warmup 0.1, 3 epochs)",
         f"dev {metric}": round(default["metrics"][metric], 4), "wall s": round(default_s, 1)},
        {"run": f"best of {len(states)} trials (trial {best.number})", f"dev {metric}": round(best.value, 4),
         "wall s": round(study_s, 1), "parameters": json.dumps({k: round(v, 6) for k, v in best.params.items()}),
         "pruned": states.count(optuna.trial.TrialState.PRUNED),
         "complete": states.count(optuna.trial.TrialState.COMPLETE)},
    ]  # fmt: skip
    print_table(table)
    (args.output / "results.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
