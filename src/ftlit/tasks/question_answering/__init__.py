"""Extractive question answering on SQuAD v1.1/v2.0 and any SQuAD-format data; importing it registers the
``extractive-question-answering`` pipeline."""

from ftlit.tasks.question_answering import pipeline as _registers_extractive_qa_pipeline  # noqa: F401
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.model import QuestionAnsweringModule

__all__ = ["QuestionAnsweringModule", "SquadDataModule"]
