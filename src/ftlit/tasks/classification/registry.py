"""Task registry: for each classification task, its text fields, labels, where its data lives and its metrics."""

from dataclasses import dataclass, field

from ftlit.data.loading import TsvLayout
from ftlit.errors import FtlitError


@dataclass(frozen=True)
class TaskSpec:
    """A classification task: its text columns, metrics, labels and where its data lives."""

    name: str
    text_fields: tuple[str, ...]
    metrics: tuple[str, ...]  # the first one picks the best checkpoint
    label_names: tuple[str, ...] | None = None  # None: regression, or learnt from the data ("custom")
    hub: tuple[str, str | None] | None = None  # load_dataset(path, name)
    validation_splits: tuple[str, ...] = ("validation",)
    test_split: str | None = "test"  # None: the hub's test labels are hidden
    tsv: TsvLayout = field(default_factory=TsvLayout)
    regression: bool = False

    @property
    def monitor(self) -> str:
        return self.metrics[0]


def _glue(name: str, text_fields: tuple[str, ...], label_names, metrics=("accuracy",), **kwargs) -> TaskSpec:
    return TaskSpec(name, text_fields, metrics, label_names, hub=("nyu-mll/glue", name), test_split=None, **kwargs)


_NLI = ("entailment", "neutral", "contradiction")
_TWO_WAY_ENTAILMENT = ("entailment", "not_entailment")

TASKS: dict[str, TaskSpec] = {
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
            regression=True,
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
        TaskSpec(
            "imdb", ("text",), ("accuracy", "f1"), ("neg", "pos"), hub=("stanfordnlp/imdb", None), validation_splits=()
        ),
        TaskSpec("snli", ("premise", "hypothesis"), ("accuracy",), _NLI, hub=("stanfordnlp/snli", None)),
        TaskSpec("custom", (), ("accuracy", "f1")),
    ]
}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise FtlitError(f"Unknown task '{name}'. Known tasks: {', '.join(TASKS)}.") from None
