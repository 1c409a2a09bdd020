"""ONNX: an exported Hugging Face model as an ONNX graph, checked against PyTorch and optionally quantised to int8;
and ONNX Runtime standing in for the PyTorch model wherever ftlit calls one.

The graph comes from torch's own exporter (``torch.onnx.export(dynamo=True)``): Optimum's ONNX exporter
(optimum-onnx) requires transformers < 4.58, and torch's exporter is maintained with the torch that trains the
model. The axes the task names (batch and sequence, …) are dynamic. int8 is ONNX Runtime's dynamic quantisation of
the weights.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, PreTrainedModel
from transformers.utils import ModelOutput

from ftlit.errors import FtlitError

ONNX_FILE = "model.onnx"
TOLERANCE = 1e-4  # largest difference from PyTorch's outputs an fp32 export may show


def onnx_runtime():
    try:
        import onnxruntime
    except ImportError:
        raise FtlitError("ONNX needs onnxruntime, onnx and onnxscript: pip install 'ftlit[onnx]'.") from None
    return onnxruntime


def export_onnx(
    model: PreTrainedModel, sample: dict[str, torch.Tensor], axes: Mapping[str, Mapping[int, str]], path: Path
) -> list[str]:
    """Write ``model`` to ``path`` as ONNX, with ``sample``'s inputs (``input_ids``, ``attention_mask`` …) and the
    model's named outputs (``logits``, or ``start_logits`` and ``end_logits``); returns the output names. ``axes``
    names each input's dynamic dimensions (``{0: "batch", 1: "sequence"}``): one name, one size."""
    model = model.float().eval()
    inputs = {name: tensor.cpu() for name, tensor in sample.items()}
    with torch.no_grad():
        outputs = [name for name, value in model(**inputs).items() if value is not None]
    dims = {name: torch.export.Dim(name) for named in axes.values() for name in named.values()}
    try:
        program = torch.onnx.export(
            model,
            (),
            kwargs=inputs,
            dynamo=True,
            input_names=list(inputs),
            output_names=outputs,
            optimize=True,
            dynamic_shapes={name: {dim: dims[axis] for dim, axis in axes[name].items()} for name in inputs},
            verbose=False,
        )
    except ImportError as err:
        raise FtlitError(f"ONNX export needs onnx and onnxscript ({err}): pip install 'ftlit[onnx]'.") from None
    program.save(str(path))
    return outputs


def quantize_int8(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic quantisation: int8 weights, activations quantised on the fly."""
    onnx_runtime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


class OnnxRuntimeModel(torch.nn.Module):
    """An ONNX folder (``model.onnx`` and the Hugging Face ``config.json``) run by ONNX Runtime on the CPU, called
    as ftlit calls a Hugging Face model: ``model(**batch)`` gives the same named outputs (float32 tensors on the
    inputs' device) and ``model.config`` the same config. Inference only: no loss, no gradients."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        folder = Path(folder)
        if not (folder / ONNX_FILE).is_file():
            raise FtlitError(
                f"--model.engine onnxruntime needs an ONNX export: {folder} has no {ONNX_FILE}. Make one with "
                f"`ftlit export {folder} --format onnx`."
            )
        runtime = onnx_runtime()
        options = runtime.SessionOptions()
        options.log_severity_level = 3  # warnings of graph optimisation are not the user's business
        self.session = runtime.InferenceSession(str(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"])
        self.config = AutoConfig.from_pretrained(folder)
        self.input_names = [node.name for node in self.session.get_inputs()]
        self.output_names = [node.name for node in self.session.get_outputs()]

    def forward(self, **batch: torch.Tensor) -> ModelOutput:
        feeds = {name: batch[name].detach().cpu().numpy().astype(np.int64) for name in self.input_names}
        device = batch["input_ids"].device
        outputs = self.session.run(self.output_names, feeds)
        named = {name: torch.from_numpy(value).to(device) for name, value in zip(self.output_names, outputs)}
        return ModelOutput(loss=None, **named)


def largest_difference(model: PreTrainedModel, onnx_model: OnnxRuntimeModel, batches: Iterable[dict]) -> float:
    """The largest absolute difference between the outputs of ``model`` and of its ONNX graph on ``batches``."""
    model = model.float().eval()
    largest = 0.0
    with torch.no_grad():
        for batch in batches:
            inputs = {name: batch[name].cpu() for name in onnx_model.input_names}
            theirs, ours = model(**inputs), onnx_model(**inputs)
            for name in onnx_model.output_names:
                largest = max(largest, float((theirs[name].float() - ours[name]).abs().max()))
    return largest
