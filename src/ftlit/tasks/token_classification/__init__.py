"""Token classification (named-entity recognition) on CoNLL-2003 and any word/tag data; importing it registers the
task and the ``entity-recognition`` pipeline."""

from ftlit.registry import TaskEntry, register_task
from ftlit.tasks.token_classification.data import TokenClassificationDataModule
from ftlit.tasks.token_classification.examples import EXAMPLE_SETTINGS, example_files
from ftlit.tasks.token_classification.model import TokenClassificationModule
from ftlit.tasks.token_classification.pipeline import TASK as PIPELINE

__all__ = ["TokenClassificationDataModule", "TokenClassificationModule"]

register_task(
    TaskEntry(
        "token_classification",
        TokenClassificationModule,
        TokenClassificationDataModule,
        example_files,
        EXAMPLE_SETTINGS,
        example_request={"words": ["mary", "smith", "was", "in", "paris", "with", "nokia"]},
        pipeline=PIPELINE,
    )
)
