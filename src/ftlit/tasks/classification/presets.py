"""Dataset presets of ``--data.task``: for each named classification dataset, its text fields, labels, where its
data lives and its metrics."""

from dataclasses import dataclass, field
from typing import Literal

from ftlit.data.loading import TsvLayout
from ftlit.errors import FtlitError

#: One class per text, any number of classes per text, or a number
ProblemType = Literal["single_label", "multi_label", "regression"]

#: The Hugging Face config's name for each problem type: it picks the model's loss, and the pipeline's softmax
#: (single label) or sigmoid (multi-label)
HF_PROBLEM_TYPES: dict[str, str] = {
    "single_label": "single_label_classification",
    "multi_label": "multi_label_classification",
    "regression": "regression",
}

#: The metrics of a problem type (the first picks the best checkpoint), for tasks that do not list their own
PROBLEM_METRICS: dict[str, tuple[str, ...]] = {
    "single_label": ("accuracy", "f1"),
    "multi_label": ("macro_f1", "micro_f1", "subset_accuracy", "hamming_loss", "mean_average_precision"),
    "regression": ("pearson", "spearman", "mse", "mae"),
}


@dataclass(frozen=True)
class DatasetPreset:
    """A named classification dataset (``--data.task``): its text columns, metrics, labels and where its data lives."""

    name: str
    text_fields: tuple[str, ...]
    metrics: tuple[str, ...] | None  # the first one picks the best checkpoint; None: the problem type's
    label_names: tuple[str, ...] | None = None  # None: regression, or learnt from the data ("custom")
    hub: tuple[str, str | None] | None = None  # load_dataset(path, name)
    validation_splits: tuple[str, ...] = ("validation",)
    test_split: str | None = "test"  # None: the hub's test labels are hidden
    tsv: TsvLayout = field(default_factory=TsvLayout)
    problem_type: ProblemType | None = "single_label"  # None: from the data (custom)
    label_field: str = "label"


def task_metrics(spec: DatasetPreset, problem_type: ProblemType) -> tuple[str, ...]:
    """The metrics a run reports, the main one first: the task's own, else its problem type's; every
    classification also reports macro-F1, the figure that shows what a rare class gets."""
    metrics = spec.metrics or PROBLEM_METRICS[problem_type]
    if problem_type == "single_label" and "macro_f1" not in metrics:
        metrics = (*metrics, "macro_f1")
    return metrics


def _glue(name: str, text_fields: tuple[str, ...], label_names, metrics=("accuracy",), **kwargs) -> DatasetPreset:
    return DatasetPreset(name, text_fields, metrics, label_names, hub=("nyu-mll/glue", name), test_split=None, **kwargs)


_NLI = ("entailment", "neutral", "contradiction")
# GoEmotions' emotions.txt: label id = line number
GOEMOTIONS = (
    "admiration amusement anger annoyance approval caring confusion curiosity desire disappointment disapproval "
    "disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride realization relief "
    "remorse sadness surprise neutral"
).split()
_TWO_WAY_ENTAILMENT = ("entailment", "not_entailment")

PRESETS: dict[str, DatasetPreset] = {
    spec.name: spec
    for spec in [
        _glue(
            "cola",
            ("sentence",),
            ("unacceptable", "acceptable"),
            metrics=("matthews_corrcoef", "accuracy"),
            tsv=TsvLayout(names=("source", "label", "original_label", "sentence")),
        ),
        _glue("sst2", ("sentence",), ("negative", "positive")),
        _glue(
            "mrpc",
            ("sentence1", "sentence2"),
            ("not_equivalent", "equivalent"),
            metrics=("accuracy", "f1"),
            tsv=TsvLayout(rename={"#1 String": "sentence1", "#2 String": "sentence2", "Quality": "label"}),
        ),
        _glue(
            "qqp",
            ("question1", "question2"),
            ("not_duplicate", "duplicate"),
            metrics=("accuracy", "f1"),
            tsv=TsvLayout(rename={"is_duplicate": "label"}),
        ),
        _glue(
            "stsb",
            ("sentence1", "sentence2"),
            None,
            metrics=("pearson", "spearman"),
            problem_type="regression",
            tsv=TsvLayout(rename={"score": "label"}),
        ),
        _glue(
            "mnli",
            ("premise", "hypothesis"),
            _NLI,
            validation_splits=("validation_matched", "validation_mismatched"),
            tsv=TsvLayout(rename={"sentence1": "premise", "sentence2": "hypothesis", "gold_label": "label"}),
        ),
        _glue("qnli", ("question", "sentence"), _TWO_WAY_ENTAILMENT),
        _glue("rte", ("sentence1", "sentence2"), _TWO_WAY_ENTAILMENT),
        _glue("wnli", ("sentence1", "sentence2"), ("not_entailment", "entailment")),
        DatasetPreset(
            "imdb", ("text",), ("accuracy", "f1"), ("neg", "pos"), hub=("stanfordnlp/imdb", None), validation_splits=()
        ),
        DatasetPreset("snli", ("premise", "hypothesis"), ("accuracy",), _NLI, hub=("stanfordnlp/snli", None)),
        DatasetPreset(
            "goemotions",
            ("text",),
            None,
            GOEMOTIONS,
            hub=("google-research-datasets/go_emotions", "simplified"),
            # the official files: no header; text, comma-separated label ids, comment id; some texts CSV-quoted
            tsv=TsvLayout(names=("text", "labels", "id"), quoted=True, all_text=True),
            problem_type="multi_label",
            label_field="labels",
        ),
        DatasetPreset("custom", (), None, problem_type=None),
    ]
}


def get_preset(name: str) -> DatasetPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise FtlitError(f"Unknown task '{name}'. Known tasks: {', '.join(PRESETS)}.") from None
