"""The classification (or regression) head's output layer, changed in place so that every user of the model (the
export, ``transformers.pipeline``) gets the changed outputs: temperature scaling, and regression targets put back in
their own units."""

import torch
from torch import nn
from transformers import PreTrainedModel

from ftlit.errors import FtlitError


def rescale_outputs(model: PreTrainedModel, scale: float, shift: float = 0.0) -> None:
    """Make the head output ``scale · output + shift``: its output layer's weights times ``scale``, and its bias
    times ``scale`` plus ``shift``."""
    backbone = model.base_model_prefix
    layers = [
        module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and module.out_features == model.config.num_labels
        and backbone not in name.split(".")  # the encoder's own layers are never changed
    ]
    if not layers:
        raise FtlitError(f"Found no output layer in {type(model).__name__}'s head to rescale.")
    if shift and any(layer.bias is None for layer in layers):
        raise FtlitError(f"{type(model).__name__}'s output layer has no bias to shift.")
    with torch.no_grad():
        for layer in layers:  # with LoRA, the trained copy of the head and its frozen original
            layer.weight.mul_(scale)
            if layer.bias is not None:
                layer.bias.mul_(scale).add_(shift)
