"""Token states → one embedding per sequence, as sentence-transformers pools them (its ``Pooling`` module's
``mean`` and ``cls`` modes), optionally normalised to unit length (its ``Normalize`` module)."""

from typing import Literal

import torch

Pooling = Literal["mean", "cls"]
POOLINGS: tuple[str, ...] = ("mean", "cls")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: Pooling, normalize: bool) -> torch.Tensor:
    """Embeddings ``[batch, hidden]`` of token states ``[batch, sequence, hidden]``: the mean of the attended
    tokens' states (padding left out), or the first token's; then scaled to unit length when ``normalize``."""
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        # clamped like sentence-transformers: an all-padding row gives zeros, not NaN
        embeddings = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    elif mode == "cls":
        embeddings = hidden[:, 0]
    else:
        raise ValueError(f"Unknown pooling {mode!r}; the poolings are {', '.join(POOLINGS)}.")
    return torch.nn.functional.normalize(embeddings, p=2, dim=-1) if normalize else embeddings
