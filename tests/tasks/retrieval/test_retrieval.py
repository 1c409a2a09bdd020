"""The retrieval task as a user relies on it: pairs read from tables and SQuAD files, documents held out whole,
bad passages refused before any step, batches that keep shared passages apart, each query ranked against its
split's corpus, and an export that sentence-transformers loads and embeds with the same vectors."""

import json

import numpy as np
import pytest
import torch

from ftlit.errors import FtlitError
from ftlit.tasks.retrieval import RetrievalDataModule, RetrievalModule
from ftlit.tasks.retrieval.contract import RetrievalContract, RetrievalEvalSet


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def squad_file(path, articles: dict[str, list[tuple[str, list[str]]]]) -> str:
    data = [
        {"title": title, "paragraphs": [
            {"context": context, "qas": [{"id": f"{title}-{i}-{j}", "question": q, "answers": []}
                                         for j, q in enumerate(questions)]}
            for i, (context, questions) in enumerate(paragraphs)]}
        for title, paragraphs in articles.items()
    ]  # fmt: skip
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return str(path)


def data_module(tiny_bert, **files) -> RetrievalDataModule:
    return RetrievalDataModule(tiny_bert, max_length=32, max_query_length=16, batch_size=4, **files)


def test_a_squad_file_is_read_as_questions_to_their_paragraphs_and_articles_are_held_out_whole(tiny_bert, tmp_path):
    articles = {
        f"article {a}": [(f"paragraph {a} {p} about things", [f"question {a} {p} {q}" for q in range(3)])
                         for p in range(2)]
        for a in range(10)
    }  # fmt: skip
    dm = data_module(tiny_bert, train_file=squad_file(tmp_path / "train.json", articles), validation_split=0.2)
    dm.setup("fit")
    train, held_out = dm.rows["train"], dm.rows["validation"]
    assert len(train) + len(held_out) == 60 and len(held_out) == 12  # 2 of 10 articles, 6 questions each
    assert set(train["title"]).isdisjoint(held_out["title"])
    first = held_out[0]
    assert first["positive"].startswith("paragraph " + first["query"].split()[1])
    eval_set = dm.contract.eval_sets["validation"]
    assert len(eval_set.passages) == 4  # the held-out articles' paragraphs: the corpus its questions are ranked in
    assert all(eval_set.passages[next(iter(r))] == p for r, p in zip(eval_set.relevant, held_out["positive"]))


def test_hard_negatives_come_from_a_list_or_from_sentence_transformers_negative_columns(tiny_bert, tmp_path):
    listed = write_jsonl(tmp_path / "listed.jsonl", [{"query": "q", "positive": "p", "negatives": ["n1", "n2"]}])
    columns = write_jsonl(tmp_path / "columns.jsonl",
                          [{"anchor": "q", "positive": "p", "negative_1": "n1", "negative_2": "n2"}])  # fmt: skip
    for path, settings in ((listed, {}), (columns, {"query_column": "anchor"})):
        dm = data_module(tiny_bert, train_file=path, validation_file=path, **settings)
        assert dm.load_split("train")[0] == {"query": "q", "positive": "p", "negatives": ["n1", "n2"]}


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ([{"query": "q", "positive": " "}, {"query": "r", "positive": "p"}], "'positive' in row 1"),
        ([{"query": "q", "positive": "p", "negatives": ["n", ""]}], "'negatives' in row 1"),
        ([{"query": "q", "positive": "p", "negatives": ["n"]}, {"query": "r", "positive": "s", "negatives": []}],
         "different numbers of hard negatives (0 in 1 rows, 1 in 1 rows)"),
    ],
)  # fmt: skip
def test_rows_without_a_passage_or_with_unequal_negatives_are_refused_before_any_step(tiny_bert, tmp_path, rows, said):
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(FtlitError) as refused:
        data_module(tiny_bert, train_file=path, validation_file=path).setup("fit")
    assert said in str(refused.value) and "train.jsonl" in str(refused.value)


def test_a_training_batch_holds_queries_then_positives_then_negatives_and_numbers_shared_passages_alike(
    tiny_bert, tmp_path
):
    castle = "the castle is here"
    rows = [{"query": "where is the castle", "positive": castle, "negatives": ["a river"]},
            {"query": "what is a castle", "positive": castle, "negatives": ["a forest far away"]}]  # fmt: skip
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    dm = data_module(tiny_bert, train_file=path, validation_file=path)
    dm.setup("fit")
    batch = dm.collate([dm.train_features[i] for i in range(2)])
    assert batch["query_input_ids"].shape[0] == 2 and batch["input_ids"].shape[0] == 4
    assert batch["passage_keys"].tolist() == [0, 0, 1, 2]  # both positives are one passage: never negatives
    decoded = dm.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert decoded == ["the castle is here", "the castle is here", "a river", "a forest far away"]
    assert (batch["attention_mask"].sum(1) == torch.tensor([6, 6, 4, 6])).all()


def test_each_query_is_ranked_against_the_split_corpus_and_scored_exactly(tiny_bert):
    # 3 queries, 4 passages on a line of angles: each query's nearest passages are known
    angles_q, angles_p = np.array([0.0, 1.0, 2.0]), np.array([2.1, 0.1, 0.9, 3.0])
    as_vectors = lambda a: torch.tensor(np.stack([np.cos(a), np.sin(a)], 1), dtype=torch.float32)  # noqa: E731
    relevant = [{1}, {0}, {3}]  # query 0: rank 1; query 1: passage 0 comes third (after 2, 1); query 2: second
    eval_set = RetrievalEvalSet("validation", 3, 7, ["a", "b", "c"], ["p0", "p1", "p2", "p3"], relevant)
    module = RetrievalModule(tiny_bert)
    module.accept_contract(RetrievalContract(32, ("validation",), {"validation": eval_set}, 16, "", ""))
    order = torch.tensor([6, 0, 3, 1, 5, 2, 4])  # gathered from the devices in any order
    embeddings = torch.cat([as_vectors(angles_q), as_vectors(angles_p)])[order]
    result = module.evaluate("validation", order, {"embedding": embeddings})
    assert result.metrics["recall_at_1"] == pytest.approx(1 / 3)
    assert result.metrics["mrr_at_10"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert result.metrics["ndcg_at_10"] == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(3)) / 3)
    assert result.metrics["recall_at_5"] == 1.0
    rankings = module.result_files(result)["rankings.json"]
    assert rankings["queries"][1]["ranked"][:3] == [2, 1, 0] and rankings["passages"][0] == "p0"


@pytest.mark.parametrize(("pooling", "normalize", "prefix"), [("mean", True, ""), ("cls", False, "query: ")])
def test_the_export_embeds_in_sentence_transformers_as_ftlit_does(tiny_bert, tmp_path, pooling, normalize, prefix):
    from sentence_transformers import SentenceTransformer

    dm = RetrievalDataModule(tiny_bert, max_length=32, max_query_length=16, query_prefix=prefix)
    module = RetrievalModule(tiny_bert, pooling=pooling, normalize=normalize)
    eval_set = RetrievalEvalSet("validation", 0, 0, [], [], [])
    module.accept_contract(RetrievalContract(32, ("validation",), {"validation": eval_set}, 16, prefix, ""))
    module.configure_model()
    module.model.eval()
    module.export(tmp_path / "export", dm.tokenizer)
    queries = ["where is the castle", "a much longer question about the river and its bridges"]
    encoded = dm.collate([{"input_ids": ids} for ids in dm._encode(queries, "query")])
    with torch.inference_mode():
        ours = module.embed(encoded["input_ids"], encoded["attention_mask"]).numpy()
    loaded = SentenceTransformer(str(tmp_path / "export"), device="cpu")
    theirs = loaded.encode(queries, prompt_name="query" if prefix else None)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert loaded.similarity_fn_name == ("cosine" if normalize else "dot")
    from transformers import AutoModel

    assert type(AutoModel.from_pretrained(tmp_path / "export")).__name__ == "BertModel"


def test_a_model_that_is_no_encoder_is_refused_before_any_step(tmp_path, tokenizer):
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=tokenizer.vocab_size)).save_pretrained(tmp_path)
    with pytest.raises(FtlitError, match="is a gpt2 model, not an encoder"):
        RetrievalModule(str(tmp_path)).configure_model()


def test_a_query_given_in_several_rows_is_one_query_relevant_to_each_positive(tiny_bert, tmp_path):
    rows = [{"query": "which rivers", "positive": "the nile"}, {"query": "which rivers", "positive": "the amazon"},
            {"query": "which castle", "positive": "windsor"}]  # fmt: skip
    path = write_jsonl(tmp_path / "dev.jsonl", rows)
    dm = data_module(tiny_bert, validation_file=path)
    dm.setup("validate")
    eval_set = dm.contract.eval_sets["validation"]
    assert eval_set.queries == ["which rivers", "which castle"] and eval_set.relevant == [{0, 1}, {2}]


def test_a_batch_of_one_without_hard_negatives_is_refused(tiny_bert, tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"query": "q", "positive": "p"}, {"query": "r", "positive": "s"}])
    with pytest.raises(FtlitError, match="the loss is always 0"):
        RetrievalDataModule(tiny_bert, max_length=32, batch_size=1, train_file=path, validation_file=path).setup("fit")


def test_padded_to_their_maximum_queries_and_passages_keep_their_own_lengths(tiny_bert, tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"query": "q", "positive": "p"}, {"query": "r", "positive": "s"}])
    dm = data_module(tiny_bert, train_file=path, validation_file=path, pad_to_max_length=True)
    dm.setup("fit")
    batch = dm.collate([dm.train_features[i] for i in range(2)])
    assert batch["query_input_ids"].shape == (2, 16) and batch["input_ids"].shape == (2, 32)
