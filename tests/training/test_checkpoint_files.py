"""What ftlit loads is verified first, and refused in one line that says why: a --ckpt_path that is a folder, no
checkpoint or a pickle that would run code (never with advice to switch safety off), and an export's truncated
weights."""

import os
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ftlit.cli import main
from ftlit.errors import FtlitError
from ftlit.training.checkpoints import verify_checkpoint, verify_weights_file


class RunsCode:
    """Pickled as a call of ``os.system``: what a hostile checkpoint holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def odd_checkpoints(folder: Path) -> dict[str, Path]:
    """Files given as checkpoints that are none, each with the words its refusal must say."""
    (folder / "run" / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}}, folder / "run" / "checkpoints" / "last.ckpt")
    (folder / "notes.ckpt").write_text("not a checkpoint")
    with zipfile.ZipFile(folder / "archive.ckpt", "w") as archive:
        archive.writestr("readme.txt", "a zip, not a checkpoint")
    torch.save(torch.zeros(3), folder / "tensor.ckpt")
    torch.save({"state_dict": {}, "hook": RunsCode(folder / "ran")}, folder / "code.ckpt")
    return {"is a folder: give a checkpoint file (.ckpt) or last. It holds": folder / "run",
            "is not a checkpoint: a PyTorch checkpoint (.ckpt, as ftlit fit writes them)": folder / "notes.ckpt",
            "is a zip archive but not a PyTorch checkpoint": folder / "archive.ckpt",
            "is a PyTorch file but not a checkpoint of a model (it has no state_dict)": folder / "tensor.ckpt",
            "is refused: loading it would run code (it would call posix.system)": folder / "code.ckpt"}  # fmt: skip


def test_a_path_that_is_no_safe_checkpoint_is_refused_saying_why(tmp_path):
    for said, path in odd_checkpoints(tmp_path).items():
        with pytest.raises(FtlitError) as refused:
            verify_checkpoint(path)
        assert said in str(refused.value) and "not found" not in str(refused.value)
        assert "weights_only" not in str(refused.value)
    assert not (tmp_path / "ran").exists()  # the pickle's code never ran
    verify_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")


@pytest.mark.slow  # a CLI run up to its checks: over a second on 2 cores
def test_validate_refuses_a_checkpoint_that_would_run_code_in_one_line(tiny_bert, sentiment_files, tmp_path, capsys):
    checkpoint = odd_checkpoints(tmp_path)["is refused: loading it would run code (it would call posix.system)"]
    with pytest.raises(SystemExit) as stopped:
        main(["validate", "--model", "ftlit.SequenceClassificationModule", "--model.model_name_or_path", tiny_bert,
              "--data", "ftlit.ClassificationDataModule", "--data.text_fields", "[text]", "--data.train_file",
              str(sentiment_files["train"]), "--data.validation_file", str(sentiment_files["dev"]), "--output_dir",
              str(tmp_path / "out"), "--ckpt_path", str(checkpoint)])  # fmt: skip
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err and "weights_only" not in err
    assert err.strip().splitlines()[-1] == (
        f"ftlit: error: Checkpoint '{checkpoint}' is refused: loading it would run code (it would call posix.system), "
        "and ftlit loads weights and settings only, whatever a file's source. Give a checkpoint written by ftlit fit."
    )
    assert not (tmp_path / "ran").exists() and not (tmp_path / "out").exists()


def test_a_truncated_or_damaged_weights_file_is_refused_naming_it(tmp_path):
    save_file({"w": torch.randn(64, 64), "b": torch.zeros(64)}, tmp_path / "model.safetensors")
    verify_weights_file(tmp_path / "model.safetensors")
    data = (tmp_path / "model.safetensors").read_bytes()
    damaged = {"cut.safetensors": data[: len(data) // 2], "tiny.safetensors": data[:5],
               "header.safetensors": data[:8] + b"{" * (len(data) - 8), "longer.safetensors": data + b"\0"}  # fmt: skip
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(FtlitError, match=rf"The weights file '.*{name}' is corrupt or incomplete \("):
            verify_weights_file(tmp_path / name)
