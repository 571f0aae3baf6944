"""The notebooks in ``notebooks/``: committed without outputs, and run end to end with nbclient."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.tweeteval_files import REPO, require_tweeteval

from flows.analysis.sentiment import Thresholds, load_thresholds

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.slow

NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("*.ipynb"))
KERNEL = "python3"


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """A ``python3`` kernelspec for this interpreter, installed into its prefix if missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return KERNEL


def run_notebook(name: str, kernel: str, **parameters: Any) -> Any:
    """Execute ``notebooks/NAME`` with ``parameters`` injected after its parameters cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    index = next(
        i
        for i, cell in enumerate(notebook.cells)
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    )
    injected = nbformat.v4.new_code_cell(
        "# Injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    )
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, injected)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name=kernel,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return notebook


def tagged(notebook: Any, tag: str) -> Any:
    """The one code cell carrying ``tag``."""
    (cell,) = [c for c in notebook.cells if tag in c.get("metadata", {}).get("tags", [])]
    return cell


def has_figure(cell: Any) -> bool:
    """Whether a cell displayed a PNG image (a matplotlib figure)."""
    return any("image/png" in output.get("data", {}) for output in cell.outputs)


def printed_line(notebook: Any, prefix: str) -> dict[str, Any]:
    """The JSON after ``prefix`` in the notebook's printed output."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith(prefix):
                    result: dict[str, Any] = json.loads(line[len(prefix) :])
                    return result
    raise AssertionError(f"no line starting with {prefix!r}")


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=[p.name for p in NOTEBOOK_FILES])
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    """A committed notebook holds no outputs and no execution counts (nbstripout)."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], cell.source[:60]
            assert cell.execution_count is None, cell.source[:60]


def test_both_notebooks_are_committed() -> None:
    """The tuning and store-exploration notebooks exist, each with a parameters cell."""
    assert {p.name for p in NOTEBOOK_FILES} >= {"threshold_tuning.ipynb", "explore_store.ipynb"}
    for path in NOTEBOOK_FILES:
        notebook = nbformat.read(path, as_version=4)
        tags = [c.get("metadata", {}).get("tags", []) for c in notebook.cells]
        assert sum("parameters" in t for t in tags) == 1, path.name


def test_threshold_tuning_notebook_writes_loadable_config(kernel_name: str, tmp_path: Path) -> None:
    """The tuning notebook runs on the val split, draws its figures and writes a config."""
    data = require_tweeteval()
    out = tmp_path / "thresholds.toml"
    notebook = run_notebook("threshold_tuning.ipynb", kernel_name, DATA_DIR=str(data), OUT=str(out))
    summary = printed_line(notebook, "TUNING_SUMMARY ")
    tuned = load_thresholds(out)
    assert tuned == Thresholds(summary["negative"], summary["positive"])
    # Same data, folds and grid as the shipped default, so the notebook reproduces it.
    assert tuned == load_thresholds()
    assert summary["cv_mean"] >= summary["baseline_cv_mean"]
    provenance = tomllib.loads(out.read_text(encoding="utf-8"))["provenance"]
    assert provenance["cv"]["folds"] == 5
    assert provenance["metric"] == "macro_recall"
    assert has_figure(tagged(notebook, "heatmap"))
    assert has_figure(tagged(notebook, "confusion"))


@pytest.fixture
def replayed_store(tmp_path: Path) -> str:
    """A store URL filled by ``senti replay`` of a small synthetic stream."""
    stream = tmp_path / "stream.jsonl"
    url = f"sqlite:///{tmp_path / 'senti.db'}"
    env = os.environ | {"PYTHONUTF8": "1"}
    for args in (
        ["generate", "--count", "600", "--seed", "3", "--out", str(stream),
         "--start", "2024-05-01T12:00:00Z", "--rate", "5"],
        ["replay", str(stream), "--track", "python", "--track", "coffee, tea",
         "--store", url, "--window", "20"],
    ):  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
        assert result.returncode == 0, result.stderr
    return url


def test_explore_store_notebook_plots_a_replayed_store(
    kernel_name: str, replayed_store: str
) -> None:
    """The store notebook reads a replayed store and plots polarity and hashtag trends."""
    notebook = run_notebook("explore_store.ipynb", kernel_name, STORE=replayed_store)
    summary = printed_line(notebook, "STORE_SUMMARY ")
    assert summary["store"] == replayed_store
    assert sorted(summary["queries"]) == ["coffee,tea", "python"]
    assert summary["posts"] > 0
    assert all(count > 0 for count in summary["windows"].values())
    assert summary["top_hashtags"]
    assert has_figure(tagged(notebook, "polarity"))
    assert has_figure(tagged(notebook, "hashtags"))


def test_explore_store_notebook_reads_the_store_url_from_senti_store(
    kernel_name: str, replayed_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a ``STORE`` parameter the store notebook opens the URL in ``$SENTI_STORE``."""
    monkeypatch.setenv("SENTI_STORE", replayed_store)
    notebook = run_notebook("explore_store.ipynb", kernel_name)
    summary = printed_line(notebook, "STORE_SUMMARY ")
    assert summary["store"] == replayed_store
    assert sorted(summary["queries"]) == ["coffee,tea", "python"]


def test_threshold_tuning_notebook_reads_senti_labelled_data(
    kernel_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``DATA_DIR`` the tuning notebook reads the directory in ``$SENTI_LABELLED_DATA``
    (the variable ``senti evaluate`` reads) and reproduces the shipped thresholds."""
    data = require_tweeteval()
    monkeypatch.delenv("SENTI_TWEETEVAL_DIR", raising=False)
    monkeypatch.setenv("SENTI_LABELLED_DATA", str(data))
    out = tmp_path / "thresholds.toml"
    notebook = run_notebook("threshold_tuning.ipynb", kernel_name, OUT=str(out))
    printed = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert f"from {data}: from $SENTI_LABELLED_DATA" in printed
    assert load_thresholds(out) == load_thresholds()
