"""Markdown tables, the one format every ftlit report and benchmark prints."""

from collections.abc import Callable


def markdown_table(rows: list[dict], format_value: Callable[[object], str] = str) -> str:
    """Rows (dicts) as a Markdown table whose columns are their keys in first-seen order; a missing value is
    blank."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format_value(row[column]) if column in row else "" for column in columns) + " |")
    return "\n".join(lines) + "\n"
