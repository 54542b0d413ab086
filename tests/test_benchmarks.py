"""The benchmark scripts run and write valid JSON (benchmarks/).

Nothing here checks a timing: machines are noisy, so speed is measured by the scripts, never asserted.
Each script runs on a tiny workload, into a file under ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from vae_course.data import DataUnavailableError

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MEASURED = ("fit", "baseline", "roofline")


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_throughput_summary(summary: dict, num_images: int) -> None:
    assert summary["num_images"] == num_images and summary["batch_size"] == 128
    assert summary["threads"] >= 1 and summary["device"] and summary["torch"]
    assert set(summary["results"]) == set(MEASURED)
    for result in summary["results"].values():
        for key in ("images_per_second", "ratio_to_baseline", "percent_of_roofline"):
            assert math.isfinite(result[key]) and result[key] > 0, key
        assert len(result["all_rounds"]) == summary["repeats"]
    assert summary["results"]["baseline"]["ratio_to_baseline"] == pytest.approx(1.0)
    assert summary["results"]["roofline"]["percent_of_roofline"] == pytest.approx(100.0)


@pytest.mark.slow
def test_train_throughput_command_writes_json(tmp_path):
    out = tmp_path / "throughput.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_throughput.py"), "--images", "256", "--repeats", "1",
         "--device", "cpu", "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    check_throughput_summary(summary, 256)
    assert summary["threads"] == 1
    table = done.stdout
    assert all(name in table for name in MEASURED) and "% of roofline" in table and "threads" in table


@pytest.mark.slow
def test_train_throughput_falls_back_to_mnist_with_a_warning(tmp_path, monkeypatch, capsys):
    benchmark = load_script("train_throughput")
    real_load = benchmark.load_dataset

    def no_fashion_mnist(name, split="train"):
        if name == "fashion-mnist":
            raise DataUnavailableError("Could not load Fashion-MNIST (train). Tried: nothing (test)")
        return real_load(name, split)

    monkeypatch.setattr(benchmark, "load_dataset", no_fashion_mnist)
    summary = benchmark.main(["--images", "100", "--repeats", "2", "--device", "cpu", "--out", str(tmp_path / "t.json")])
    assert "WARNING: Fashion-MNIST is unavailable" in capsys.readouterr().err
    assert summary["dataset"] == "mnist"
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(json.dumps(summary))
    check_throughput_summary(summary, 100)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is available here")
def test_train_throughput_runs_on_cuda(tmp_path):
    summary = load_script("train_throughput").main(
        ["--images", "256", "--repeats", "1", "--device", "cuda", "--out", str(tmp_path / "t.json")])
    assert summary["device"].startswith("cuda") and summary["machine"] == torch.cuda.get_device_name()
    check_throughput_summary(summary, 256)


@pytest.mark.slow
def test_course_runtime_times_and_checks_notebooks(tmp_path):
    def notebook(name: str, stored_output: str) -> Path:
        cell = nbformat.v4.new_code_cell("print(6 * 7)", execution_count=1)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored_output)]
        path = tmp_path / name
        nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
        return path

    good, stale = notebook("good.ipynb", "42\n"), notebook("stale.ipynb", "41\n")
    out = tmp_path / "runtime.json"
    status = load_script("course_runtime").main([str(good), str(stale), "--out", str(out)])
    assert status == 1, "a notebook whose output no longer matches fails the run"
    summary = json.loads(out.read_text())
    assert [(row["notebook"], row["passed"]) for row in summary["notebooks"]] == [("good.ipynb", True), ("stale.ipynb", False)]
    assert all(row["seconds"] > 0 for row in summary["notebooks"])
    assert summary["total_seconds"] == pytest.approx(sum(row["seconds"] for row in summary["notebooks"]))
