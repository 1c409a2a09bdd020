"""``ftlit <subcommand> --config X --help`` lists the options of the model and data classes X names, which
LightningCLI's own help leaves out (it shows ``--model CLASS`` alone)."""

from pathlib import Path

from ftlit.cli import main
from ftlit.commands import config_classes

QUICKSTART = str(Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml")


def test_help_with_a_config_lists_its_model_and_data_options(capsys):
    main(["fit", "--config", QUICKSTART, "--help"])
    shown = capsys.readouterr().out
    assert "[options] fit [-c CONFIG]" in shown  # the subcommand's own help first
    assert "--model.learning_rate LEARNING_RATE" in shown and "--model.checkpoints" in shown
    assert "--data.max_length MAX_LENGTH" in shown and "--data.text_fields" in shown


def test_only_a_help_with_a_readable_config_names_classes(tmp_path):
    assert config_classes(["fit", "--config", QUICKSTART, "-h"]) == {
        "model": "ftlit.SequenceClassificationModule",
        "data": "ftlit.ClassificationDataModule",
    }
    assert config_classes(["fit", "--config", QUICKSTART]) == {}  # no help asked
    assert config_classes(["fit", "--help", "--config"]) == {}  # no file named
    assert config_classes(["fit", "--config", str(tmp_path / "missing.yaml"), "--help"]) == {}


def test_a_config_of_another_shape_names_what_it_can(tmp_path):
    (tmp_path / "short.yaml").write_text("model: ftlit.QuestionAnsweringModule\ndata: 3\n")
    (tmp_path / "text.yaml").write_text("just a sentence\n")
    assert config_classes(["fit", "--config", str(tmp_path / "short.yaml"), "--help"]) == {
        "model": "ftlit.QuestionAnsweringModule"
    }
    assert config_classes(["fit", "--config", str(tmp_path / "text.yaml"), "--help"]) == {}
