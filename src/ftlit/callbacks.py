"""Callbacks the CLI adds to every run."""

from pathlib import Path

from lightning.pytorch.callbacks import BasePredictionWriter

from ftlit.outputs import write_json


class PredictionWriter(BasePredictionWriter):
    """Writes ``predictions.jsonl`` at the end of ``ftlit predict``: each input row followed by its prediction."""

    def __init__(self, output_dir: Path) -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        rows = trainer.datamodule.predict_rows
        # batch_indices (dataloader → batch → row) say which input rows each batch held; under DDP a rank holds a
        # shard. There is one predict dataloader.
        records = [
            {**rows[index], **prediction}
            for indices, batch in zip(batch_indices[0], predictions)
            for index, prediction in zip(indices, batch)
        ]
        name = "predictions.jsonl" if trainer.world_size == 1 else f"predictions.rank{trainer.global_rank}.jsonl"
        write_json(self.output_dir / name, records, lines=True)
