"""The closing lines of fit, validate and test: the main score first, a few others, and where the files are."""

from ftlit.training.summary import SHOWN_METRICS, closing_summary, score_lines


def test_the_main_metric_comes_first_and_marked_then_the_others_in_order():
    metrics = {"loss": 0.5, "accuracy": 0.8125, "f1": 0.8}
    assert score_lines(metrics, "accuracy") == [("accuracy (main)", "0.8125"), ("loss", "0.5000"), ("f1", "0.8000")]


def test_beyond_the_shown_metrics_the_rest_is_counted_not_listed():
    metrics = {f"m{i}": float(i) for i in range(SHOWN_METRICS + 3)}
    rows = score_lines(metrics, "m0")
    assert len(rows) == 1 + SHOWN_METRICS + 1
    assert rows[-1] == ("…", "2 more in results.json")


def test_a_closing_summary_names_the_split_the_training_time_and_the_files_written():
    results = {
        "metrics": {"f1": 51.4, "exact_match": 35.75, "loss": 1.2},
        "eval": {"split": "validation", "num_examples": 2000, "main_metric": "f1"},
        "train": {"train_time_s": 1234.56},
    }
    files = {"results.json": "runs/q/results.json", "export": "runs/q/export", "predictions": None}
    assert closing_summary("fit", results, files).splitlines() == [
        "fit: scores on validation (2,000 examples), after 1,234.6 s of training",
        "  f1 (main)     51.4000",
        "  exact_match   35.7500",
        "  loss          1.2000",
        "  results.json  runs/q/results.json",
        "  export        runs/q/export",
    ]


def test_a_run_that_evaluated_nothing_says_so():
    text = closing_summary("fit", {"metrics": {}, "eval": {}, "train": {}}, {"export": "out/export"})
    assert text.splitlines() == ["fit: scores", "  (none)  nothing was evaluated", "  export  out/export"]
