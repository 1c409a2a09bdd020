"""A model or checkpoint of another task, other labels or without a trained head is never used to evaluate,
predict, serve or export: it is refused before any batch, naming both heads. fit may start from another task's model
(transfer learning), and says so."""

import itertools
import json
import logging

import pytest
from transformers import BertConfig

from conftest import TASKS, Collected
from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.registry import tasks
from ftlit.training.loading import Head, NewHead, check_trained_head, head_of_config, head_of_settings, task_of_head

# a task that trains the bare encoder (retrieval: AutoModel) has no head, and any model is its starting point
HEADED = [name for name, task in tasks().items() if task.model.auto_class.__name__ != "AutoModel"]
PAIRS = list(itertools.permutations(HEADED, 2))
SENTIMENT = Head("classification", ("negative", "positive"), 2, "single_label_classification")


def test_a_head_differs_in_task_number_or_names_of_labels_or_problem_type_and_unsaid_is_no_difference():
    assert not SENTIMENT.differs_from(SENTIMENT)
    assert SENTIMENT.differs_from(Head("classification", ("negative", "neutral", "positive"), 3))
    assert SENTIMENT.differs_from(Head("classification", ("entailment", "not_entailment"), 2))
    assert SENTIMENT.differs_from(Head("classification", None, 2, "multi_label_classification"))
    assert SENTIMENT.differs_from(Head("token_classification", ("negative", "positive"), 2))
    assert not Head("classification", None, 2).differs_from(SENTIMENT)  # unnamed labels (LABEL_0 …): the count
    assert not Head(None).differs_from(SENTIMENT)  # a base model: a head is added, not replaced


@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_the_head_of_every_registered_task_differs_from_every_other(ours, theirs):
    def head(task: str) -> Head:
        return head_of_settings(tasks()[task].model.auto_class, {})

    assert head(ours).task == ours and head(ours).differs_from(head(theirs))


def test_a_config_names_its_head_by_its_architecture_and_labels():
    assert head_of_config(BertConfig(architectures=["BertModel"])) == Head(None)
    assert head_of_config(BertConfig(architectures=["BertForMaskedLM"])) == Head(None)
    assert head_of_config(BertConfig()) == Head(None)  # (no architectures: nothing known)
    assert head_of_settings(tasks()["retrieval"].model.auto_class, {}) == Head(None)  # the bare encoder
    assert head_of_config(BertConfig(architectures=["BertForSequenceClassification"], num_labels=3)) == Head(
        "classification", None, 3
    )
    assert task_of_head("RobertaForTokenClassification") == "token_classification"
    labelled = BertConfig(architectures=["BertForSequenceClassification"], id2label={0: "negative", 1: "positive"},
                          problem_type="single_label_classification")  # fmt: skip
    assert head_of_config(labelled) == SENTIMENT


def test_a_head_of_another_task_or_never_trained_is_refused_naming_both():
    other = NewHead(SENTIMENT, Head("question_answering"))
    with pytest.raises(FtlitError) as refused:
        check_trained_head("qa/export", other)
    assert str(refused.value).startswith(
        "qa/export is a question_answering model, but the config asks for a classification model with the labels "
        "['negative', 'positive'] (single_label_classification): give a model trained for this task"
    )
    with pytest.raises(FtlitError, match="base lacks classifier.bias, classifier.weight: .* an untrained head"):
        check_trained_head("base", NewHead(SENTIMENT, Head(None), ["classifier.bias", "classifier.weight"]))
    check_trained_head("base", other.settled())  # restored by a checkpoint, or trained by fit

    relabelled = NewHead(SENTIMENT, Head("classification", ("entailment", "not_entailment"), 2))
    assert relabelled.announcement() == (
        "The model holds a classification model with the labels ['entailment', 'not_entailment']; this run trains it "
        "as a classification model with the labels ['negative', 'positive'] (single_label_classification)."
    )


@pytest.mark.slow  # a CLI run up to its first batch, for every pair of tasks
@pytest.mark.parametrize(("ours", "theirs"), PAIRS)
def test_predict_refuses_the_export_of_another_task_before_any_batch(ours, theirs, trained_runs, tmp_path, capsys):
    export, inputs = trained_runs[theirs][0] / "export", trained_runs[ours][1]
    training = inputs.with_name(next(p.name for p in inputs.parent.iterdir() if p.name.startswith("train")))
    with pytest.raises(SystemExit) as stopped:
        main(["predict", *TASKS[ours], "--model.model_name_or_path", str(export), "--data.train_file", str(training),
              "--data.predict_file", str(inputs), "--output_dir", str(tmp_path / "out"),
              "--trainer.enable_progress_bar", "false"])  # fmt: skip
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    if ours == "token_classification":  # (its data module reads the model's labels first, and refuses them)
        assert line.startswith(f"ftlit: error: The model '{export}' was not trained on entity tags (its labels: [")
    else:
        labelled = "" if theirs in ("question_answering", "reranking") else " with the labels"  # (no label names)
        assert line.startswith(f"ftlit: error: {export} is a {theirs} model{labelled}")
        assert f"but the config asks for a {ours} model" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # a whole CLI run
def test_fit_from_another_tasks_export_trains_a_new_head_and_says_so(trained_runs, sentiment_files, tmp_path):
    lightning, collected = logging.getLogger("lightning.pytorch"), Collected()
    lightning.addHandler(collected)
    try:
        main(["fit", *TASKS["classification"], "--model.model_name_or_path",
              str(trained_runs["question_answering"][0] / "export"), "--data.train_file", str(sentiment_files["train"]),
              "--data.validation_file", str(sentiment_files["dev"]), "--trainer.max_steps", "2",
              "--trainer.default_root_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"),
              "--trainer.enable_progress_bar", "false"])  # fmt: skip
    finally:
        lightning.removeHandler(collected)
    said = "The model holds a question_answering model; this run trains it as a classification model with the labels"
    assert [message for message in collected.messages if message.startswith(said)]
    config = json.loads((tmp_path / "out" / "export" / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]


@pytest.mark.slow  # a whole CLI run, then one to its first batch
def test_a_checkpoint_of_other_labels_is_refused_naming_both(tiny_bert, sentiment_files, tmp_path, capsys):
    def run(command: str, files: dict, *extra: str) -> None:
        main([command, *TASKS["classification"], "--model.model_name_or_path", tiny_bert, "--data.train_file",
              str(files["train"]), "--data.validation_file", str(files["dev"]), "--trainer.max_steps", "2",
              "--trainer.default_root_dir", str(tmp_path / command), "--output_dir", str(tmp_path / command / "out"),
              "--trainer.enable_progress_bar", "false", *extra])  # fmt: skip

    run("fit", sentiment_files)
    (checkpoint,) = (tmp_path / "fit").rglob("last.ckpt")
    renamed = {}  # the same number of labels, other names: the head's shapes alone would not tell
    for split in ("train", "dev"):
        rows = [json.loads(line) for line in sentiment_files[split].read_text().splitlines()]
        renamed[split] = tmp_path / f"{split}.jsonl"
        renamed[split].write_text("".join(json.dumps({**row, "label": row["label"][:3]}) + "\n" for row in rows))
    with pytest.raises(SystemExit) as stopped:
        run("validate", renamed, "--ckpt_path", str(checkpoint))
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"ftlit: error: --ckpt_path {checkpoint} is a checkpoint of a classification model with the labels "
        "['negative', 'positive'] (single_label_classification), but the config asks for a classification model "
        "with the labels ['neg', 'pos'] (single_label_classification): give a checkpoint of this task with these "
        "labels, or the config it was trained with."
    )
    assert not [path for path in (tmp_path / "validate").rglob("*") if path.is_file()]  # no results, no logs
