"""One package per task: its pure functions, data module, contract, model module, metrics and pipeline. Importing a
task's package registers it (``ftlit.registry``); the imports below are the one line a new task adds outside its
own package."""

from ftlit.tasks import classification, question_answering, reranking, retrieval, token_classification  # noqa: F401
