"""Extractive question answering on SQuAD v1.1/v2.0 and any SQuAD-format data; importing it registers the task and
the ``extractive-question-answering`` pipeline."""

from ftlit.registry import TaskEntry, register_task
from ftlit.tasks.question_answering.data import SquadDataModule
from ftlit.tasks.question_answering.examples import EXAMPLE_SETTINGS, example_files
from ftlit.tasks.question_answering.model import QuestionAnsweringModule
from ftlit.tasks.question_answering.pipeline import TASK as PIPELINE

__all__ = ["QuestionAnsweringModule", "SquadDataModule"]

register_task(
    TaskEntry(
        "question_answering",
        QuestionAnsweringModule,
        SquadDataModule,
        example_files,
        EXAMPLE_SETTINGS,
        example_request={"question": "what is the answer?", "context": "it was quite a story and the answer is otter"},
        pipeline=PIPELINE,
    )
)
