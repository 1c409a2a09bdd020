"""PairsDataModule: what the data modules of (query, positive[, hard negatives]) rows share (retrieval,
reranking): a file per split, read from any table with those columns or from a SQuAD-format file as pair rows
(``ftlit.data.pairs``), and a validation set held out by whole documents."""

import numpy as np
from datasets import Dataset

from ftlit.data.base import TransformerDataModule
from ftlit.data.checks import column
from ftlit.data.pairs import POSITIVE, held_out_groups, pair_rows
from ftlit.data.squad_files import load_squad_file


class PairsDataModule(TransformerDataModule):
    """Base of the data modules of pair rows. Without a validation file, ``validation_split`` of the training
    documents is held out (whole documents: SQuAD titles, else positive passages with all their queries, so no
    held-out passage was trained on).

    Args:
        train_file: CSV/TSV/JSON/JSONL/Parquet rows (gzip allowed), or a SQuAD-format file, read as each question →
            its own paragraph; what each split needs is the task's.
        validation_file: the same, scored (none: whole documents held out of train, see below).
        test_file: the same, for ``ftlit test``.
        predict_file: the rows ``ftlit predict`` answers.
        query_column: the column of queries in a table (SQuAD files need none).
        positive_column: the column of positive passages in a table.
        negatives_column: the list column of hard negatives in a table; without it, one column each (``negative``,
            ``negative_1`` …) if there are any.
        Batching, subsampling and seed: see TransformerDataModule.
    """

    column_hint = "Name yours with --data.query_column / --data.positive_column / --data.negatives_column."

    def __init__(
        self,
        model_name_or_path: str,
        max_length: int,
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        predict_file: str | None = None,
        query_column: str = "query",
        positive_column: str = "positive",
        negatives_column: str = "negatives",
        **kwargs,
    ) -> None:
        super().__init__(model_name_or_path, max_length, **kwargs)
        self.set_local_files(
            {"train": train_file, "validation": validation_file, "test": test_file, "predict": predict_file}
        )
        self.query_column, self.positive_column, self.negatives_column = query_column, positive_column, negatives_column

    def read_file(self, path: str) -> Dataset:
        return load_squad_file(path)  # a table, or the SQuAD layouts read as one row per question

    def adapt_columns(self, rows: Dataset) -> Dataset:
        return pair_rows(rows, self.query_column, self.positive_column, self.negatives_column)

    def hold_out(self, rows: Dataset) -> tuple[Dataset, Dataset]:
        """Whole documents held out (a SQuAD title, else a positive passage with all its queries)."""
        groups = column(rows, "title") if "title" in rows.column_names else column(rows, POSITIVE)
        held = held_out_groups([str(group) for group in groups], self.validation_split, self.seed)
        return rows.select(np.flatnonzero(~held)), rows.select(np.flatnonzero(held))
