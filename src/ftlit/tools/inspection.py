"""``ftlit inspect``: what the configured data looks like to the model, before any training.

Per split: examples and features (windows), token lengths, how much truncation and padding the configured
``max_length`` causes, the label distribution and, for QA, the answers that truncation loses; then checks of the
special tokens, the pad id and the attention masks of real batches. A failed check makes the command exit 1.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset
from matplotlib.figure import Figure
from transformers import AutoConfig, PreTrainedTokenizerBase

from ftlit.data.base import TransformerDataModule
from ftlit.pretrained import load_pretrained
from ftlit.tools.tables import markdown_table

PERCENTILES = (50, 90, 95, 99)
CHECKED_FEATURES = 2000  # features per split whose special tokens and batches are checked


@dataclass
class SplitReport:
    split: str
    examples: int
    features: int
    lengths: np.ndarray  # tokens per example, untruncated, special tokens included
    max_length: int
    labels: dict[str, int] = field(default_factory=dict)
    answers_lost: tuple[int, int] | None = None  # (lost, answerable) for QA
    problems: list[str] = field(default_factory=list)
    label_lines: list[str] = field(default_factory=list)  # e.g. multi-label co-occurrence

    @property
    def truncated(self) -> float:
        return float((self.lengths > self.max_length).mean())

    @property
    def padded(self) -> float:
        return float((self.lengths < self.max_length).mean())

    def percentiles(self) -> dict[str, int]:
        values = np.percentile(self.lengths, PERCENTILES, method="nearest")
        return {**{f"p{p}": int(v) for p, v in zip(PERCENTILES, values)}, "max": int(self.lengths.max())}


def token_problems(dm: TransformerDataModule, features: Dataset) -> list[str]:
    """Special tokens and padding of (up to CHECKED_FEATURES) features, each of their token sequences (the data
    module's ``token_sequences``): CLS first, SEP last, the pad id nowhere in the text, and in a batch collated
    by the data module the pad id and a zero attention mask exactly on the padding."""
    tokenizer = dm.tokenizer
    features = features.select(range(min(len(features), CHECKED_FEATURES)))
    ids = dm.token_sequences(features)
    problems = []
    specials = {"CLS": (tokenizer.cls_token_id, 0), "SEP": (tokenizer.sep_token_id, -1)}
    for name, (token_id, position) in specials.items():
        wrong = sum(sequence[position] != token_id for sequence in ids) if token_id is not None else 0
        if wrong:
            where = "start with" if position == 0 else "end with"
            problems.append(f"{wrong} of {len(ids)} features do not {where} {name} (id {token_id})")
    pad = tokenizer.pad_token_id
    if pad is None:
        return [*problems, "the tokenizer has no pad token: batches cannot be padded"]
    holding_pad = sum(pad in sequence for sequence in ids)
    if holding_pad:
        problems.append(f"{holding_pad} of {len(ids)} features hold the pad id {pad} inside their text")
    inputs = [{name: row[name] for name in tokenizer.model_input_names if name in row} for row in features]
    batch_ids, mask = (tensor.numpy() for tensor in dm.padded_sequences(dm.collate(inputs)))
    lengths = np.array([len(sequence) for sequence in ids])
    positions = np.arange(mask.shape[1])
    real = (
        positions[None, :] < lengths[:, None]
        if tokenizer.padding_side == "right"
        else (positions[None, :] >= mask.shape[1] - lengths[:, None])
    )
    if not np.array_equal(mask.astype(bool), real):
        problems.append("attention masks do not mark exactly the real tokens of a padded batch")
    if not (batch_ids[~real] == pad).all():
        problems.append(f"padding positions of a batch do not hold the tokenizer's pad id {pad}")
    return problems


def config_problems(model_name_or_path: str, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """The model must agree with its tokenizer on the pad id (models use it to build position ids and masks)."""
    config = load_pretrained(AutoConfig.from_pretrained, model_name_or_path, "model config")
    model_pad = getattr(config, "pad_token_id", None)
    if model_pad is not None and tokenizer.pad_token_id is not None and model_pad != tokenizer.pad_token_id:
        return [
            f"the model config's pad_token_id {model_pad} is not the tokenizer's pad id {tokenizer.pad_token_id} "
            f"({tokenizer.pad_token})"
        ]
    return []


def split_report(dm: TransformerDataModule, split: str) -> SplitReport:
    """A built split of any task: its statistics from the data module, and the checks of its features."""
    stats = dm.split_stats(split)
    features = dm.features(split)
    problems = [*stats.problems, *token_problems(dm, features)]
    if stats.lost_answers and stats.lost_answers[0]:
        problems.append(f"{stats.lost_answers[0]} answer(s) lie outside every window: raise --data.max_length")
    return SplitReport(
        split,
        stats.examples,
        len(features),
        stats.lengths,
        dm.max_length,
        stats.labels,
        stats.lost_answers,
        problems,
        stats.label_lines,
    )


def inspect_data(dm: TransformerDataModule) -> tuple[list[SplitReport], list[str]]:
    """Reports of the splits ``fit`` uses (train and validation), and the problems that concern them all."""
    dm.setup("fit")
    reports = [split_report(dm, split) for split in dm.rows]
    return reports, config_problems(dm.model_name_or_path, dm.tokenizer)


def share(fraction: float, total: int) -> str:
    return f"{round(fraction * total)} ({fraction:.1%})"


def format_reports(reports: list[SplitReport], problems: list[str]) -> str:
    """The reports as one Markdown table, label distributions and the checks."""
    rows = []
    for report in reports:
        row = {
            "split": report.split,
            "examples": report.examples,
            "features": report.features,
            "features/example": f"{report.features / report.examples:.2f}",
            **report.percentiles(),
            f"truncated@{report.max_length}": share(report.truncated, report.examples),
            f"padded@{report.max_length}": share(report.padded, report.examples),
        }
        if report.answers_lost is not None:
            lost, answerable = report.answers_lost
            row["answers lost"] = share(lost / max(answerable, 1), answerable)
        rows.append(row)
    lines = [markdown_table(rows)]
    for report in reports:
        if report.labels:
            total = sum(report.labels.values())
            shares = ", ".join(f"{name} {count} ({count / total:.1%})" for name, count in report.labels.items())
            lines.append(f"labels {report.split}: {shares}")
        lines += [f"{report.split}: {line}" for line in report.label_lines]
    lines.append("")
    every = problems + [f"{report.split}: {problem}" for report in reports for problem in report.problems]
    if every:
        lines += [f"FAILED {problem}" for problem in every]
    else:
        lines.append(
            "ok: CLS first and SEP last in every checked feature; pad id, model config and attention masks agree"
        )
    return "\n".join(lines)


def plot_lengths(reports: list[SplitReport], path: Path) -> None:
    """A histogram of token lengths per split, with the configured max_length marked."""
    figure = Figure(figsize=(7, 4))
    axes = figure.add_subplot()
    top = max(int(report.lengths.max()) for report in reports)
    bins = np.linspace(0, top, 60)
    for report in reports:
        axes.hist(report.lengths, bins=bins, histtype="step", density=True, label=f"{report.split} ({report.examples})")
    axes.axvline(reports[0].max_length, color="black", linestyle="--", label=f"max_length {reports[0].max_length}")
    axes.set(xlabel="tokens per example (untruncated)", ylabel="share of examples", title="Token lengths")
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
