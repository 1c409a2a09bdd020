"""The tokenizer a data module reads its text with: the model's own, refused when it cannot be (a slow tokenizer,
one missing its files, a ``max_length`` beyond the model's positions, or one that knows almost none of the text)."""

import inspect
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from datasets import Dataset
from datasets.fingerprint import Hasher
from transformers import AutoTokenizer, PretrainedConfig, PreTrainedTokenizerBase

from ftlit.data.checks import unknown_token_share
from ftlit.errors import FtlitError
from ftlit.pretrained import load_pretrained, resolve_model_path

#: Above this share of unknown tokens in the training text, the tokenizer cannot be the model's
MAX_UNKNOWN_SHARE = 0.5
#: Files a Hugging Face tokenizer is saved as (one of the vocabulary files, with or without tokenizer.json)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)


def checked_tokenizer(model_name_or_path: str, config: PretrainedConfig, max_length: int) -> PreTrainedTokenizerBase:
    """The fast tokenizer of ``model_name_or_path``, refused when its files are missing (it knows far fewer tokens
    than ``config`` embeds) or when ``max_length`` is beyond the model's limit."""
    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, model_name_or_path, "tokenizer")
    if not tokenizer.is_fast:
        raise FtlitError(f"The tokenizer of '{model_name_or_path}' is not a fast (Rust) tokenizer.")
    vocab_size = getattr(config, "vocab_size", None)
    if vocab_size and len(tokenizer) < vocab_size / 2:
        # A folder with weights but no tokenizer files still gives a (near-empty) tokenizer: every word → [UNK]
        raise FtlitError(
            f"The tokenizer of '{model_name_or_path}' has {len(tokenizer)} tokens, but the model embeds "
            f"{vocab_size}: its tokenizer files are missing or wrong ({tokenizer_files(model_name_or_path)}"
            "). Copy the tokenizer of the model it was trained from into the folder."
        )
    model_limit = tokenizer.model_max_length
    if model_limit >= 1_000_000:  # a tokenizer saved without its limit: the model's position embeddings decide
        model_limit = getattr(config, "max_position_embeddings", model_limit)
    if max_length > model_limit:
        raise FtlitError(f"--data.max_length {max_length} is above the model's limit of {model_limit} positions.")
    return tokenizer


def check_known_words(
    sequences: Sequence[Sequence[int]], tokenizer: PreTrainedTokenizerBase, model_name_or_path: str
) -> None:
    """Refuse to train when the tokenizer knows almost none of the text (a wrong or broken tokenizer)."""
    share = unknown_token_share(sequences, tokenizer)
    if share > MAX_UNKNOWN_SHARE:
        raise FtlitError(
            f"{share:.0%} of the training text's tokens are the unknown token {tokenizer.unk_token!r}: the "
            f"tokenizer of '{model_name_or_path}' does not fit this text (or its files are broken: "
            f"{tokenizer_files(model_name_or_path)}). Use the tokenizer the model was trained with."
        )


def tokenizer_files(model_name_or_path: str) -> str:
    """Which tokenizer files a local model folder has, for messages."""
    folder = Path(resolve_model_path(model_name_or_path))
    if not folder.is_dir():
        return "a Hub model"
    present = sorted(name for name in TOKENIZER_FILES if (folder / name).is_file())
    return f"the folder holds {', '.join(present) if present else 'none of ' + ', '.join(TOKENIZER_FILES)}"


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of what decides how ``tokenizer`` encodes: its class, its Rust tokenizer as JSON (vocabulary,
    normalizer, pre-tokenizer, post-processor) and its Python-side settings. A few ms for MiniLM's, where datasets'
    own hashing pickles the whole tokenizer object: 0.84 s, paid at every tokenising pass of every run."""
    # The JSON opens with the truncation and padding its last call left set (each call sets its own: not rules of
    # the tokenizer), so it is hashed from the first rule on. Were that key not found, the whole text is: a moved
    # key would only cost cache hits, never give two tokenizers one name
    text = tokenizer.backend_tokenizer.to_str()
    start = text.find('"added_tokens"')
    rules = text[start:] if start >= 0 else text
    settings = {
        key: value for key, value in tokenizer.init_kwargs.items() if isinstance(value, str | int | float | bool)
    }
    return Hasher.hash(
        [
            type(tokenizer).__qualname__,
            rules,
            settings,
            [tokenizer.model_max_length, tokenizer.padding_side, tokenizer.truncation_side],
            [tokenizer.model_input_names, str(tokenizer.special_tokens_map)],
        ]
    )


def featurising_fingerprint(rows: Dataset, function, kwargs: dict) -> str | None:
    """The fingerprint (the name of its cached result) of ``rows.map(function, **kwargs)`` where ``fn_kwargs`` hands
    the function a tokenizer: hashed as datasets hashes a map (the rows' fingerprint, the function, its arguments),
    with the tokenizer's ``tokenizer_fingerprint`` standing for it. None where no tokenizer is handed over."""
    given = kwargs.get("fn_kwargs") or {}
    if not any(isinstance(value, PreTrainedTokenizerBase) for value in given.values()):
        return None
    arguments = {
        key: tokenizer_fingerprint(value) if isinstance(value, PreTrainedTokenizerBase) else value
        for key, value in given.items()
    }
    settings = {key: value for key, value in kwargs.items() if key not in ("fn_kwargs", "desc")}
    # a module-level function pickles as its name alone: its module's source and ftlit's version stand for its code
    code = [version("ftlit"), inspect.getsource(inspect.getmodule(function))]
    return Hasher.hash([rows._fingerprint, function, code, arguments, settings])  # (datasets names caches by it)
