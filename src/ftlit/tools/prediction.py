"""Predictions for rows given in memory (``ftlit serve``'s requests), made as ``ftlit predict`` makes them for a
file: the run's data module checks and featurises the rows, its model module runs the model and decodes the outputs
into the same records. No Trainer runs: a request costs the model and the decoding, nothing more.
"""

from collections.abc import Callable, Mapping
from pathlib import Path

import datasets
import torch

from ftlit.deploy.onnx import ONNX_FILE
from ftlit.errors import FtlitError
from ftlit.tools.export import find_run, run_arguments
from ftlit.training.evaluation import FeatureOutputs
from ftlit.training.loading import check_trained_head
from ftlit.training.module import TransformerModule

ENGINES = ("torch", "onnxruntime")


class Predictor:
    """An export ready to answer: ``request_row`` reads a request, ``predict`` answers rows (a batch)."""

    def __init__(self, cli, device: str | torch.device = "cpu") -> None:
        self.datamodule, self.module = cli.datamodule, cli.model
        self.device = torch.device(device)
        # requests are small and many: no progress bars, no cache files of featurised rows
        datasets.disable_progress_bars()
        datasets.disable_caching()
        self.datamodule.check_settings()
        self.task = type(self.module).__name__.removesuffix("Module")
        self.engine = self.module.hparams.engine
        self.predict([self.request_row(self.example_request())])  # loads the model and runs every step once

    @classmethod
    def from_export(
        cls,
        source: Path,
        build: Callable[[list[str]], object],
        engine: str | None = None,
        device: str | torch.device = "cpu",
        arguments: list[str] = (),
    ) -> "Predictor":
        """``source``: a run's output folder, its ``export/`` or an ONNX export (engine: onnxruntime when the
        folder holds ``model.onnx``, unless given); ``build``: the CLI on arguments, not run."""
        export, config = find_run(source)
        engine = engine or ("onnxruntime" if (export / ONNX_FILE).is_file() else "torch")
        if engine not in ENGINES:
            raise FtlitError(f"--engine {engine}: one of {', '.join(ENGINES)}.")
        # empty_text error: a row the data module dropped would leave its request without an answer
        cli = build(
            [*run_arguments(export, config, list(arguments)), "--model.engine", engine, "--data.empty_text", "error"]
        )
        if not isinstance(cli.model, TransformerModule):
            raise FtlitError(f"{source}: the config's model is not an ftlit task module.")
        return cls(cli, device)

    def example_request(self) -> dict:
        return self.datamodule.example_request()

    def request_row(self, request: Mapping) -> dict:
        return self.datamodule.request_row(request)

    def predict(self, rows: list[dict]) -> list[dict]:
        """Each row's prediction record, less the row's own fields (the request's input)."""
        contract = self.datamodule.predict_rows(rows)
        module = self.module
        module.accept_contract(contract)
        if module.model is None:
            module.configure_model()
            check_trained_head(module.hparams.model_name_or_path, module.new_head)  # (no checkpoint restores it)
            module.to(self.device).eval()
        outputs = FeatureOutputs()
        with torch.inference_mode():
            for batch in self.datamodule.predict_dataloader():
                batch = {name: tensor.to(self.device) for name, tensor in batch.items()}
                feature_index = batch.pop("feature_index")
                outputs.add(feature_index, module.collect("predict", "predict", batch))
        records = module.predict_records("predict", *outputs.gather(module))
        return [{key: value for key, value in record.items() if key not in row} for record, row in zip(records, rows)]
