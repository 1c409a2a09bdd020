"""Multi-label and imbalanced labels, piece by piece: reading label sets, the metrics against scikit-learn, decision
thresholds, class weights and the balanced sampler."""

import gzip

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)
from transformers import AutoModelForSequenceClassification

from ftlit.data.sampler import WeightedSampler
from ftlit.errors import FtlitError
from ftlit.tasks.classification.contract import ClassificationContract
from ftlit.tasks.classification.labels import (
    holds_label_lists,
    label_id,
    label_names_from_values,
    label_set,
    read_label_names,
)
from ftlit.tasks.classification.metrics import build_metrics, decision_probabilities, per_label_table
from ftlit.tasks.classification.model import SequenceClassificationModule
from ftlit.tasks.classification.presets import PROBLEM_METRICS, get_preset
from ftlit.tasks.classification.thresholds import tune_thresholds
from ftlit.tasks.classification.weights import class_weights
from ftlit.training.lora import LoraSettings


# ------------------------------------------------------------------------------------------------- reading labels
@pytest.mark.parametrize(
    ("value", "labels"),
    [
        (["joy", "love"], ["joy", "love"]),
        ((3, 27), [3, 27]),
        ("3,27", ["3", "27"]),
        (" 3 , 27 ,", ["3", "27"]),
        ("27", ["27"]),
        (5, [5]),
        ("", []),
        ([], []),
        (None, None),
    ],
)
def test_a_label_set_is_read_from_a_list_a_delimited_string_or_a_lone_id(value, labels):
    assert label_set(value, ",") == labels


def test_another_delimiter_splits_only_on_itself():
    assert label_set("joy|love, kindness", "|") == ["joy", "love, kindness"]


def test_whole_numbers_read_as_floats_are_the_same_labels_and_numeric_names_are_never_indices():
    names = label_names_from_values([1.0, 2.0, 10.0, 2])
    assert names == ["1", "2", "10"]
    assert label_id(2.0, names) == 1 and label_id("10", names) == 2
    assert label_id(0, names) is None  # not "1" by position: the names are numbers
    assert label_id(0, ["anger", "joy"]) == 0  # a names file's ids


def test_a_column_of_lists_is_multi_label_data():
    assert holds_label_lists([["a"], None, ["a", "b"]])
    assert not holds_label_lists(["a", "b"]) and not holds_label_lists([None])


def test_label_names_are_read_one_per_line(tmp_path):
    path = tmp_path / "emotions.txt.gz"
    with gzip.open(path, "wt") as file:
        file.write("anger\njoy\nneutral")  # no trailing newline, as GoEmotions' emotions.txt
    assert read_label_names(str(path)) == ["anger", "joy", "neutral"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("anger\n\njoy\n", "blank line 2"), ("", "no names"), ("anger\njoy\nanger\n", "anger'\\] more than once")],
)
def test_a_names_file_that_would_shift_or_merge_ids_is_refused(tmp_path, text, message):
    path = tmp_path / "names.txt"
    path.write_text(text)
    with pytest.raises(FtlitError, match=message):
        read_label_names(str(path))


# ------------------------------------------------------------------------------------------------- metrics
def fixed_multi_label(seed: int = 0, n: int = 60, labels: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    gold = (torch.rand(n, labels, generator=generator) < 0.3).long()
    gold[:, 0] = 0  # a label without any gold example
    logits = 2 * (gold.float() - 0.5) + torch.randn(n, labels, generator=generator) * 1.5
    return logits, gold


def test_multi_label_metrics_equal_scikit_learns_at_per_label_thresholds():
    logits, gold = fixed_multi_label()
    thresholds = torch.tensor([0.5, 0.3, 0.6, 0.45, 0.7], dtype=torch.float64)
    predicted = (logits.sigmoid().double() > thresholds).long().numpy()
    decision = decision_probabilities(logits, thresholds)
    values = build_metrics(PROBLEM_METRICS["multi_label"], 5, "multi_label")(decision, gold)
    y = gold.numpy()
    assert values["macro_f1"].item() == pytest.approx(f1_score(y, predicted, average="macro", zero_division=0))
    assert values["micro_f1"].item() == pytest.approx(f1_score(y, predicted, average="micro", zero_division=0))
    assert values["subset_accuracy"].item() == pytest.approx(accuracy_score(y, predicted))
    assert values["hamming_loss"].item() == pytest.approx(hamming_loss(y, predicted))
    # average precision ranks each label's scores: the thresholds cannot change it (labels with gold examples)
    ap = [average_precision_score(y[:, i], logits[:, i].numpy()) for i in range(1, 5)]
    values = build_metrics(("mean_average_precision",), 4, "multi_label")(decision[:, 1:], gold[:, 1:])
    assert values["mean_average_precision"].item() == pytest.approx(np.mean(ap), abs=1e-5)


def test_the_per_label_table_is_scikit_learns_classification_report():
    logits, gold = fixed_multi_label(seed=1)
    decision = decision_probabilities(logits, torch.full((5,), 0.5, dtype=torch.float64))
    table = per_label_table(decision, gold, tuple("abcde"), "multi_label")
    precision, recall, f1, support = precision_recall_fscore_support(
        gold.numpy(), (logits.sigmoid() > 0.5).long().numpy(), average=None, zero_division=0
    )
    for i, name in enumerate("abcde"):
        assert table[name] == pytest.approx(
            {"precision": precision[i], "recall": recall[i], "f1": f1[i], "support": support[i]}, abs=1e-6
        )
    predicted, truth = torch.tensor([0, 2, 1, 1, 0, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 2, 0])
    single = per_label_table(predicted, truth, ("x", "y", "z"), "single_label")
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, average=None)
    assert [single[n]["f1"] for n in "xyz"] == pytest.approx(f1.tolist(), abs=1e-6)
    assert [single[n]["support"] for n in "xyz"] == support.tolist()


# ------------------------------------------------------------------------------------------------- thresholds
def known_thresholds_fixture() -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Two labels whose scores separate gold from not-gold exactly at 0.3 and at 0.8; a third without signal."""
    a_gold, a_other = [0.35, 0.4, 0.5, 0.9], [0.05, 0.1, 0.2, 0.25]
    b_gold, b_other = [0.85, 0.9, 0.95, 0.99], [0.2, 0.5, 0.7, 0.75]
    probabilities = torch.tensor([a_gold + a_other, b_gold + b_other, [0.4] * 8]).T
    gold = torch.tensor([[1] * 4 + [0] * 4, [1] * 4 + [0] * 4, [0] * 8]).T
    return probabilities, gold, [0.3, 0.8]


def test_per_label_thresholds_recover_where_each_label_separates():
    probabilities, gold, (a, b) = known_thresholds_fixture()
    thresholds = tune_thresholds(probabilities, gold, per_label=True)
    assert a - 0.05 < thresholds[0] < 0.35 and 0.75 <= thresholds[1] < 0.85  # any threshold in the gap is perfect
    assert thresholds[2] == 0.5  # no signal: the default stays
    predicted = (probabilities > thresholds).long()
    assert f1_score(gold[:, :2], predicted[:, :2], average="macro") == 1.0


def test_a_global_threshold_is_one_value_that_maximises_macro_f1():
    probabilities, gold, _ = known_thresholds_fixture()
    thresholds = tune_thresholds(probabilities[:, :2], gold[:, :2], per_label=False)
    assert thresholds[0] == thresholds[1]
    best = f1_score(gold[:, :2], (probabilities[:, :2] > thresholds).long(), average="macro")
    for t in np.arange(0.01, 1.0, 0.01):
        assert f1_score(gold[:, :2], (probabilities[:, :2] > t).long(), average="macro") <= best + 1e-12


# ------------------------------------------------------------------------------------------------- class weights
def test_balanced_weights_are_inverse_frequencies_with_mean_one():
    weights = class_weights("balanced", ("common", "rare"), (95, 5))
    assert weights.tolist() == pytest.approx([2 * 5 / 100, 2 * 95 / 100])
    assert weights.mean().item() == pytest.approx(1.0)


def test_balanced_multi_label_weights_weigh_each_labels_positives_as_its_negatives():
    weights = class_weights("balanced", ("neutral", "grief", "unseen"), (300, 10, 0), multi_label_examples=1000)
    assert weights.tolist() == pytest.approx([700 / 300, 990 / 10, 999 / 1])


def test_explicit_weights_by_order_or_by_name():
    assert class_weights([1, 3.5], ("a", "b"), None).tolist() == [1.0, 3.5]
    assert class_weights({"b": 4}, ("a", "b", "c"), None).tolist() == [1.0, 4.0, 1.0]


@pytest.mark.parametrize(
    ("setting", "message"),
    [([1.0], "1 weight\\(s\\) for 2 labels"), ({"z": 2.0}, "unknown label\\(s\\) \\['z'\\]"), ([1, -2], "positive")],
)
def test_weights_that_do_not_fit_the_labels_are_refused(setting, message):
    with pytest.raises(FtlitError, match=message):
        class_weights(setting, ("a", "b"), None)


def test_the_weighted_loss_is_the_hand_computed_weighted_cross_entropy(tiny_bert, tokenizer):
    module = SequenceClassificationModule(tiny_bert, class_weights="balanced")
    contract = ClassificationContract(
        16, ("validation",), {}, get_preset("custom"), ("a", "b"), "single_label", (95, 5)
    )
    module.accept_contract(contract)
    module.configure_model()
    batch = {**tokenizer(["good", "bad film", "fine"], padding=True, return_tensors="pt"),
             "labels": torch.tensor([0, 1, 1])}  # fmt: skip
    logits, loss = module._forward(batch)
    weights = [2 * 5 / 100, 2 * 95 / 100]
    by_hand = -sum(weights[y] * logits[i].log_softmax(-1)[y] for i, y in enumerate([0, 1, 1])) / 3
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    multi = SequenceClassificationModule(tiny_bert, class_weights=[1.0, 4.0])
    multi.accept_contract(
        ClassificationContract(16, ("validation",), {}, get_preset("custom"), ("a", "b"), "multi_label")
    )
    multi.configure_model()
    logits, loss = multi._forward({**batch, "labels": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])})
    p, y = logits.sigmoid(), torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    by_hand = -(torch.tensor([1.0, 4.0]) * y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


# ------------------------------------------------------------------------------------------------- sampling
def test_the_balanced_sampler_draws_each_class_about_equally_and_repeats_per_epoch():
    labels = np.array([0] * 950 + [1] * 50)
    counts = np.bincount(labels)
    sampler = WeightedSampler(1.0 / counts[labels], seed=3)
    drawn = labels[list(sampler)]
    assert len(drawn) == 1000 and 0.4 < drawn.mean() < 0.6  # the rare class: 5 % of the data, half of the draws
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first  # (seed, epoch) alone decide: a resumed run draws the same


def test_a_lora_checkpoint_keeps_the_regression_scale_and_the_export_puts_targets_back(tiny_bert, tokenizer, tmp_path):
    stats = (3.0, 2.0)  # targets' mean and standard deviation
    contract = ClassificationContract(16, ("validation",), {}, get_preset("custom"), None, "regression",
                                      train_target_stats=stats)  # fmt: skip
    module = SequenceClassificationModule(tiny_bert, standardize_targets=True, peft=LoraSettings(r=4))
    module.accept_contract(contract)
    module.configure_model()
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["state_dict"]["target_scale"].tolist() == [3.0, 2.0]  # with only the adapters and the head
    batch = tokenizer(["a fine film", "dull"], padding=True, return_tensors="pt")
    module.eval()
    with torch.no_grad():
        scores, _ = module._forward(dict(batch))
        module.export(tmp_path / "export", tokenizer)
        exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "export").eval()(**batch).logits
    torch.testing.assert_close(exported, scores, atol=1e-5, rtol=1e-5)  # in the targets' own units
