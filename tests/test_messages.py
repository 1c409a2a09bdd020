"""Messages a user can act on: every bad input ends the real `ftlit` command with one `ftlit: error: …` line naming
the place and the fix (exit code 2, no traceback, none of Lightning's tips), printed by the first process only."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftlit.cli import main
from ftlit.data.loading import first_undecodable_line, load_local_file
from ftlit.errors import FtlitError

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "configs/offline_minilm_sst2.yaml"
RANKS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")


def ftlit(*args: str) -> subprocess.CompletedProcess:
    """The installed `ftlit` command, run from the project root, offline."""
    command = Path(sys.executable).with_name("ftlit")
    env = {key: value for key, value in os.environ.items() if key not in ("FTLIT_DEBUG", *RANKS)}
    return subprocess.run(
        [str(command), *args] if command.exists() else [sys.executable, "-m", "ftlit", *args],
        cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def refused(result: subprocess.CompletedProcess) -> str:
    """The error line, after checking the run ended the way every user error ends."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "💡" not in result.stderr + result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ftlit: error: ")
    return last


def only_line(result: subprocess.CompletedProcess) -> str:
    """An argument error is all the command prints (no usage dump, no Lightning warning)."""
    last = refused(result)
    assert result.stderr.strip() == last
    assert result.stdout.strip() == ""
    return last


# ------------------------------------------------------------------------------------------------- arguments
@pytest.mark.slow  # starts an ftlit process
def test_a_yaml_syntax_error_names_the_config_file_and_line(tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text((ROOT / CONFIG).read_text().replace("  max_epochs: 3", "  max_epochs: [3"))
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if "max_epochs: [3" in text)
    message = only_line(ftlit("fit", "--config", str(config)))
    assert "YAML syntax error" in message
    assert f"config file '{config}'" in message
    assert "<unicode string>" not in message
    assert f"line {line + 1}, column" in message  # the flow sequence opened here is found unclosed on the next line
    assert f"from line {line}, column" in message


@pytest.mark.slow  # starts an ftlit process
def test_an_unknown_data_option_says_which_option_was_meant():
    message = only_line(ftlit("fit", "--config", CONFIG, "--data.max_lenght", "128"))
    assert "unknown option --data.max_lenght" in message
    assert "Did you mean --data.max_length?" in message
    assert "ftlit.ClassificationDataModule" in message


@pytest.mark.slow  # starts an ftlit process
def test_an_unknown_trainer_option_says_which_option_was_meant():
    message = only_line(ftlit("fit", "--config", CONFIG, "--trainer.max_epoks", "3"))
    assert "unknown option --trainer.max_epoks" in message
    assert "Did you mean --trainer.max_epochs?" in message


@pytest.mark.slow  # starts ftlit processes
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--model.optimizer", "torch.optim.AdamX"],
         "--model.optimizer torch.optim.AdamX: not an optimizer. Did you mean torch.optim.Adam?"),
        (["--model.optimizer", "torch.nn.Linear"],
         "--model.optimizer torch.nn.Linear: not an optimizer. For example torch.optim.AdamW."),
        (["--model.optimizer", "torch.optim.SGD", "--model.optimizer.momentun", "0.9"],
         "unknown option --model.optimizer.momentun: torch.optim.SGD has no parameter 'momentun'. Did you mean "
         "--model.optimizer.momentum?"),
        (["--model.lr_scheduler", "torch.optim.lr_scheduler.StepLR"],
         "--model.lr_scheduler torch.optim.lr_scheduler.StepLR needs --model.lr_scheduler.step_size."),
        (["--model.lr_scheduler", "torch.optim.lr_scheduler.StepLRR"],
         "--model.lr_scheduler torch.optim.lr_scheduler.StepLRR: not a schedule. Did you mean "
         "torch.optim.lr_scheduler.StepLR?"),
    ],
)  # fmt: skip
def test_an_optimizer_or_schedule_the_parser_refuses_is_said_in_one_line(options, message):
    assert message in only_line(ftlit("fit", "--config", CONFIG, *options))


@pytest.mark.slow  # a whole CLI run: the model module is made
def test_an_optimizer_value_it_refuses_is_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["fit", "--config", CONFIG, "--model.optimizer", "torch.optim.SGD", "--model.optimizer.momentum", "-1",
              "--output_dir", str(tmp_path / "out"), "--trainer.default_root_dir", str(tmp_path / "logs")])  # fmt: skip
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.strip().splitlines()[-1] == (
        "ftlit: error: --model.optimizer torch.optim.SGD refused --model.optimizer.momentum -1.0: Invalid momentum "
        "value: -1.0. `ftlit fit --model.optimizer.help torch.optim.SGD` lists its options."
    )
    assert "Traceback" not in error and not list(tmp_path.iterdir())


@pytest.mark.slow  # starts an ftlit process
def test_an_unknown_key_in_a_config_file_says_which_key_was_meant(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text((ROOT / CONFIG).read_text().replace("learning_rate:", "lerning_rate:"))
    message = only_line(ftlit("fit", "--config", str(config)))
    assert "unknown option model.init_args.lerning_rate in the config" in message
    assert "Did you mean model.init_args.learning_rate?" in message


# ------------------------------------------------------------------------------------------------- data files
def classification_fit(model: str, train: Path, dev: Path, root: Path) -> list[str]:
    return [
        "fit", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", model,
        "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]", "--data.max_length", "32",
        "--data.train_file", str(train), "--data.validation_file", str(dev), "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(root), "--output_dir", str(root / "out"),
    ]  # fmt: skip


def with_latin1_row(source: Path, target: Path, row: int) -> Path:
    """``source``'s JSON lines with row ``row`` (from 1) holding "café" in Latin-1."""
    lines = source.read_bytes().splitlines(keepends=True)
    lines[row - 1] = '{"text": "a café movie", "label": "positive"}\n'.encode("latin-1")
    target.write_bytes(b"".join(lines))
    return target


@pytest.mark.slow  # starts an ftlit process
def test_a_data_file_that_is_not_utf8_is_refused_with_its_row_and_the_fix(tiny_bert, sentiment_files, tmp_path):
    train = with_latin1_row(sentiment_files["train"], tmp_path / "train.jsonl", row=37)
    message = refused(ftlit(*classification_fit(tiny_bert, train, sentiment_files["dev"], tmp_path)))
    assert f"'{train}'" in message
    assert "row 37 (line 37), column 16" in message  # the "é" after {"text": "a caf (15 characters)
    assert "UTF-8" in message and "Save it as UTF-8" in message
    assert not (tmp_path / "lightning_logs").exists()  # refused before anything is written


@pytest.mark.slow  # starts an ftlit process
def test_a_directory_given_as_a_data_file_is_called_a_directory(tiny_bert, sentiment_files, tmp_path):
    folder = tmp_path / "some_folder"
    folder.mkdir()
    message = refused(ftlit(*classification_fit(tiny_bert, folder, sentiment_files["dev"], tmp_path)))
    assert f"'{folder}' is a directory" in message
    assert "a data file is expected" in message
    assert "not found" not in message


@pytest.mark.parametrize("gzipped", [False, True])
def test_first_undecodable_line_counts_lines_and_characters_from_1(tmp_path, gzipped):
    content = "\ufeffhead\tlabel\nnaïve\t1\n".encode() + "ok\t0\nthe café\t1\n".encode("latin-1") + b"more\t0\n"
    path = tmp_path / ("rows.tsv.gz" if gzipped else "rows.tsv")
    path.write_bytes(gzip.compress(content) if gzipped else content)
    assert first_undecodable_line(str(path)) == (4, 8)  # line 2's "ï" is valid UTF-8 and one character
    path.write_bytes(gzip.compress(b"fine\n") if gzipped else b"fine\n")
    assert first_undecodable_line(str(path)) is None


def test_a_bad_byte_at_the_start_is_found_where_the_layout_is_sniffed(tmp_path):
    # the first bytes are read to tell a header line from a row: that read must not be what fails
    path = tmp_path / "rows.tsv"
    path.write_bytes("sentence\tlabel\nvoil\xe0\t1\n".encode("latin-1"))
    with pytest.raises(FtlitError, match=r"row 1 \(line 2, after the header line\), column 5 holds a byte that is not"):
        load_local_file(str(path))


def test_a_jsonl_file_with_a_bad_byte_is_refused_before_pyarrow_loads_it(tmp_path):
    # pyarrow's JSON reader keeps invalid bytes without complaint: the error would come from whatever reads the row
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(FtlitError, match=r"row 2 \(line 2\), column 14 holds a byte that is not UTF-8"):
        load_local_file(str(path))


# ------------------------------------------------------------------------------------------------- processes
@pytest.mark.parametrize(
    ("environment", "printed"),
    [({}, True), ({"RANK": "0"}, True), ({"RANK": "3"}, False), ({"LOCAL_RANK": "1"}, False),
     ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False), ({"SLURM_PROCID": "2"}, False)],
)  # fmt: skip
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_error_is_printed_by_the_first_process_only(monkeypatch, capsys, environment, printed):
    for variable in RANKS:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        main(["fit", "--config", str(ROOT / CONFIG), "--trainer.max_epoks", "3"])
    assert stopped.value.code == 2  # the same exit code on every process
    error = capsys.readouterr().err
    assert ("ftlit: error: unknown option --trainer.max_epoks" in error) is printed
    if not printed:
        assert error == ""
