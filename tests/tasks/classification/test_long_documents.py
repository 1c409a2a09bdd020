"""Long documents: windows train on their document's label and are judged per document, by aggregated logits."""

import json

import pytest
import torch
from lightning import Trainer

from conftest import sentiment_rows, with_trained_head, write_jsonl
from ftlit.tasks.classification.data import ClassificationDataModule
from ftlit.tasks.classification.metrics import aggregate_windows
from ftlit.tasks.classification.model import SequenceClassificationModule


def test_window_logits_are_averaged_or_maxed_per_document():
    document_index = torch.tensor([7, 3, 7, 7])
    logits = torch.tensor([[1.0, 0.0], [5.0, -5.0], [3.0, 2.0], [-1.0, 4.0]])
    documents, mean = aggregate_windows(document_index, logits, "mean")
    assert documents.tolist() == [3, 7]
    assert mean.tolist() == [[5.0, -5.0], [1.0, 2.0]]
    _, maximum = aggregate_windows(document_index, logits, "max")
    assert maximum.tolist() == [[5.0, -5.0], [3.0, 4.0]]


def late_label_rows(n: int, seed: int) -> list[dict]:
    """Texts of 30-40 filler words whose label is decided by one sentiment word placed after the first 24 words:
    past the 14 text tokens of a 16-token sequence."""
    return sentiment_rows(n, seed, filler_words=(30, 40), earliest=24)


@pytest.fixture(scope="module")
def late_label_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("late-label")
    return {
        "train": write_jsonl(directory / "train.jsonl", late_label_rows(400, seed=0)),
        "dev": write_jsonl(directory / "dev.jsonl", late_label_rows(120, seed=1)),
    }


def fit_and_score(tiny_bert, files, long_text: str) -> float:
    torch.manual_seed(0)
    module = SequenceClassificationModule(tiny_bert, learning_rate=2e-3, warmup_ratio=0.1)
    dm = ClassificationDataModule(
        tiny_bert, train_file=str(files["train"]), validation_file=str(files["dev"]), text_fields=["text"],
        max_length=16, long_text=long_text, doc_stride=4, batch_size=32,
    )  # fmt: skip
    trainer = Trainer(max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    return trainer.validate(module, datamodule=dm, verbose=False)[0]["val/accuracy"]


@pytest.mark.slow  # two runs of 4 epochs
def test_a_label_decided_past_max_length_is_learnt_from_windows_and_missed_by_truncation(tiny_bert, late_label_files):
    truncated = fit_and_score(tiny_bert, late_label_files, "truncate")
    windowed = fit_and_score(tiny_bert, late_label_files, "window")
    assert truncated < 0.65  # chance: the deciding word is never seen (120 documents, about half of each label)
    assert windowed > 0.9


def test_predictions_are_one_record_per_document_from_all_its_windows(tiny_bert, late_label_files, tmp_path):
    rows = [json.loads(line) for line in late_label_files["dev"].read_text().splitlines()][:10]
    predict_file = write_jsonl(tmp_path / "predict.jsonl", [{"text": row["text"]} for row in rows])
    model = with_trained_head(tiny_bert, tmp_path / "model", 2)
    module = SequenceClassificationModule(model, window_aggregation="max")
    dm = ClassificationDataModule(
        model, train_file=str(late_label_files["train"]), predict_file=str(predict_file), text_fields=["text"],
        max_length=16, long_text="window", doc_stride=4,
    )  # fmt: skip
    trainer = Trainer(logger=False, enable_progress_bar=False)
    trainer.predict(module, datamodule=dm)
    records = module.predictions
    assert [record["text"] for record in records] == [row["text"] for row in rows]
    assert len(dm.eval_features["predict"]) > 2 * len(rows)  # every document has several windows
    # each record's probabilities are the softmax of the element-wise max of its windows' logits
    windows = dm.eval_features["predict"].with_format("torch")
    module.model.eval()
    first = [i for i, d in enumerate(dm.contract.eval_sets["predict"].document_index) if d == 0]
    with torch.no_grad():
        logits = torch.stack([module.model(**{k: windows[i][k][None] for k in ("input_ids", "attention_mask",
                             "token_type_ids")}).logits[0] for i in first])  # fmt: skip
    expected = logits.max(0).values.softmax(-1)
    assert list(records[0]["probabilities"].values()) == pytest.approx(expected.tolist(), abs=1e-5)
