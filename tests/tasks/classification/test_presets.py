"""The dataset presets (``--data.task``) and the metrics each is judged by, checked against independent
implementations."""

import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    matthews_corrcoef,
    mean_absolute_error,
    mean_squared_error,
)

from ftlit.errors import FtlitError
from ftlit.tasks.classification.metrics import build_metrics
from ftlit.tasks.classification.presets import PRESETS, get_preset

GLUE = ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"]


def test_presets_cover_glue_imdb_snli_and_custom():
    assert set(PRESETS) == {*GLUE, "imdb", "snli", "goemotions", "custom"}
    assert get_preset("stsb").problem_type == "regression" and get_preset("stsb").label_names is None
    assert get_preset("goemotions").problem_type == "multi_label" and len(get_preset("goemotions").label_names) == 28
    assert get_preset("mnli").validation_splits == ("validation_matched", "validation_mismatched")
    assert get_preset("snli").label_names == ("entailment", "neutral", "contradiction")


@pytest.mark.parametrize(
    ("task", "metrics"),
    [
        ("cola", ("matthews_corrcoef", "accuracy")),
        ("mrpc", ("accuracy", "f1")),
        ("qqp", ("accuracy", "f1")),
        ("stsb", ("pearson", "spearman")),
        ("mnli", ("accuracy",)),
        ("sst2", ("accuracy",)),
    ],
)
def test_each_task_is_judged_by_its_official_metrics(task, metrics):
    assert get_preset(task).metrics == metrics


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(FtlitError, match="Unknown task 'glue'.*cola, sst2, mrpc"):
        get_preset("glue")


PREDICTED = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1]
GOLD = [1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1]


def test_classification_metrics_match_scikit_learn():
    metrics = build_metrics(("matthews_corrcoef", "accuracy", "f1"), 2, "single_label")
    values = metrics(torch.tensor(PREDICTED), torch.tensor(GOLD))
    assert values["matthews_corrcoef"].item() == pytest.approx(matthews_corrcoef(GOLD, PREDICTED), abs=1e-6)
    assert values["accuracy"].item() == pytest.approx(accuracy_score(GOLD, PREDICTED), abs=1e-6)
    assert values["f1"].item() == pytest.approx(f1_score(GOLD, PREDICTED), abs=1e-6)


def test_multiclass_accuracy_is_plain_accuracy_not_class_balanced():
    predicted, gold = [0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 2, 1]
    values = build_metrics(("accuracy", "f1"), 3, "single_label")(torch.tensor(predicted), torch.tensor(gold))
    assert values["accuracy"].item() == pytest.approx(4 / 6)
    assert values["f1"].item() == pytest.approx(f1_score(gold, predicted, average="macro"), abs=1e-6)


def test_regression_metrics_match_scipy():
    predicted = [0.5, 2.0, 3.5, 1.0, 4.9, 2.2, 3.0]
    gold = [0.0, 2.4, 3.0, 1.8, 5.0, 2.0, 4.0]
    values = build_metrics(("pearson", "spearman", "mse", "mae"), 1, "regression")(
        torch.tensor(predicted), torch.tensor(gold)
    )
    assert values["pearson"].item() == pytest.approx(pearsonr(gold, predicted).statistic, abs=1e-5)
    assert values["spearman"].item() == pytest.approx(spearmanr(gold, predicted).statistic, abs=1e-5)
    assert values["mse"].item() == pytest.approx(mean_squared_error(gold, predicted), abs=1e-5)
    assert values["mae"].item() == pytest.approx(mean_absolute_error(gold, predicted), abs=1e-5)
