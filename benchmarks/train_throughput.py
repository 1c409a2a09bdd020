"""SQuAD training throughput, side by side in one process on one device and the same real features:

(a) the Hugging Face Trainer with recipe R1's settings: fp32, features padded to 384, batch 64, DefaultDataCollator;
(b) the same Trainer with bf16=True;
(c) ftlit's default SQuAD setup (configs/squad_distilbert.yaml): dynamic padding, length-grouped batches, bf16-mixed on
    GPU, fused AdamW, loader workers; ``--compile`` adds torch.compile with lengths bucketed to multiples of 64.

Each runs ``--warmup`` steps, then is timed over ``--steps`` steps of 64 samples. Prints samples/s, real (non-pad)
tokens/s, MFU on real tokens (against the GPU's bf16 peak), peak GPU memory and the ratios, and writes them as JSON.

    python benchmarks/train_throughput.py                 # on the GPU: DistilBERT-shaped model
    python benchmarks/train_throughput.py --tiny          # CPU smoke check: a tiny model, a few steps
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch
from common import print_table, qa_model_folder, squad_questions, synchronize
from lightning import Trainer
from lightning.fabric.utilities.throughput import get_available_flops
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DefaultDataCollator,
    TrainerCallback,
    TrainingArguments,
)
from transformers import Trainer as HFTrainer

from ftlit.cli import default_precision
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.features import train_features
from ftlit.tasks.question_answering.model import QuestionAnsweringModule
from ftlit.training.callbacks import TrainingThroughput, flops_per_token

BATCH = 64


class StepTimer(TrainerCallback):
    """Times the HF Trainer's steps after warm-up, counting samples and real tokens like TrainingThroughput."""

    def __init__(self, warmup: int, real_tokens: list[int]) -> None:
        self.warmup, self.real_tokens = warmup, real_tokens
        self.started = self.seconds = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.started = synchronize()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = synchronize() - self.started
        self.steps = state.global_step - self.warmup


def hf_trainer(folder: str, features, bf16: bool, warmup: int, steps: int) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    padded = features.map(
        lambda batch: tokenizer.pad({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
                                    padding="max_length", max_length=384),
        batched=True,
    )  # fmt: skip
    model = AutoModelForQuestionAnswering.from_pretrained(folder)
    timer = StepTimer(warmup, [])
    arguments = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=BATCH, max_steps=warmup + steps,
        learning_rate=3e-5, warmup_steps=0.1, weight_decay=0.01, bf16=bf16, report_to=[], save_strategy="no",
        logging_strategy="no", seed=42, use_cpu=not torch.cuda.is_available(), dataloader_drop_last=True,
    )  # fmt: skip
    HFTrainer(model=model, args=arguments, train_dataset=padded, data_collator=DefaultDataCollator(),
              callbacks=[timer]).train()  # fmt: skip
    samples = timer.steps * BATCH
    # DefaultDataCollator and RandomSampler: on average the timed samples hold the data's mean real length
    mean_real = sum(len(ids) for ids in features["input_ids"]) / len(features)
    return {"seconds": timer.seconds, "samples": samples, "tokens": samples * mean_real}


def ftlit_run(folder: str, features, warmup: int, steps: int, compile: bool) -> dict:
    datamodule = SquadDataModule(folder, dataset=None, batch_size=BATCH, pad_to_multiple_of=64 if compile else 8)
    module = QuestionAnsweringModule(folder, compile=compile)
    throughput = TrainingThroughput(warmup_steps=warmup)
    trainer = Trainer(
        max_steps=warmup + steps, precision=default_precision(), logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[throughput], log_every_n_steps=steps,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=datamodule.loader(features, train=True))
    summary = throughput.summary
    seconds = steps * BATCH / summary["samples_per_sec"]
    return {"seconds": seconds, "samples": steps * BATCH, "tokens": summary["tokens_per_sec"] * seconds,
            "warmup_s": summary["warmup_time_s"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny model and few steps: a CPU smoke check")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks/train_throughput.json"))
    args = parser.parse_args()
    warmup = args.warmup or (2 if args.tiny else 20)
    steps = args.steps or (6 if args.tiny else 200)

    folder = qa_model_folder(args.tiny)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rows = squad_questions((warmup + steps) * BATCH + BATCH)
    features = rows.map(train_features, batched=True, remove_columns=rows.column_names,
                        fn_kwargs={"tokenizer": tokenizer, "max_length": 384, "doc_stride": 128,
                                   "max_query_length": 64})  # fmt: skip
    features = features.remove_columns(["example_index", "answer_in_window"])

    config = AutoModelForQuestionAnswering.from_pretrained(folder).config
    model = AutoModelForQuestionAnswering.from_pretrained(folder)
    non_embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    mean_real = sum(len(ids) for ids in features["input_ids"]) / len(features)
    per_token = flops_per_token(non_embedding, config.num_hidden_layers, config.hidden_size, mean_real)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak = get_available_flops(device, torch.bfloat16)

    runs = {"(a) HF Trainer, fp32, padded to 384": hf_trainer(folder, features, False, warmup, steps)}
    if torch.cuda.is_available():
        runs["(b) HF Trainer, bf16, padded to 384"] = hf_trainer(folder, features, True, warmup, steps)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    runs["(c) ftlit default" + (" + compile" if args.compile else "")] = ftlit_run(
        folder, features, warmup, steps, args.compile
    )
    table = []
    for name, run in runs.items():
        samples_per_s = run["samples"] / run["seconds"]
        tokens_per_s = run["tokens"] / run["seconds"]
        table.append({
            "run": name, "samples/s": round(samples_per_s, 1), "real tokens/s": round(tokens_per_s),
            "MFU (real tokens)": f"{100 * tokens_per_s * per_token / peak:.1f} %" if peak else "n/a (no GPU peak)",
            "3 epochs of 88,524 features": f"{3 * 88_524 / samples_per_s / 60:.1f} min",
        })  # fmt: skip
    ftlit_rate = table[-1]["samples/s"]
    for row in table[:-1]:
        table[-1][f"ftlit / {row['run'][:3]}"] = f"{ftlit_rate / row['samples/s']:.2f}x"
    if torch.cuda.is_available():
        table[-1]["peak GPU memory (GiB)"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    table[-1]["warm-up (s)"] = runs[table[-1]["run"]]["warmup_s"]
    print(f"\n{device}, {'tiny' if args.tiny else 'DistilBERT-shaped'} model, {steps} timed steps of {BATCH}, "
          f"real SQuAD features (mean {mean_real:.0f} tokens)")  # fmt: skip
    print_table(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
