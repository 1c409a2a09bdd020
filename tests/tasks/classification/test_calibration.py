"""Calibration metrics against independent computations, temperature scaling, and the calibrated export."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss
from transformers import AutoModelForSequenceClassification, pipeline

from conftest import write_jsonl
from ftlit.cli import main as ftlit
from ftlit.errors import FtlitError
from ftlit.tasks.classification.calibration import (
    apply_temperature,
    calibration_scores,
    fit_temperature,
    reliability_bins,
)


def independent_ece(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE written out: top-label confidence in equal-width bins (lower, upper], |accuracy - confidence| weighted
    by each bin's share of the predictions."""
    confidence, correct = probabilities.max(1), probabilities.argmax(1) == labels
    ece = 0.0
    for lower, upper in zip(np.linspace(0, 1, n_bins + 1)[:-1], np.linspace(0, 1, n_bins + 1)[1:]):
        in_bin = (confidence > lower) & (confidence <= upper)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return ece


@pytest.fixture(scope="module")
def fixed_predictions():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 3)) * 2
    labels = rng.integers(0, 3, size=500)
    return torch.tensor(logits, dtype=torch.float32), torch.tensor(labels)


def test_ece_brier_and_nll_match_independent_computations(fixed_predictions):
    logits, labels = fixed_predictions
    probabilities = logits.softmax(-1).numpy()
    scores = calibration_scores(logits, labels)
    assert scores["ece"] == pytest.approx(independent_ece(probabilities, labels.numpy()), abs=1e-5)
    one_hot = np.eye(3)[labels.numpy()]
    assert scores["brier"] == pytest.approx(((probabilities - one_hot) ** 2).sum(1).mean(), abs=1e-6)
    assert scores["nll"] == pytest.approx(log_loss(labels.numpy(), probabilities, labels=[0, 1, 2]), abs=1e-5)


def test_perfect_confident_predictions_score_zero_and_sure_mistakes_score_worst():
    labels = torch.tensor([0, 1, 1, 0])
    right = torch.nn.functional.one_hot(labels, 2).float() * 50
    assert calibration_scores(right, labels) == pytest.approx({"ece": 0.0, "brier": 0.0, "nll": 0.0}, abs=1e-6)
    wrong = calibration_scores(right.flip(-1), labels)
    assert wrong["ece"] == pytest.approx(1.0) and wrong["brier"] == pytest.approx(2.0) and wrong["nll"] > 40


def test_reliability_bins_add_up_to_the_ece(fixed_predictions):
    logits, labels = fixed_predictions
    confidence, accuracy, counts = reliability_bins(logits, labels)
    assert counts.sum() == len(labels)
    weighted_gap = (counts * (accuracy - confidence).abs()).sum() / counts.sum()
    assert weighted_gap.item() == pytest.approx(calibration_scores(logits, labels)["ece"], abs=1e-5)


def over_confident(n: int = 4000, sharpness: float = 4.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z) (so z is perfectly calibrated) and over-confident logits sharpness * z."""
    generator = torch.Generator().manual_seed(0)
    calibrated = torch.randn(n, 3, generator=generator) * 1.5
    labels = torch.multinomial(calibrated.softmax(-1), 1, generator=generator).squeeze(1)
    return calibrated * sharpness, labels, calibrated


def test_temperature_scaling_recovers_the_over_confidence_and_lowers_nll_and_ece():
    logits, labels, _ = over_confident(sharpness=4.0)
    temperature = fit_temperature(logits, labels)
    assert temperature == pytest.approx(4.0, rel=0.1)
    before, after = calibration_scores(logits, labels), calibration_scores(logits / temperature, labels)
    assert after["nll"] < before["nll"] - 0.2
    assert after["ece"] < before["ece"] / 3
    assert (logits / temperature).argmax(-1).equal(logits.argmax(-1))  # predictions never change


def test_the_temperature_is_built_into_the_model_and_its_export(tiny_bert, tmp_path, tokenizer):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model.eval()
    inputs = tokenizer(["a wonderful film", "dreadful"], return_tensors="pt", padding=True)
    with torch.no_grad():
        before = model(**inputs).logits
    apply_temperature(model, 2.5)
    with torch.no_grad():
        assert model(**inputs).logits == pytest.approx(before / 2.5, abs=1e-6)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["calibration_temperature"] == 2.5
    classify = pipeline("text-classification", model=str(tmp_path), top_k=None)
    scores = {entry["label"]: entry["score"] for entry in classify(["a wonderful film"])[0]}
    expected = (before[0] / 2.5).softmax(-1)
    assert [scores["LABEL_0"], scores["LABEL_1"]] == pytest.approx(expected.tolist(), abs=1e-5)


def test_a_model_without_a_classification_layer_is_refused(tiny_bert):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model.classifier = torch.nn.Identity()
    with pytest.raises(FtlitError, match="no output layer"):
        apply_temperature(model, 2.0)


# ------------------------------------------------------------------------------------------------ through ftlit fit
@pytest.fixture(scope="module")
def calibrated_run(tiny_bert, sentiment_files, tmp_path_factory):
    run = tmp_path_factory.mktemp("calibrated")
    ftlit([
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
        "--model.learning_rate", "1e-3", "--model.calibrate", "temperature",
        "--data", "ftlit.ClassificationDataModule", "--data.train_file", str(sentiment_files["train"]),
        "--data.validation_file", str(sentiment_files["dev"]), "--data.text_fields", "[text]",
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2", "--trainer.default_root_dir", str(run),
        "--output_dir", str(run),
        "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    return run, json.loads((run / "results.json").read_text())


@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_validation_reports_ece_brier_and_nll(calibrated_run):
    _, results = calibrated_run
    metrics = results["metrics"]
    assert {"ece", "brier", "nll"} <= set(metrics)
    assert 0 <= metrics["ece"] <= 1 and 0 <= metrics["brier"] <= 2 and metrics["nll"] > 0
    assert results["model"]["calibration"]["before"]["ece"] == pytest.approx(metrics["ece"], abs=1e-6)


def test_fit_stores_the_fitted_temperature_in_the_export_and_reports_before_and_after(calibrated_run, tokenizer):
    run, results = calibrated_run
    calibration = results["model"]["calibration"]
    assert calibration["after"]["nll"] <= calibration["before"]["nll"]
    config = json.loads((run / "export" / "config.json").read_text())
    assert config["calibration_temperature"] == pytest.approx(calibration["temperature"], rel=1e-5)
    # the export's logits are the best checkpoint's divided by the temperature
    checkpoint = torch.load(results["train"]["best_checkpoint"], weights_only=True)["state_dict"]
    uncalibrated = AutoModelForSequenceClassification.from_pretrained(run / "export")
    uncalibrated.load_state_dict({k.removeprefix("model."): v for k, v in checkpoint.items()})
    exported = AutoModelForSequenceClassification.from_pretrained(run / "export")
    inputs = tokenizer(["a wonderful film", "this was dreadful"], return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = uncalibrated.eval()(**inputs).logits / calibration["temperature"]
        assert exported.eval()(**inputs).logits == pytest.approx(expected, abs=1e-5)


def test_the_reliability_diagram_goes_to_tensorboard(calibrated_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = calibrated_run
    images, scalars = set(), set()
    for events in run.glob("lightning_logs/version_0/events.out.tfevents.*"):  # fit's, then the best's validation
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0})
        accumulator.Reload()
        images |= set(accumulator.Tags()["images"])
        scalars |= set(accumulator.Tags()["scalars"])
    assert "val/reliability" in images
    assert {"val/ece", "val/brier", "val/nll"} <= scalars


def test_calibrating_a_regression_is_refused(tiny_bert, tmp_path, capsys):
    scores = write_jsonl(tmp_path / "scores.jsonl", [{"a": "one", "b": "two", "label": i / 10} for i in range(20)])
    with pytest.raises(SystemExit) as stopped:
        ftlit(["fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
               "--model.calibrate", "temperature", "--data", "ftlit.ClassificationDataModule", "--data.task", "stsb",
               "--data.train_file", str(scores), "--data.text_fields", "[a, b]",
               "--trainer.default_root_dir", str(tmp_path)])  # fmt: skip
    assert stopped.value.code == 2
    assert "calibrates the softmax of single-label classification; stsb is regression" in capsys.readouterr().err
