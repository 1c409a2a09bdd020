"""What a command says when it ends: its main scores and where its files are, in a few lines a person reads."""

from pathlib import Path

#: How many metrics the closing table shows besides the main one (the rest are in results.json)
SHOWN_METRICS = 5


def score_lines(metrics: dict[str, float], main_metric: str) -> list[tuple[str, str]]:
    """(name, value) rows: the main metric first and marked, then the others in the task's order, at most
    ``SHOWN_METRICS`` of them."""
    rows = []
    if main_metric in metrics:
        rows.append((f"{main_metric} (main)", f"{metrics[main_metric]:.4f}"))
    others = [name for name in metrics if name != main_metric]
    rows += [(name, f"{metrics[name]:.4f}") for name in others[:SHOWN_METRICS]]
    if len(others) > SHOWN_METRICS:
        rows.append(("…", f"{len(others) - SHOWN_METRICS} more in results.json"))
    return rows


def closing_summary(stage: str, results: dict, files: dict[str, Path | str | None]) -> str:
    """The lines that end ``ftlit fit|validate|test``: the scores of ``results`` (a results.json document) on its
    evaluated split, and ``files`` (what → where; None: not written) as a two-column table."""
    metrics = {name: value for name, value in results.get("metrics", {}).items() if isinstance(value, int | float)}
    evaluation = results.get("eval", {})
    split, count = evaluation.get("split"), evaluation.get("num_examples")
    heading = f"{stage}: " + (f"scores on {split} ({count:,} examples)" if split and count else "scores")
    train_time = results.get("train", {}).get("train_time_s")
    if train_time is not None:
        heading += f", after {train_time:,.1f} s of training"
    rows = score_lines(metrics, evaluation.get("main_metric", "")) or [("(none)", "nothing was evaluated")]
    rows += [(what, str(where)) for what, where in files.items() if where]
    width = max(len(name) for name, _ in rows)
    return "\n".join([heading, *(f"  {name:<{width}}  {value}" for name, value in rows)])
