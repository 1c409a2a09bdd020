"""SQuAD evaluation speed: a full dev-sized evaluation (forward over every window + answer decoding + EM/F1), and
single-question latency of the extractive-QA pipeline (forward + decoding), with the weights in bf16 on a GPU.

Uses 10,570 real held-out questions from ${FTLIT_DATA} (whole articles), a DistilBERT-shaped model.

    python benchmarks/eval_throughput.py            # on the GPU
    python benchmarks/eval_throughput.py --tiny     # CPU smoke check: tiny model, 500 questions
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from common import print_table, qa_model_folder, squad_questions, synchronize
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, pipeline

import ftlit  # noqa: F401  (registers the extractive-question-answering pipeline)
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.decode import best_answers, decode_candidates
from ftlit.tasks.question_answering.metrics import squad_evaluate


def evaluate(model, datamodule: SquadDataModule, features, eval_set, device) -> tuple[float, dict]:
    """Forward over every window (longest first), then decode and score: the time of ftlit's validation epoch."""
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
    candidates = decode_candidates(starts, ends, eval_set.windows, len(eval_set.ids))
    answers, _ = best_answers(candidates, eval_set.windows, eval_set.contexts)
    scores = squad_evaluate({q: a.text for q, a in zip(eval_set.ids, answers)}, eval_set.references)
    return synchronize() - started, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true")
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
    features = features.add_column("feature_index", np.arange(len(features)))
    model = AutoModelForQuestionAnswering.from_pretrained(folder, dtype=dtype).to(device).eval()

    evaluate(model, datamodule, features, eval_set, device)  # warm-up: kernels, allocator
    seconds, _ = evaluate(model, datamodule, features, eval_set, device)

    qa = pipeline("extractive-question-answering", model=model, tokenizer=datamodule.tokenizer, device=device)
    latencies = []
    for question, context in list(zip(eval_set.questions, eval_set.contexts))[: args.latency_questions + 5]:
        started = synchronize()
        qa(question=question, context=context)
        latencies.append(1000 * (synchronize() - started))
    latencies = np.array(latencies[5:])  # the first calls warm up

    table = [{
        "device": f"{device} ({str(dtype).removeprefix('torch.')} weights)",
        "model": "tiny" if args.tiny else "DistilBERT-shaped",
        "questions / windows": f"{len(eval_set.ids):,} / {len(features):,}",
        "full evaluation, forward + decoding + EM/F1 (s)": round(seconds, 2),
        "windows/s": round(len(features) / seconds),
        "pipeline latency p50 / p90 (ms)": f"{np.percentile(latencies, 50):.2f} / {np.percentile(latencies, 90):.2f}",
    }]  # fmt: skip
    print_table(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
