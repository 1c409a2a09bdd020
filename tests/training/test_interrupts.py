"""A stop ends every command honestly, whatever it is doing: SIGINT with exit code 130, SIGTERM with 143, one line
saying what was kept and how to go on, nothing half-written, and a fit that had started training continued by
``--ckpt_path last``. Each phase is reached by sending the signal from the function that does its work."""

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest
import torch

from conftest import TASKS, fit_example
from ftlit import SequenceClassificationModule, cli
from ftlit.cli import main
from ftlit.data.base import TransformerDataModule
from ftlit.errors import TrainingInterrupted
from ftlit.registry import tasks
from ftlit.tools import export as export_tool
from ftlit.tools.prediction import Predictor
from ftlit.training import module
from ftlit.training.interrupts import deferred, keep, stops_handled
from ftlit.training.module import TransformerModule
from ftlit.training.outputs import write_json

WROTE_NOTHING = "this command wrote nothing; run the same command again."


def signal_at(monkeypatch, owner: object, name: str, signum: int, when=lambda *args: True) -> None:
    """``owner.name`` sends ``signum`` to this process the first time it is called with arguments ``when``
    accepts, then does its work (a handler that stops at once stops it there)."""
    original = getattr(owner, name)
    sent = []

    def sending(*args, **kwargs):
        if not sent and when(*args):
            sent.append(signum)
            os.kill(os.getpid(), signum)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, sending)


def stopped_by(signum: int, args: list[str], capsys) -> str:
    """The one ``ftlit: stopped:`` line of a command that the signal ends, with its exit code and no traceback."""
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 128 + signum
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"ftlit: stopped: Interrupted by {signal.Signals(signum).name}")
    return line


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*")} if folder.exists() else set()


# ----------------------------------------------------------------------------------------------- the mechanism
def test_a_signal_while_outputs_are_written_waits_for_them_then_says_they_are_complete():
    done = []
    with stops_handled(), pytest.raises(TrainingInterrupted) as stop, deferred("the outputs were written first"):
        os.kill(os.getpid(), signal.SIGTERM)
        with deferred():  # (one inside another: held back still)
            done.append("first file")
        done.append("second file")
    assert done == ["first file", "second file"] and stop.value.exit_code == 143
    assert str(stop.value) == "Interrupted by SIGTERM: the outputs were written first."


def test_a_signal_while_a_failing_block_runs_is_the_stop_said_with_what_was_kept_before():
    with stops_handled(), pytest.raises(TrainingInterrupted) as stop:
        keep("the checkpoint is kept")
        with deferred("the outputs were written first"):
            os.kill(os.getpid(), signal.SIGINT)
            raise OSError("No space left on device")
    assert stop.value.exit_code == 130
    assert str(stop.value) == "Interrupted by SIGINT: the checkpoint is kept."
    assert isinstance(stop.value.__context__, OSError)  # (why the block ended, not lost)


def test_a_command_starts_saying_it_wrote_nothing_and_restores_the_handlers_it_found():
    before = signal.getsignal(signal.SIGTERM)
    keep("something from an earlier command")
    with stops_handled(), pytest.raises(TrainingInterrupted, match=f"^Interrupted by SIGTERM: {WROTE_NOTHING}$"):
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_json_file_stopped_while_written_leaves_the_earlier_one_and_no_partial_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    write_json(path, [{"id": 0}], lines=True)

    def records():
        yield {"id": 1}
        os.kill(os.getpid(), signal.SIGINT)
        yield {"id": 2}

    with stops_handled(), pytest.raises(TrainingInterrupted):
        write_json(path, records(), lines=True)
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.jsonl"]
    assert path.read_text() == '{"id": 0}\n'


# ----------------------------------------------------------------------------------------------- fit
def fit_args(model: str, files: dict, root: Path, *extra: str) -> list[str]:
    return ["fit", *TASKS["classification"], "--model.model_name_or_path", model,
            "--data.train_file", str(files["dev"]), "--data.validation_file", str(files["dev"]),
            "--model.learning_rate", "1e-3", "--trainer.max_steps", "4", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(root / "runs"), "--output_dir", str(root / "out"), *extra]  # fmt: skip


def is_validating(fitting: bool, sanity_checking: bool = False):
    """``when`` for a validation step: of fit's own validations (or the evaluation after fit), in the sanity check
    or not."""
    return lambda self, *args: (
        (self.trainer.state.fn == "fit") == fitting and (self.trainer.sanity_checking == sanity_checking)
    )


BEFORE_THE_FIRST_STEP = {
    "loading": (TransformerDataModule, "setup", lambda *args: True),
    "sanity check": (TransformerModule, "validation_step", is_validating(fitting=True, sanity_checking=True)),
}


@pytest.mark.slow  # whole CLI runs
@pytest.mark.parametrize(("phase", "signum"), [("loading", signal.SIGTERM), ("sanity check", signal.SIGINT)])
def test_a_fit_stopped_before_its_first_step_leaves_nothing(phase, signum, tiny_bert, sentiment_files, tmp_path,
                                                             monkeypatch, capsys):  # fmt: skip
    owner, name, when = BEFORE_THE_FIRST_STEP[phase]
    signal_at(monkeypatch, owner, name, signum, when)
    line = stopped_by(signum, fit_args(tiny_bert, sentiment_files, tmp_path), capsys)
    assert line.endswith(f": {WROTE_NOTHING}")
    assert files_under(tmp_path) == set()  # no empty log or output folder


def last_step(tmp_path: Path) -> int:
    (last,) = tmp_path.glob("runs/lightning_logs/version_*/checkpoints/last*.ckpt")  # (one: no last-v1.ckpt)
    return torch.load(last, weights_only=True)["global_step"]


@pytest.mark.slow  # whole CLI runs
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_fit_stopped_in_a_validation_between_steps_saves_at_the_next_step_and_continues(
    signum, tiny_bert, sentiment_files, tmp_path, monkeypatch, capsys
):
    args = fit_args(tiny_bert, sentiment_files, tmp_path, "--trainer.val_check_interval", "2")
    signal_at(monkeypatch, TransformerModule, "validation_step", signum, is_validating(fitting=True))
    line = stopped_by(signum, args, capsys)
    checkpoint = next(tmp_path.glob("runs/lightning_logs/version_0/checkpoints/last.ckpt"))
    assert line.endswith(f"at step 3: saved a resumable checkpoint to {checkpoint}. Resume with the same command "
                         "and --ckpt_path last.")  # fmt: skip
    assert not (tmp_path / "out").exists()
    monkeypatch.undo()
    saved = checkpoint.read_bytes()
    signal_at(monkeypatch, TransformerDataModule, "setup", signum)  # the resumed run, while its data loads
    assert stopped_by(signum, [*args, "--ckpt_path", "last"], capsys).endswith(f": {WROTE_NOTHING}")
    assert checkpoint.read_bytes() == saved
    monkeypatch.undo()
    main([*args, "--ckpt_path", "last"])
    assert last_step(tmp_path) == 4 and (tmp_path / "out/results.json").is_file()


@pytest.mark.slow  # a whole CLI run
def test_a_second_ctrl_c_in_a_step_stops_at_once_with_130(tiny_bert, sentiment_files, tmp_path, monkeypatch, capsys):
    step = TransformerModule.training_step

    def pressed_twice(self, *args):
        os.kill(os.getpid(), signal.SIGINT)  # noted: the step would finish
        os.kill(os.getpid(), signal.SIGINT)
        return step(self, *args)

    monkeypatch.setattr(TransformerModule, "training_step", pressed_twice)
    line = stopped_by(signal.SIGINT, fit_args(tiny_bert, sentiment_files, tmp_path), capsys)
    assert line.endswith(": a second one stops at once, mid-step, saving nothing; no checkpoint was saved yet: run the "
                         "same command again.")  # fmt: skip
    assert files_under(tmp_path) == set()  # (in the first step)


AFTER_TRAINING = {
    "last validation": (TransformerModule, "validation_step", lambda self, *args: self.trainer.global_step == 4),
    "closing validation": (TransformerModule, "validation_step", is_validating(fitting=False)),
    "finishing": (SequenceClassificationModule, "finish_training", lambda *args: True),  # (calibration)
}


@pytest.mark.slow  # whole CLI runs
@pytest.mark.parametrize(
    ("phase", "signum"),
    [("last validation", signal.SIGINT), ("closing validation", signal.SIGTERM), ("finishing", signal.SIGTERM)],
)
def test_a_fit_stopped_after_training_keeps_it_and_last_only_validates_and_exports(
    phase, signum, tiny_bert, sentiment_files, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr("ftlit.cli.live_weights_were_scored", lambda *args: False)  # the best is validated again
    owner, name, when = AFTER_TRAINING[phase]
    signal_at(monkeypatch, owner, name, signum, when)
    args = fit_args(tiny_bert, sentiment_files, tmp_path)
    line = stopped_by(signum, args, capsys)
    checkpoint = next(tmp_path.glob("runs/lightning_logs/version_0/checkpoints/last.ckpt"))
    assert line.endswith(f": training had finished and is saved in {checkpoint}; run the same command with "
                         "--ckpt_path last: it only validates and exports.")  # fmt: skip
    assert files_under(tmp_path / "out") == set() and last_step(tmp_path) == 4
    monkeypatch.undo()
    main([*args, "--ckpt_path", "last"])
    assert "Resuming from" in capsys.readouterr().out and last_step(tmp_path) == 4  # no step more
    assert {path.name for path in (tmp_path / "out").iterdir()} >= {"export", "results.json"}


@pytest.mark.slow  # a whole CLI run
@pytest.mark.parametrize(("owner", "name"), [(module, "write_export"), (cli, "write_json")])
def test_a_fit_stopped_while_it_writes_its_outputs_completes_them_first(owner, name, tiny_bert, sentiment_files,
                                                                         tmp_path, monkeypatch, capsys):  # fmt: skip
    signal_at(monkeypatch, owner, name, signal.SIGTERM)
    line = stopped_by(signal.SIGTERM, fit_args(tiny_bert, sentiment_files, tmp_path), capsys)
    out = tmp_path / "out"
    assert line.endswith(f": the outputs in {out} were written first, complete: nothing is left to do.")
    assert sorted(path.name for path in out.iterdir()) == ["export", "results.json"]  # no .partial left


# ----------------------------------------------------------------------------------------------- the other commands
@pytest.fixture(scope="module")
def run(tiny_bert, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A classification run of 2 steps (its output folder, with export/ and results.json), and its files."""
    return fit_example(tasks()["classification"], tiny_bert, tmp_path_factory.mktemp("classification"), steps=2)


def command_args(command: str, run: tuple[Path, dict[str, Path]], tmp_path: Path) -> list[str]:
    folder, files = run
    model = [*TASKS["classification"], "--model.model_name_or_path", str(folder / "export"),
             "--trainer.enable_progress_bar", "false"]  # fmt: skip
    return {
        "validate": ["validate", *model, "--data.validation_file", str(files["validation"])],
        "test": ["test", *model, "--data.test_file", str(files["validation"])],
        "predict": ["predict", *model, "--data.predict_file", str(files["predict"])],
        "inspect": ["inspect", *model, "--data.train_file", str(files["train"])],
        "export": ["export", str(folder), "--output", str(tmp_path / "onnx")],
        "serve": ["serve", str(folder), "--port", str(free_port())],
    }[command] + (["--trainer.default_root_dir", str(tmp_path / "runs")] if command in EVALUATING else [])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


EVALUATING = {"validate": "validation_step", "test": "test_step", "predict": "predict_step"}
LOADING = {"serve": (Predictor, "from_export")}  # (the others set their data module up)


@pytest.mark.slow  # whole CLI runs
@pytest.mark.parametrize(
    ("command", "signum"),
    [("validate", signal.SIGTERM), ("test", signal.SIGINT), ("predict", signal.SIGTERM), ("inspect", signal.SIGINT),
     ("export", signal.SIGTERM), ("serve", signal.SIGINT)],
)  # fmt: skip
def test_every_command_stopped_while_it_loads_writes_nothing(command, signum, run, tmp_path, monkeypatch, capsys):
    signal_at(monkeypatch, *LOADING.get(command, (TransformerDataModule, "setup")), signum)
    before = files_under(run[0])
    line = stopped_by(signum, command_args(command, run, tmp_path), capsys)
    assert line.endswith(f": {WROTE_NOTHING}")
    assert files_under(tmp_path) == set() and files_under(run[0]) == before


@pytest.mark.slow  # whole CLI runs
@pytest.mark.parametrize(
    ("command", "owner", "name"),
    [("validate", TransformerModule, "validation_step"), ("test", TransformerModule, "test_step"),
     ("predict", TransformerModule, "predict_step"), ("export", TransformerModule, "validation_step"),
     ("export", export_tool, "export_onnx")],
)  # fmt: skip
def test_a_command_stopped_while_it_evaluates_or_exports_writes_nothing(command, owner, name, run, tmp_path,
                                                                        monkeypatch, capsys):  # fmt: skip
    signal_at(monkeypatch, owner, name, signal.SIGTERM)
    before = files_under(run[0])
    line = stopped_by(signal.SIGTERM, command_args(command, run, tmp_path), capsys)
    assert line.endswith(f": {WROTE_NOTHING}")
    assert files_under(tmp_path) == set() and files_under(run[0]) == before  # no half ONNX folder either


@pytest.mark.slow  # whole CLI runs
@pytest.mark.parametrize(("command", "written"), [("validate", "results.json"), ("predict", "predictions.jsonl")])
def test_a_command_stopped_while_it_writes_its_outputs_completes_them_first(command, written, run, tmp_path,
                                                                             monkeypatch, capsys):  # fmt: skip
    signal_at(monkeypatch, cli, "write_json", signal.SIGINT)
    line = stopped_by(signal.SIGINT, command_args(command, run, tmp_path), capsys)
    (folder,) = tmp_path.glob("runs/lightning_logs/version_*")
    assert line.endswith(f": the outputs in {folder} were written first, complete: nothing is left to do.")
    assert written in {path.name for path in folder.iterdir()} and not list(folder.glob("*.partial"))


@pytest.mark.slow  # a whole CLI run
def test_a_stop_swallowed_while_the_model_loads_still_stops_fit_before_training(tiny_bert, sentiment_files, tmp_path,
                                                                                monkeypatch, capsys):  # fmt: skip
    loading = module.load_model

    def loading_under_a_catch_all(*args, **kwargs):
        with contextlib.suppress(Exception):  # as a progress bar's catch-all around the weights' loading does
            os.kill(os.getpid(), signal.SIGINT)
        return loading(*args, **kwargs)

    monkeypatch.setattr(module, "load_model", loading_under_a_catch_all)
    stopped_by(signal.SIGINT, fit_args(tiny_bert, sentiment_files, tmp_path), capsys)
    assert not list(tmp_path.rglob("*.ckpt")) and not (tmp_path / "out").exists()  # not one step trained
