"""How classification data settles its problem type and label names (the preset's, a names file, the label
columns, the training data's or the fine-tuned model's) and checks every split's labels against them: the label
half of ``ClassificationDataModule``."""

from datasets import Dataset

from ftlit.data.base import TransformerDataModule
from ftlit.data.checks import check_labels, check_learnable, column, rows_named
from ftlit.errors import FtlitError
from ftlit.tasks.classification.labels import (
    UNLABELED,
    UNLABELED_BY_PROBLEM,
    feature_label_names,
    holds_label_lists,
    is_number,
    is_plain_label,
    label_id,
    label_names_from_values,
    label_set,
    largest_target,
    read_label_names,
)
from ftlit.tasks.classification.presets import HF_PROBLEM_TYPES, DatasetPreset, ProblemType

#: Values of a 0/1 multi-hot column, and those that mean "this label applies"
MULTI_HOT = (0, 1, "0", "1", True, False, 0.0, 1.0)
ON = (1, "1", True)


class ClassificationLabels(TransformerDataModule):
    """The label rules of ``ClassificationDataModule`` (which sets these settings; see its arguments)."""

    spec: DatasetPreset
    label_field: str
    label_fields: list[str] | None
    label_delimiter: str
    label_names_file: str | None
    allow_empty_labels: bool
    problem_type: ProblemType | None
    label_names: list[str] | None

    def _label_sets_from_columns(self, split: str, rows: Dataset) -> Dataset:
        """One 0/1 column per label → the label column, as the list of each row's label names."""
        if split == "predict":
            return rows
        fields = list(self.label_fields)
        for name in fields:
            check_labels(rows[name], lambda v: v in MULTI_HOT, self.source(split), name, "0 or 1 (a multi-hot column)")

        def to_sets(batch: dict) -> dict:
            columns = [batch[name] for name in fields]
            return {self.label_field: [[n for n, v in zip(fields, values) if v in ON] for values in zip(*columns)]}

        return rows.map(to_sets, batched=True, desc="Reading label columns")

    def _check_label_set_members(self, split: str, rows: Dataset) -> None:
        """Each label of a label set is a name or a whole-number id: nested lists, mappings and fractions are not."""
        check_labels(
            rows[self.label_field],
            lambda v: all(is_plain_label(label) for label in label_set(v, self.label_delimiter) or []),
            self.source(split),
            self.label_field,
            "a list of label names or ids (or one delimited string of them)",
        )

    def _refuse_label_lists(self, split: str, rows: Dataset) -> None:
        """Lists of labels in a single-label or regression task: one label per text is expected."""
        lists = [i for i, value in enumerate(rows[self.label_field]) if isinstance(value, list | tuple)]
        if lists:
            fix = (
                "use --data.problem_type multi_label"
                if self.spec.name == "custom"
                else (f"{self.spec.name} takes one label per text")
            )
            raise FtlitError(
                f"{self.source(split)}: column {self.label_field!r} holds lists of labels ({rows_named(lists)}), "
                f"but this is a {self.problem_type} task: {fix}."
            )

    def _training_rows(self, raw: dict[str, Dataset]) -> Dataset | None:
        """The training rows, loaded now if this stage does not use them (validate after fit); None without any."""
        if "train" in raw:
            return raw["train"]
        if self.local_files["train"] or (self.hub and not self.uses_local_files):
            return self.load_split("train")
        return None

    def _resolve_problem_type(self, raw: dict[str, Dataset]) -> ProblemType:
        """A custom task's problem type: lists of labels in the training data make it multi-label; without
        training data (evaluating or predicting with a fine-tuned model) it is the one the model was trained for."""
        if self.problem_type is not None:
            return self.problem_type
        train = self._training_rows(raw)
        if train is not None:
            return "multi_label" if holds_label_lists(train[self.label_field]) else "single_label"
        trained = getattr(self.model_config, "problem_type", None)
        by_hf_name = {hf: ours for ours, hf in HF_PROBLEM_TYPES.items()}
        return by_hf_name.get(trained, "single_label")

    def _resolve_label_names(self, raw: dict[str, Dataset]) -> list[str] | None:
        if self.problem_type == "regression":
            return None
        if self.spec.label_names:
            return list(self.spec.label_names)
        if self.label_fields:
            return list(self.label_fields)
        if self.label_names_file:
            return read_label_names(self.label_names_file)
        if self.label_names is not None:  # resolved by an earlier stage (fit, then validate of the best checkpoint)
            return self.label_names
        train = self._training_rows(raw)
        if train is not None:
            declared = feature_label_names(train, self.label_field)
            if declared:
                return declared
            values = train[self.label_field]
            if self.problem_type == "multi_label":
                values = [label for value in values for label in label_set(value, self.label_delimiter) or []]
            names = label_names_from_values(values)
            if not names:
                raise FtlitError(f"{self.source('train')}: no labels in column {self.label_field!r}: nothing to learn.")
            return names
        # No training data (validate/test/predict of a custom task): the labels the model was trained with
        config = self.model_config
        names = [config.id2label[i] for i in range(config.num_labels)]
        if names == [f"LABEL_{i}" for i in range(config.num_labels)]:
            raise FtlitError(
                "A custom task needs its label names: give --data.train_file, or a fine-tuned model (an ftlit "
                "export) as --model.model_name_or_path."
            )
        return names

    def _check_learnable(self, rows: Dataset) -> None:
        """Two classes, label sets or target values at least in the training data (the labels already checked)."""
        names, unlabeled = self.label_names, UNLABELED_BY_PROBLEM[self.problem_type]
        values = [value for value in column(rows, self.label_field) if value not in unlabeled]
        if self.problem_type == "regression":
            check_learnable(map(float, values), self.source("train"), "target")
        elif self.problem_type == "multi_label":
            sets = ({names[label_id(label, names)] for label in label_set(v, self.label_delimiter)} for v in values)
            check_learnable((tuple(sorted(labels)) for labels in sets), self.source("train"), "label set")
        else:
            check_learnable((names[label_id(value, names)] for value in values), self.source("train"), "label")

    def _check_labels(self, split: str, rows: Dataset) -> None:
        values = rows[self.label_field]
        if self.problem_type == "regression":
            check_labels(values, is_number, self.source(split), self.label_field, "a number (a regression score)")
            limit = largest_target(self.batch_size)
            check_labels(
                values,
                lambda value: abs(float(value)) <= limit,
                self.source(split),
                self.label_field,
                f"a target within ±{limit:.2g}: the squared error of a larger one, summed over a batch of "
                f"{self.batch_size}, overflows float32 and the loss becomes inf. Rescale the targets (e.g. divide by a "
                "power of ten, or take their logarithm)",
            )
            return
        if self.problem_type == "multi_label":
            self._check_label_sets(split, values)
            return
        names = self.label_names
        if self.spec.label_names:
            expected = f"one of the {self.spec.name} labels {names} or their ids 0-{len(names) - 1}"
        else:  # learnt from the training data (or from the fine-tuned model)
            expected = f"a label of the training data: {names}"
        check_labels(
            values,
            lambda v: v in UNLABELED or label_id(v, names) is not None,
            self.source(split),
            self.label_field,
            expected,
        )

    def _check_label_sets(self, split: str, values: list) -> None:
        """Every multi-label value is a set of known labels (names or ids), empty only when allowed."""
        names, delimiter, source = self.label_names, self.label_delimiter, self.source(split)
        sets = [label_set(value, delimiter) for value in values]
        if not self.allow_empty_labels:
            empty = [i for i, labels in enumerate(sets) if labels == []]
            if empty:
                columns = f"columns {list(self.label_fields)}" if self.label_fields else f"column {self.label_field!r}"
                raise FtlitError(
                    f"{source}: {len(empty)} text(s) have no label ({rows_named(empty)}; {columns}). Give each text "
                    "its labels, or allow texts without any with --data.allow_empty_labels true."
                )
        origin = f"the names file '{self.label_names_file}'" if self.label_names_file else "the label names"
        expected = (
            f"labels among {origin} ({len(names)}: {names[:8]}{' …' if len(names) > 8 else ''}) or their ids "
            f"0-{len(names) - 1}, several separated by {delimiter!r} (--data.label_delimiter) or as a list"
        )
        check_labels(
            values,
            lambda v: all(label_id(label, names) is not None for label in label_set(v, delimiter) or []),
            source,
            self.label_field,
            expected,
        )
