"""SQuAD evaluation speed, side by side in one process on one device and the same real features: a full dev-sized
evaluation (forward over every window, answer post-processing, EM/F1), and the single-question latency of ftlit's
extractive-QA pipeline (forward + decoding). Weights in bf16 on a GPU, fp32 on a CPU, for both systems.

Rows:

- ``ftlit``: its validation epoch: windows longest first, padded per batch, then its vectorised decoder
  (``decode_candidates`` + ``best_answers``) and the official EM/F1 (``squad_evaluate``);
- ``HF Trainer + postprocess_qa_predictions``: recipe R1 as run_qa.py runs it: the same windows padded to 384,
  ``DefaultDataCollator``, ``Trainer.predict`` at ftlit's batch size (``bf16_full_eval`` where ftlit has bf16
  weights), then utils_qa.py's per-question loop (n-best 20, max answer 30) and the same ``squad_evaluate``;
- ``HF / ftlit``: each time of the HF row over ftlit's (the speed-up), and the share of identical answers. The
  logits agree up to rounding; answers differ where HF's top-20 over all tokens (question and padding included, then
  discarded) leaves it fewer candidates than ftlit's top-20 over context tokens: a few % with random weights,
  expected near none with trained ones.

Columns: forward seconds and windows/s, post-processing seconds, EM/F1 scoring seconds, the total, EM / F1 (near 0
for these random weights: what matters is that both agree), and the pipeline's latency p50 / p90 (ftlit only).
Uses 10,570 real held-out questions from ${FTLIT_DATA} (whole articles), a DistilBERT-shaped model.

    python benchmarks/eval_throughput.py            # on the GPU
    python benchmarks/eval_throughput.py --tiny     # CPU smoke check: tiny model, 500 questions
"""

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from common import (
    hf_postprocess_qa_predictions,
    hf_validation_features,
    print_table,
    qa_model_folder,
    squad_questions,
    synchronize,
    write_json,
)
from datasets import Dataset
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DefaultDataCollator,
    PreTrainedModel,
    TrainingArguments,
    pipeline,
)
from transformers import Trainer as HFTrainer

import ftlit  # noqa: F401  (registers the extractive-question-answering pipeline)
from ftlit.tasks.question_answering.contract import QAEvalSet
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.decode import best_answers, decode_candidates
from ftlit.tasks.question_answering.metrics import squad_evaluate


@dataclass
class Evaluation:
    """One timed evaluation: seconds per stage, the answers, their EM/F1."""

    forward_s: float
    postprocess_s: float
    score_s: float
    predictions: dict[str, str]
    scores: dict[str, float]

    @property
    def total_s(self) -> float:
        return self.forward_s + self.postprocess_s + self.score_s


def timed_scoring(predictions: dict[str, str], eval_set: QAEvalSet) -> tuple[float, dict[str, float]]:
    """The official v1.1 EM/F1 (ftlit's implementation), scored the same way for both systems."""
    started = synchronize()
    scores = squad_evaluate(predictions, eval_set.references)
    return synchronize() - started, scores


def ftlit_evaluation(model: PreTrainedModel, datamodule: SquadDataModule, features: Dataset, eval_set: QAEvalSet,
                     device: torch.device) -> Evaluation:  # fmt: skip
    """Forward over every window (longest first), then decode and score: ftlit's validation epoch."""
    started = synchronize()
    length = eval_set.windows.offsets.shape[1]
    starts = np.zeros((len(features), length), np.float32)
    ends = np.zeros_like(starts)
    with torch.inference_mode():
        for batch in datamodule.loader(features):
            index = batch.pop("feature_index").numpy()
            output = model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()})
            width = min(output.start_logits.shape[1], length)  # batches may be padded past the longest window
            starts[index, :width] = output.start_logits[:, :width].float().cpu().numpy()
            ends[index, :width] = output.end_logits[:, :width].float().cpu().numpy()
    forwarded = synchronize()
    candidates = decode_candidates(starts, ends, eval_set.windows, len(eval_set.ids))
    answers, _ = best_answers(candidates, eval_set.windows, eval_set.contexts)
    predictions = {qid: answer.text for qid, answer in zip(eval_set.ids, answers)}
    decoded = synchronize()
    score_s, scores = timed_scoring(predictions, eval_set)
    return Evaluation(forwarded - started, decoded - forwarded, score_s, predictions, scores)


def hf_trainer(folder: str, batch_size: int, bf16: bool) -> HFTrainer:
    """The Trainer as run_qa.py sets it up for evaluation: a fresh fp32 load of the same weights, DefaultDataCollator
    (every window is padded to 384 already), bf16 evaluation only where ftlit evaluates in bf16."""
    arguments = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="ftlit-bench-"), per_device_eval_batch_size=batch_size,
        bf16_full_eval=bf16, use_cpu=not torch.cuda.is_available(), report_to=[], disable_tqdm=True,
    )  # fmt: skip
    model = AutoModelForQuestionAnswering.from_pretrained(folder)
    return HFTrainer(model=model, args=arguments, data_collator=DefaultDataCollator())


def hf_evaluation(trainer: HFTrainer, examples: Dataset, features: Dataset, eval_set: QAEvalSet) -> Evaluation:
    """``Trainer.predict`` over the padded windows, then utils_qa.py's post-processing, then the same scoring."""
    started = synchronize()
    output = trainer.predict(features)  # (the Trainer drops offset_mapping and example_id before batching)
    forwarded = synchronize()
    predictions = hf_postprocess_qa_predictions(examples, features, output.predictions)
    decoded = synchronize()
    score_s, scores = timed_scoring(predictions, eval_set)
    return Evaluation(forwarded - started, decoded - forwarded, score_s, predictions, scores)


def pipeline_latencies(model: PreTrainedModel, tokenizer, eval_set: QAEvalSet, device: torch.device,
                       count: int) -> np.ndarray:  # fmt: skip
    """Milliseconds per single-question call of ftlit's extractive-QA pipeline, after 5 warm-up calls."""
    qa = pipeline("extractive-question-answering", model=model, tokenizer=tokenizer, device=device)
    latencies = []
    for question, context in list(zip(eval_set.questions, eval_set.contexts))[: count + 5]:
        started = synchronize()
        qa(question=question, context=context)
        latencies.append(1000 * (synchronize() - started))
    return np.array(latencies[5:])


def row(system: str, run: Evaluation, windows: int) -> dict:
    return {
        "system": system,
        "forward (s)": round(run.forward_s, 3),
        "windows/s": round(windows / run.forward_s),
        "post-processing (s)": round(run.postprocess_s, 3),
        "EM/F1 scoring (s)": round(run.score_s, 3),
        "total (s)": round(run.total_s, 3),
        "EM / F1": f"{run.scores['exact_match']:.2f} / {run.scores['f1']:.2f}",
    }


def ratio_row(ftlit_run: Evaluation, hf_run: Evaluation) -> dict:
    """HF's time over ftlit's for each stage (> 1: ftlit is faster), and the share of identical answers."""
    same = np.mean([ftlit_run.predictions[qid] == answer for qid, answer in hf_run.predictions.items()])
    return {
        "system": "HF / ftlit",
        "forward (s)": f"{hf_run.forward_s / ftlit_run.forward_s:.2f}x",
        "post-processing (s)": f"{hf_run.postprocess_s / ftlit_run.postprocess_s:.1f}x",
        "EM/F1 scoring (s)": f"{hf_run.score_s / ftlit_run.score_s:.2f}x",
        "total (s)": f"{hf_run.total_s / ftlit_run.total_s:.2f}x",
        "EM / F1": f"{100 * same:.2f} % same answers",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny model, 500 questions: a CPU smoke check")
    parser.add_argument("--questions", type=int, default=None)
    parser.add_argument("--latency-questions", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks/eval_throughput.json"))
    args = parser.parse_args()
    questions = args.questions or (500 if args.tiny else 10570)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32

    folder = qa_model_folder(args.tiny)
    rows = squad_questions(questions, last=True)
    datamodule = SquadDataModule(folder, dataset=None, eval_batch_size=args.batch_size)
    datamodule.tokenizer = AutoTokenizer.from_pretrained(folder)
    features, eval_set = datamodule.evaluation_features("validation", rows)
    hf_features = hf_validation_features(features, eval_set.windows, eval_set.ids, datamodule.tokenizer)
    features = features.add_column("feature_index", np.arange(len(features)))
    model = AutoModelForQuestionAnswering.from_pretrained(folder, dtype=dtype).to(device).eval()

    ftlit_evaluation(model, datamodule, features, eval_set, device)  # warm-up: kernels, allocator
    ftlit_run = ftlit_evaluation(model, datamodule, features, eval_set, device)
    trainer = hf_trainer(folder, args.batch_size, bf16=dtype == torch.bfloat16)
    trainer.predict(hf_features.select(range(min(len(hf_features), 2 * args.batch_size))))  # warm-up (one shape)
    hf_run = hf_evaluation(trainer, rows, hf_features, eval_set)
    latencies = pipeline_latencies(model, datamodule.tokenizer, eval_set, device, args.latency_questions)

    setup = {
        "device": f"{device} ({str(dtype).removeprefix('torch.')} weights)",
        "model": "tiny" if args.tiny else "DistilBERT-shaped",
        "questions / windows": f"{len(eval_set.ids):,} / {len(features):,}",
        "batch size": args.batch_size,
    }
    table = [
        {**row("ftlit", ftlit_run, len(features)),
         "pipeline latency p50 / p90 (ms)": f"{np.percentile(latencies, 50):.2f} / {np.percentile(latencies, 90):.2f}"},
        row("HF Trainer + postprocess_qa_predictions", hf_run, len(features)),
        ratio_row(ftlit_run, hf_run),
    ]  # fmt: skip
    print("\n" + ", ".join(f"{name}: {value}" for name, value in setup.items()))
    print_table(table)
    write_json(args.json, {**setup, "rows": table})


if __name__ == "__main__":
    main()
