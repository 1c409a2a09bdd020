"""Numeric settings that cannot train are refused when their object is built, naming the option, the value and the
valid range (which each option's help also states); through the CLI, as one ``ftlit: error:`` line."""

import math
import os
import subprocess

import docstring_parser
import pytest

from ftlit import ClassificationDataModule, QuestionAnsweringModule, SequenceClassificationModule, SquadDataModule
from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.settings import check_range, describe_range
from ftlit.training.lora import LoraSettings

NAN, INF = math.nan, math.inf

# (setting, values out of its range, the range as messages and help state it)
DATA = [
    ("max_length", [7, 0], "≥ 8"),
    ("batch_size", [0, -4], "≥ 1"),
    ("eval_batch_size", [0], "≥ 1, or null"),
    ("max_train_samples", [0, -1], "≥ 1, or null"),
    ("max_eval_samples", [0], "≥ 1, or null"),
    ("num_workers", [-1], "≥ 0, or null"),
    ("pad_to_multiple_of", [0], "≥ 1, or null"),
    ("validation_split", [0, 1, 1.5, -0.1, NAN], "strictly between 0 and 1"),
]
CLASSIFICATION_DATA = [*DATA, ("doc_stride", [-1], "≥ 0, or null")]
SQUAD_DATA = [
    *DATA,
    ("doc_stride", [-1], "≥ 0"),
    ("max_query_length", [0], "≥ 1"),
    ("max_misaligned_answers", [-0.1, 1.5], "between 0 and 1"),
]
MODEL = [
    ("learning_rate", [0, -1, NAN, INF], "> 0"),
    ("weight_decay", [-0.01], "≥ 0"),
    ("warmup_ratio", [-0.1, 1, 2], "≥ 0 and < 1"),
    ("warmup_steps", [-1], "≥ 0, or null"),
    ("adam_epsilon", [0, -1e-8], "> 0"),
    ("max_grad_norm", [-1, INF], "≥ 0, or null"),
    ("early_stopping_patience", [0], "≥ 1, or null"),
    ("checkpoint_every_n_steps", [0, -500], "≥ 1, or null"),
]
QA_MODEL = [*MODEL, ("n_best", [0], "≥ 1"), ("max_answer_length", [0], "≥ 1")]
LORA = [("r", [0, -8], "≥ 1"), ("alpha", [0, -16], "> 0"), ("dropout", [-0.1, 1], "≥ 0 and < 1")]


def out_of_range(table: list[tuple]) -> list:
    return [
        pytest.param(setting, value, bounds, id=f"{setting}={value}")
        for setting, values, bounds in table
        for value in values
    ]


def in_help(cls: type, setting: str) -> str:
    """The help jsonargparse shows for ``setting`` of ``cls``: its Args (or Attributes) entry, from the nearest class
    that documents it."""
    for klass in cls.__mro__:
        for param in docstring_parser.parse(klass.__doc__ or "").params:
            if param.arg_name == setting:
                return " ".join(param.description.split())
    raise AssertionError(f"{cls.__name__} does not document {setting}")


def assert_refused(build, option: str, value, bounds: str) -> None:
    with pytest.raises(FtlitError) as refused:
        build()
    assert str(refused.value) == f"{option} must be {bounds}, got {value!r}."


# (the module's class, how the command line names its options, its settings' table, other arguments it needs)
MODULES = [
    (ClassificationDataModule, "--data", CLASSIFICATION_DATA, {"text_fields": ["text"]}),
    (SquadDataModule, "--data", SQUAD_DATA, {}),
    (SequenceClassificationModule, "--model", MODEL, {}),
    (QuestionAnsweringModule, "--model", QA_MODEL, {}),
]


@pytest.mark.parametrize(
    ("cls", "prefix", "setting", "value", "bounds", "needed"),
    [
        pytest.param(cls, prefix, *case.values, needed, id=f"{cls.__name__}-{case.id}")
        for cls, prefix, table, needed in MODULES
        for case in out_of_range(table)
    ],
)
def test_modules_refuse_settings_out_of_range_and_their_help_says_the_range(cls, prefix, setting, value, bounds,
                                                                           needed):  # fmt: skip
    assert_refused(lambda: cls("unused", **needed, **{setting: value}), f"{prefix}.{setting}", value, bounds)
    assert f"({bounds}" in in_help(cls, setting)


@pytest.mark.parametrize(("setting", "value", "bounds"), out_of_range(LORA))
def test_lora_settings_refuse_values_out_of_range(setting, value, bounds):
    assert_refused(lambda: LoraSettings(**{setting: value}), f"--model.peft.{setting}", value, bounds)
    # as a config's plain dict, which the module turns into LoraSettings
    build = lambda: SequenceClassificationModule("unused", peft={setting: value})  # noqa: E731
    assert_refused(build, f"--model.peft.{setting}", value, bounds)
    assert f"({bounds}" in in_help(LoraSettings, setting)


def test_boundary_and_unset_values_are_accepted():
    ClassificationDataModule(
        "unused", text_fields=["text"], max_length=8, batch_size=1, eval_batch_size=None, max_train_samples=1,
        max_eval_samples=None, num_workers=0, pad_to_multiple_of=1, validation_split=0.999, doc_stride=0,
    )  # fmt: skip
    SquadDataModule("unused", doc_stride=0, max_query_length=1, max_misaligned_answers=0)
    SquadDataModule("unused", max_misaligned_answers=1, validation_split=1e-6)
    for max_grad_norm in (0, 0.0, None):
        SequenceClassificationModule("unused", max_grad_norm=max_grad_norm)
    SequenceClassificationModule(
        "unused", learning_rate=1e-12, weight_decay=0, warmup_ratio=0, warmup_steps=0, early_stopping_patience=1,
        checkpoint_every_n_steps=None, peft={"dropout": 0},
    )  # fmt: skip
    QuestionAnsweringModule("unused", warmup_ratio=0.999, n_best=1, max_answer_length=1, null_score_diff_threshold=-5)
    LoraSettings(r=1, alpha=1, dropout=0.0)


def test_the_helper_describes_every_kind_of_range_and_refuses_what_is_not_a_number():
    assert describe_range(0, 1) == "between 0 and 1"
    assert describe_range(0, 1, include_minimum=False, include_maximum=False) == "strictly between 0 and 1"
    assert describe_range(0, 1, include_maximum=False) == "≥ 0 and < 1"
    assert describe_range(0, 1, include_minimum=False) == "> 0 and ≤ 1"
    assert describe_range(maximum=0.5, include_maximum=False, allow_none=True) == "< 0.5, or null"
    assert describe_range() == "a finite number"
    check_range("--x", 3, minimum=3, maximum=3)
    check_range("--x", None, minimum=1, allow_none=True)
    for value in ("8", True, None, NAN, -INF):
        with pytest.raises(FtlitError, match=r"^--x must be ≥ 1, got "):
            check_range("--x", value, minimum=1)


def fit_command(model: str, files: dict, output_dir, *extra: str) -> list[str]:
    return [
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
        "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]", "--data.max_length", "32",
        "--data.train_file", str(files["train"]), "--data.validation_file", str(files["dev"]),
        "--trainer.default_root_dir", str(output_dir), "--output_dir", str(output_dir),
        "--trainer.enable_progress_bar", "false", *extra,
    ]  # fmt: skip


@pytest.mark.slow  # starts an ftlit process
def test_the_cli_refuses_a_setting_out_of_range_in_one_line_writing_nothing(tiny_bert, sentiment_files, tmp_path):
    command = ["ftlit", *fit_command(tiny_bert, sentiment_files, tmp_path, "--data.batch_size", "0")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "ftlit: error: --data.batch_size must be ≥ 1, got 0."
    assert not (tmp_path / "lightning_logs").exists() and not (tmp_path / "export").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value"), [("max_epochs", "0"), ("max_steps", "0"), ("limit_train_batches", "0"),
                          ("limit_train_batches", "0.0")]
)  # fmt: skip
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_fit_refuses_trainer_settings_that_train_no_step(option, value, tiny_bert, sentiment_files, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(fit_command(tiny_bert, sentiment_files, tmp_path, f"--trainer.{option}", value))
    assert exit_info.value.code == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"ftlit: error: --trainer.{option} {value} trains no step: it must be ")
    assert not (tmp_path / "lightning_logs").exists()


def test_the_help_states_the_valid_range(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--data.help", "ftlit.ClassificationDataModule"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # as one line: the help wraps anywhere
    assert "--data.batch_size BATCH_SIZE the global training batch size" in text
    assert "must divide by the device count) (≥ 1). (type: int, default: 32)" in text
    assert "validation set (IMDb, a lone file) (strictly between 0 and 1)." in text
