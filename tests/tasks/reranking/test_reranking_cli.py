"""Reranking end to end through the ftlit command: the tiny model learns to rank each query's passage above its
negatives, beyond the order its candidates came in."""

import json

import pytest

from conftest import task_arguments
from ftlit.cli import main
from ftlit.registry import tasks


@pytest.mark.slow  # 200 steps: about 40 s on 2 cores
def test_training_ranks_the_positive_above_the_retrievers_order(tiny_bert, tmp_path):
    task = tasks()["reranking"]
    files = task.example_files(tmp_path)
    main(["fit", *task_arguments(task), "--model.model_name_or_path", tiny_bert, "--data.train_file",
          str(files["train"]), "--data.validation_file", str(files["validation"]), "--model.learning_rate", "3e-3",
          "--trainer.max_epochs", "5", "--trainer.default_root_dir", str(tmp_path / "run"), "--output_dir",
          str(tmp_path / "run"), "--trainer.enable_progress_bar", "false"])  # fmt: skip
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    metrics, first = results["metrics"], results["train"]["history"][0]
    # the validation candidates come in a random order: the retriever's metrics are chance's
    assert first["val/mrr_at_10"] < metrics["mrr_at_10"]
    assert metrics["mrr_at_10"] > metrics["retriever_mrr_at_10"] + 0.04
    assert metrics["recall_at_1"] > metrics["retriever_recall_at_1"]
    # the export says where its pairs were cut, so that ftlit serve's reranker cuts them there too
    exported = json.loads((tmp_path / "run" / "export" / "config.json").read_text())
    assert exported["ftlit_inference"] == {"max_length": 32}  # (the example files' --data.max_length)
