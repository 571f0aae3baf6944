"""``senti evaluate`` and ``senti tune`` run as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from flows.analysis.sentiment import Thresholds, load_thresholds
from flows.tuning.evaluation import evaluate, read_labelled
from tests.helpers.tweeteval_files import require_tweeteval

pytestmark = pytest.mark.slow

TEXTS = ["I love this, great day!", "This is awful and sad.", "The meeting is at noon."]
LABELS = ["2", "0", "1"]
LABELLED_VARS = ("SENTI_LABELLED_DATA", "SENTI_TWEETEVAL_DIR")


def senti(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m server.cli ARGS`` in ``cwd`` (``env`` added, no ``SENTI_LABELLED_DATA``
    unless given), capturing text output."""
    base = {k: v for k, v in os.environ.items() if k not in LABELLED_VARS}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
        env=base | {"PYTHONUTF8": "1"} | (env or {}),
    )


def write_data(tmp_path: Path, texts: list[str], labels: list[str]) -> tuple[Path, Path]:
    """Write a texts file and a labels file in TweetEval format."""
    text_path = tmp_path / "texts.txt"
    label_path = tmp_path / "labels.txt"
    text_path.write_text("".join(f"{t}\n" for t in texts), encoding="utf-8")
    label_path.write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
    return text_path, label_path


def test_evaluate_prints_metrics_and_labelled_confusion(tmp_path: Path) -> None:
    """The text report names every metric and labels the confusion matrix rows and columns."""
    texts, labels = write_data(tmp_path, TEXTS, LABELS)
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("[thresholds]\nnegative = -0.05\npositive = 0.05\n", encoding="utf-8")
    result = senti(
        "evaluate", "--texts", texts, "--labels", labels, "--thresholds", thresholds, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for word in ("macro-recall: 1.0000", "accuracy:     1.0000", "macro-F1:", "confusion matrix"):
        assert word in out
    matrix = out[out.index("confusion matrix") :].splitlines()
    assert matrix[1].split() == ["negative", "neutral", "positive"]
    assert matrix[2].split() == ["negative", "1", "0", "0"]


def test_evaluate_json_equals_library_evaluation(tmp_path: Path) -> None:
    """``--json`` prints the same figures the PostAnalyzer-based evaluate() computes."""
    directory = require_tweeteval()
    all_texts, all_labels = read_labelled(directory / "val_text.txt", directory / "val_labels.txt")
    texts, labels = write_data(tmp_path, all_texts[:400], [str(v) for v in all_labels[:400]])
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("[thresholds]\nnegative = -0.1\npositive = 0.3\n", encoding="utf-8")
    result = senti(
        "evaluate",
        "--texts",
        texts,
        "--labels",
        labels,
        "--thresholds",
        thresholds,
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    expected = evaluate(all_texts[:400], all_labels[:400], Thresholds(-0.1, 0.3)).as_dict()
    assert printed == json.loads(json.dumps(expected))
    assert printed["confusion_matrix"]["labels"] == ["negative", "neutral", "positive"]


def test_evaluate_uses_shipped_default_thresholds(tmp_path: Path) -> None:
    """Without ``--thresholds`` the shipped config's thresholds are used."""
    texts, labels = write_data(tmp_path, TEXTS, LABELS)
    result = senti("evaluate", "--texts", texts, "--labels", labels, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    default = load_thresholds()
    assert json.loads(result.stdout)["thresholds"] == {
        "negative": default.negative,
        "positive": default.positive,
    }


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        pytest.param(None, ["1"], "file not found", id="missing-texts"),
        pytest.param(["a", "b"], ["1"], "has 2 lines but", id="length-mismatch"),
        pytest.param(["a", "b"], ["1", "3"], "label '3' is not 0", id="bad-label"),
        pytest.param([], [], "hold no labelled texts", id="empty"),
    ],
)
def test_evaluate_bad_input_exits_1(
    tmp_path: Path, texts: list[str] | None, labels: list[str], message: str
) -> None:
    """Unusable input is a one-line ``senti: error:`` with exit status 1."""
    text_path, label_path = write_data(tmp_path, texts or [], labels)
    if texts is None:
        text_path.unlink()
    result = senti("evaluate", "--texts", text_path, "--labels", label_path, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("senti: error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_evaluate_bad_thresholds_file_exits_1(tmp_path: Path) -> None:
    """A missing thresholds file is reported like other input errors."""
    texts, labels = write_data(tmp_path, TEXTS, LABELS)
    result = senti(
        "evaluate",
        "--texts",
        texts,
        "--labels",
        labels,
        "--thresholds",
        tmp_path / "no.toml",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "senti: error: " in result.stderr
    assert "no.toml: thresholds file not found" in result.stderr


def test_tune_writes_config_that_loads(tmp_path: Path) -> None:
    """``senti tune`` prints its report and writes a config load_thresholds reads."""
    directory = require_tweeteval()
    out = tmp_path / "tuned.toml"
    result = senti(
        "tune",
        "--texts",
        directory / "val_text.txt",
        "--labels",
        directory / "val_labels.txt",
        "--out",
        out,
        "--folds",
        "3",
        "--seed",
        "1",
        "--grid-step",
        "0.05",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "(chosen)" in result.stdout
    assert "(baseline)" in result.stdout
    tuned = load_thresholds(out)
    provenance = tomllib.loads(out.read_text(encoding="utf-8"))["provenance"]
    assert provenance["cv"]["folds"] == 3
    assert provenance["cv"]["seed"] == 1
    assert provenance["grid"]["step"] == 0.05
    assert provenance["examples"] == 2000
    assert len(provenance["texts_sha256"]) == 64
    assert provenance["macro_recall"] >= provenance["baseline_macro_recall"]
    check = senti(
        "evaluate",
        "--texts",
        directory / "val_text.txt",
        "--labels",
        directory / "val_labels.txt",
        "--thresholds",
        out,
        "--json",
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    evaluated = json.loads(check.stdout)
    assert evaluated["thresholds"] == {"negative": tuned.negative, "positive": tuned.positive}
    assert evaluated["macro_recall"] == pytest.approx(provenance["macro_recall"], abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--folds", "1"], "--folds must be at least 2", id="one-fold"),
        pytest.param(["--folds", "9"], "cannot make 9 folds", id="too-many-folds"),
        pytest.param(["--grid-step", "3"], "grid", id="huge-step"),
    ],
)
def test_tune_bad_options_exit_1(tmp_path: Path, extra: list[str], message: str) -> None:
    """Unusable tuning options are a ``senti: error:`` line with exit status 1."""
    texts, labels = write_data(tmp_path, TEXTS, LABELS)
    result = senti(
        "tune",
        "--texts",
        texts,
        "--labels",
        labels,
        "--out",
        tmp_path / "o.toml",
        *extra,
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("senti: error: ")
    assert message in result.stderr
    assert not (tmp_path / "o.toml").exists()


def write_split(directory: Path) -> Path:
    """A directory in TweetEval's layout: ``val_text.txt`` and ``val_labels.txt``."""
    directory.mkdir()
    (directory / "val_text.txt").write_text("".join(f"{t}\n" for t in TEXTS), encoding="utf-8")
    (directory / "val_labels.txt").write_text("".join(f"{x}\n" for x in LABELS), encoding="utf-8")
    return directory


def test_evaluate_without_data_names_the_flag_and_the_variable(tmp_path: Path) -> None:
    """With no labelled data given, evaluate and tune exit 1 with one line naming
    ``--data DIR`` and ``SENTI_LABELLED_DATA``."""
    for command in (["evaluate"], ["tune", "--out", "t.toml"]):
        result = senti(*command, cwd=tmp_path)
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert line.startswith("senti: error: no labelled data: pass --data DIR or set ")
        assert "SENTI_LABELLED_DATA" in line
        assert "val_text.txt and val_labels.txt" in line


def test_evaluate_reads_a_directory_from_the_flag_or_the_variable(tmp_path: Path) -> None:
    """``--data DIR`` and ``SENTI_LABELLED_DATA=DIR`` read the same split as ``--texts`` and
    ``--labels`` pointing at its files; a directory without them names the missing file."""
    data = write_split(tmp_path / "tweeteval")
    files = senti("evaluate", "--json", "--texts", data / "val_text.txt",
                  "--labels", data / "val_labels.txt", cwd=tmp_path)  # fmt: skip
    flag = senti("evaluate", "--json", "--data", data, cwd=tmp_path)
    variable = senti("evaluate", "--json", cwd=tmp_path, env={"SENTI_LABELLED_DATA": str(data)})
    assert files.returncode == flag.returncode == variable.returncode == 0, flag.stderr
    assert json.loads(flag.stdout) == json.loads(variable.stdout) == json.loads(files.stdout)
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = senti("evaluate", "--data", empty, cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == (
        f"senti: error: {empty / 'val_text.txt'}: file not found (--data must name a directory "
        "with val_text.txt and val_labels.txt, TweetEval sentiment layout, docs/tuning.md)\n"
    )
