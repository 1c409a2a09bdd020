"""A reranker's export is a sentence-transformers CrossEncoder that scores as ``ftlit predict`` does."""

import json

import pytest
import torch
from sentence_transformers import CrossEncoder

from conftest import task_arguments, with_trained_head, write_jsonl
from ftlit.cli import main
from ftlit.registry import tasks
from ftlit.tasks.reranking.examples import reranking_rows


def test_crossencoder_loads_the_export_and_scores_its_pairs_as_ftlit_predict_does(tiny_bert, tmp_path):
    # a model with a trained head of one output, as a fit exports it
    export = with_trained_head(tiny_bert, tmp_path / "export", num_labels=1)
    rows = [{"query": row["query"], "candidates": row["candidates"]} for row in reranking_rows(4, 3, ranked=True)]
    main(["predict", *task_arguments(tasks()["reranking"]), "--model.model_name_or_path", export,
          "--data.predict_file", str(write_jsonl(tmp_path / "rows.jsonl", rows)), "--output_dir",
          str(tmp_path / "predict"), "--trainer.precision", "32-true", "--trainer.enable_progress_bar",
          "false"])  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "predict" / "predictions.jsonl").read_text().splitlines()]
    pairs = [(record["query"], one["text"]) for record in records for one in record["ranking"]]
    ours = torch.tensor([one["score"] for record in records for one in record["ranking"]])
    assert len(pairs) == sum(len(row["candidates"]) for row in rows)
    model = CrossEncoder(export, device="cpu")
    # ftlit's score is the head's logit; CrossEncoder applies a sigmoid to a one-output head by default
    logits = torch.as_tensor(model.predict(pairs, activation_fn=torch.nn.Identity()))
    assert logits.tolist() == pytest.approx(ours.tolist(), abs=1e-5)
    assert model.predict(pairs).tolist() == pytest.approx(ours.sigmoid().tolist(), abs=1e-5)
    # and each row's ranking is best first
    assert all([one["score"] for one in r["ranking"]] == sorted([one["score"] for one in r["ranking"]], reverse=True)
               for r in records)  # fmt: skip
