"""``--model.cpu_kernels``: on a CPU, ``ftlit`` trains with ftlit's dropout and eager attention for training
batches, ``torch`` with torch's nn.Dropout and the model's own attention throughout; either way the run logs once
which kernels ran and results.json's ``train.machine`` records them."""

import json
import logging

import pytest
from lightning import Callback
from torch import nn

from conftest import TASKS
from ftlit.cli import build_cli
from ftlit.training.dropout import CpuDropout
from ftlit.training.locks import release_held


class RecordTrainingAttention(Callback):
    """The attention kernel each training batch ran in the self-attention layers: eager attention returns its
    attention probabilities, sdpa none."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def on_fit_start(self, trainer, pl_module) -> None:
        def record(module, args, outputs) -> None:
            if trainer.training:
                self.seen.add("sdpa" if outputs[1] is None else "eager")

        for module in pl_module.model.modules():
            if type(module).__name__ == "BertSelfAttention":
                module.register_forward_hook(record)


def fit(tiny_bert: str, files: dict, output_dir, kernels: str, caplog) -> tuple:
    """A 3-step fit on a CPU in bf16 (where ftlit's kernels switch attention): its model module, the training
    batches' attention kernels, the log lines naming the CPU kernels, and results.json."""
    attention = RecordTrainingAttention()
    logging.getLogger("lightning.pytorch").addHandler(caplog.handler)  # (Lightning's messages do not propagate)
    try:
        cli = build_cli(["fit", *TASKS["classification"], "--model.model_name_or_path", tiny_bert,
                         "--data.train_file", str(files["train"]), "--data.validation_file", str(files["dev"]),
                         "--model.cpu_kernels", kernels, "--trainer.max_steps", "3", "--trainer.precision",
                         "bf16-mixed", "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir",
                         str(output_dir), "--output_dir", str(output_dir)], callbacks=[attention])  # fmt: skip
    finally:
        logging.getLogger("lightning.pytorch").removeHandler(caplog.handler)
        release_held()
    lines = [record.getMessage() for record in caplog.records if "CPU kernels" in record.getMessage()]
    return cli.model, attention.seen, lines, json.loads((output_dir / "results.json").read_text())


@pytest.mark.parametrize("kernels", ["ftlit", "torch"])
@pytest.mark.slow  # a whole CLI run or more: over a second on 2 cores
def test_the_cpu_kernels_setting_decides_dropout_and_attention_and_the_run_says_which_ran(
    kernels, tiny_bert, sentiment_files, tmp_path, caplog
):
    module, attention, lines, results = fit(tiny_bert, sentiment_files, tmp_path, kernels, caplog)
    dropouts = [type(m) for m in module.model.modules() if isinstance(m, nn.Dropout)]
    machine = results["train"]["machine"]
    assert machine["cpu_kernels"] == kernels and machine["precision"] == "bf16-mixed"
    assert len(lines) == 1  # logged once
    if kernels == "torch":
        assert dropouts and set(dropouts) == {nn.Dropout}
        assert attention == {"sdpa"}  # never switched
        assert machine["cpu_dropout_modules"] == 0 and machine["attention_switch"] is False
        assert "CPU kernels torch: torch's dropout and the model's attention" in lines[0]
    else:
        assert set(dropouts) == {CpuDropout}
        assert attention == {"eager"}
        assert machine["cpu_dropout_modules"] == len(dropouts) and machine["attention_switch"] is True
        assert f"CPU kernels ftlit: {len(dropouts)} nn.Dropout -> CpuDropout, eager attention for training" in lines[0]
