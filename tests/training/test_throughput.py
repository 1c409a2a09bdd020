"""Training telemetry (samples/s, real tokens/s, padding, MFU inputs) and the speed options that feed it."""

import json

import numpy as np
import pytest
import torch

from ftlit.cli import main
from ftlit.training.callbacks import flops_per_token


def test_flops_per_token_follows_the_gpu_notes_formula():
    # DistilBERT: 42,528,770 non-embedding parameters, 6 layers, hidden 768; a real SQuAD feature has 171 tokens
    assert flops_per_token(42_528_770, 6, 768, 171) == 6 * 42_528_770 + 12 * 6 * 171 * 768


def fit(tiny_bert, files, out, *extra: str) -> dict:
    main(["fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
          "--data", "ftlit.ClassificationDataModule", "--data.train_file", str(files["train"]),
          "--data.text_fields", "[text]", "--data.max_length", "64", "--data.batch_size", "16",
          "--trainer.max_steps", "20", "--trainer.log_every_n_steps", "4", "--trainer.limit_val_batches", "0",
          "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(out), "--output_dir", str(out),
          *extra])  # fmt: skip
    return json.loads((out / "results.json").read_text())["train"]["throughput"]


@pytest.fixture(scope="module")
def mean_length(sentiment_files, tokenizer):
    texts = [json.loads(line)["text"] for line in sentiment_files["train"].read_text().splitlines()]
    return np.mean([len(ids) for ids in tokenizer(texts)["input_ids"]])


@pytest.mark.slow  # the padding of 17 batches of each kind, past the warm-up
def test_padding_to_max_length_wastes_what_grouping_saves(tiny_bert, sentiment_files, mean_length, tmp_path):
    padded = fit(tiny_bert, sentiment_files, tmp_path / "padded", "--data.pad_to_max_length", "true",
                 "--data.group_by_length", "false")  # fmt: skip
    grouped = fit(tiny_bert, sentiment_files, tmp_path / "grouped")
    rounded = fit(tiny_bert, sentiment_files, tmp_path / "rounded", "--data.pad_to_multiple_of", "8")
    assert padded["padding_fraction"] == pytest.approx(1 - mean_length / 64, abs=0.05)
    assert grouped["padding_fraction"] < 0.3 < 0.6 < padded["padding_fraction"]
    # on a CPU batches are not rounded up to a multiple of 8 (tensor cores' size): short texts would pad by it
    assert grouped["padding_fraction"] < rounded["padding_fraction"] - 0.1
    for run in (padded, grouped):
        assert run["samples_per_sec"] > 0 and run["warmup_time_s"] > 0
        assert run["tokens_per_sec"] / run["samples_per_sec"] == pytest.approx(mean_length, rel=0.15)
        assert "mfu" not in run  # no known peak FLOP/s for a CPU
    scalars = set()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for events in (tmp_path / "grouped").glob("lightning_logs/version_*/events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        scalars |= set(accumulator.Tags()["scalars"])
    assert {"throughput/samples_per_sec", "throughput/tokens_per_sec", "throughput/padding_fraction"} <= scalars


@pytest.mark.slow  # torch.compile
def test_compiled_training_exports_a_plain_model(tiny_bert, sentiment_files, tmp_path):
    from transformers import AutoModelForSequenceClassification

    # 9 steps: 3 of warm-up, a window logged at step 8, and a last partial window closed at the end of fit
    throughput = fit(tiny_bert, sentiment_files, tmp_path, "--model.compile", "true", "--data.pad_to_multiple_of",
                     "32", "--trainer.max_steps", "9")  # fmt: skip
    assert throughput["warmup_time_s"] > 0
    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "export")
    assert all(torch.isfinite(p).all() for p in exported.parameters())
