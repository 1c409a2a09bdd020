"""What a SQuAD data module hands its model: each evaluated split's questions, contexts, gold answers and window
offsets (all that decoding and the official scoring need), and whether SQuAD v2.0 rules apply."""

from dataclasses import dataclass

from ftlit.contract import DataContract, EvalSet
from ftlit.tasks.question_answering.decode import EvalWindows


@dataclass(frozen=True)
class QAEvalSet(EvalSet):
    """An evaluated split: its questions, their windows' offsets, and what decoding and scoring need."""

    ids: list[str]
    questions: list[str]
    contexts: list[str]
    answers: list[list[str]] | None  # gold answer texts; None for predict
    windows: EvalWindows

    @property
    def references(self) -> dict[str, list[str]]:
        return dict(zip(self.ids, self.answers))


@dataclass(frozen=True)
class QAContract(DataContract):
    version_2: bool  # SQuAD v2.0 rules: unanswerable questions, the null answer competes
    doc_stride: int  # the windows' settings, recorded in the export for inference
    max_query_length: int
