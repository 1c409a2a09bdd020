"""Callbacks the CLI adds to every run."""

from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from ftlit.outputs import write_json


class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions.jsonl`` at the end of ``ftlit predict``: one record per input row (or question)."""

    def __init__(self, output_dir: Path) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        # batch_indices: dataloader → batch → the input rows it held (under DDP a rank holds a shard); one dataloader
        records = pl_module.prediction_records(predictions, batch_indices[0])
        name = "predictions.jsonl" if trainer.world_size == 1 else f"predictions.rank{trainer.global_rank}.jsonl"
        write_json(self.output_dir / name, records, lines=True)
