"""The contract between a data module and its model module: what the data hands the model, once per stage.

A data module builds it when it sets up a stage (``TransformerDataModule.contract``); the model module receives it
(``TransformerModule.accept_contract``) before it builds its head, and never reads the data module itself. A test
can evaluate a model module on a contract it builds by hand. Each task extends both classes with what its decoding
and scoring need (labels, window offsets, question ids, …).
"""

from dataclasses import dataclass
from typing import Literal

#: Lightning's evaluation loops, by the prefix of the metrics they log
EvalStage = Literal["val", "test", "predict"]


@dataclass(frozen=True)
class EvalSet:
    """One evaluated split: its size in examples (texts, questions) and in features (the windows the model sees)."""

    split: str
    num_examples: int
    num_features: int


@dataclass(frozen=True)
class DataContract:
    """What every task's model needs of its data.

    Attributes:
        max_length: tokens per feature; evaluation batches are padded to at most this.
        validation_splits: the validation sets, in dataloader order (MNLI: matched, then mismatched).
        eval_sets: the evaluated splits the current stage built, by split name.
    """

    max_length: int
    validation_splits: tuple[str, ...]
    eval_sets: dict[str, EvalSet]

    def splits(self, stage: EvalStage) -> tuple[str, ...]:
        """The splits an evaluation loop runs over, in dataloader order."""
        return {"val": self.validation_splits, "test": ("test",), "predict": ("predict",)}[stage]


def metric_suffix(stage: EvalStage, split: str, position: int) -> str:
    """How a split's metrics are named: ``val/accuracy`` for the first validation set, ``val/accuracy_mismatched``
    for MNLI's second one (``validation_1`` for a second custom file)."""
    if position == 0 or stage != "val":
        return ""
    return "_" + split.removeprefix("validation_")
