"""The benchmark scripts run and write valid JSON (benchmarks/), and the throughput benchmark's minimal
training step is the same training as ``fit``.

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
from torch import nn

from vae_course.data import DataUnavailableError
from vae_course.models import VAE
from vae_course.objectives import elbo_terms
from vae_course.training import fit

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MEASURED = ("fit", "minimal_step", "baseline", "roofline")


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_throughput_summary(summary: dict, num_images: int) -> None:
    assert summary["num_images"] == num_images and summary["batch_size"] == 128
    assert summary["threads"] >= 1 and summary["device"] and summary["torch"]
    assert list(summary["results"]) == list(MEASURED)
    for result in summary["results"].values():
        for key in ("images_per_second", "ratio_to_baseline", "percent_of_minimal_step", "percent_of_roofline"):
            assert math.isfinite(result[key]) and result[key] > 0, key
        assert len(result["all_rounds"]) == summary["repeats"]
    results = summary["results"]
    assert results["baseline"]["ratio_to_baseline"] == pytest.approx(1.0)
    assert results["roofline"]["percent_of_roofline"] == pytest.approx(100.0)
    assert results["minimal_step"]["percent_of_minimal_step"] == pytest.approx(100.0)
    # The verdict is the ratio of the two medians, and says whether it reaches the target.
    verdict = summary["fit_vs_minimal_step"]
    fit_rate, minimal_rate = results["fit"]["images_per_second"], results["minimal_step"]["images_per_second"]
    assert verdict["percent"] == pytest.approx(100 * fit_rate / minimal_rate)
    assert verdict["percent"] == pytest.approx(results["fit"]["percent_of_minimal_step"])
    assert verdict["target_percent"] == 95 and verdict["met"] == (verdict["percent"] >= 95)
    assert verdict["per_round_percent"] == pytest.approx(
        [100 * f / m for f, m in zip(results["fit"]["all_rounds"], results["minimal_step"]["all_rounds"])])
    assert "fused" in summary["optimizer"] or "unfused" in summary["optimizer"]
    assert set(summary["load_average"]) == {"before", "after"}


@pytest.mark.slow
def test_train_throughput_command_writes_json(tmp_path):
    out = tmp_path / "throughput.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "train_throughput.py"), "--images", "256", "--repeats", "1",
         "--device", "cpu", "--threads", "1", "--clock", "cpu", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    check_throughput_summary(summary, 256)
    assert summary["threads"] == 1 and summary["clock"] == "cpu"
    table = done.stdout
    assert all(row in table for row in ("fit", "minimal step", "baseline", "roofline"))
    assert "% of minimal" in table and "% of roofline" in table and "threads" in table and "optimizer" in table
    assert "clock: cpu" in table
    assert f"fit = {summary['fit_vs_minimal_step']['percent']:.1f} % of the minimal step (target >= 95 %)" in table


class FixedNoise:
    """``model`` (the model protocol) whose q(z|x).rsample() returns mu + sigma * ``eps``: the objectives'
    one sample made equal to the one a test chose."""

    def __init__(self, model: VAE, eps: torch.Tensor) -> None:
        self.model, self.eps, self.latent_dim = model, eps, model.latent_dim

    @property
    def prior(self):
        return self.model.prior

    def encode(self, x: torch.Tensor):
        posterior = self.model.encode(x)
        posterior.rsample = lambda sample_shape=torch.Size(): (
            posterior.mean + posterior.stddev * self.eps.expand(*sample_shape, *self.eps.shape))
        return posterior

    def decode(self, z: torch.Tensor):
        return self.model.decode(z)


def linears(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


@pytest.mark.parametrize("binary", [False, True], ids=["grey", "binary"])
def test_minimal_step_computes_fits_objective(binary):
    """Same weights, batch and noise eps: the minimal step's distortion, rate and loss are the package's
    -E_q[log p(x|z)], KL(q || p) and -ELBO (``elbo_terms``, through torch.distributions), per example,
    and so are the gradients of the batch mean."""
    benchmark = load_script("train_throughput")
    torch.manual_seed(3)
    vae = VAE().double()
    for layer in linears(vae):  # larger weights than at initialisation: log-variances far from 0
        nn.init.normal_(layer.weight, std=0.1)
        nn.init.normal_(layer.bias, std=0.5)
    net = benchmark.MinimalVAE.from_vae(vae)
    x = torch.rand(16, 1, 28, 28, dtype=torch.float64)
    x = torch.bernoulli(x) if binary else x
    eps = torch.randn(16, vae.latent_dim, dtype=torch.float64)

    distortion, rate = benchmark.minimal_terms(net, x, eps)
    terms = elbo_terms(FixedNoise(vae, eps), x)
    assert distortion.shape == rate.shape == (16,)
    assert rate.min() > 1.0  # the KL term is not negligible here, so a wrong KL would show
    torch.testing.assert_close(distortion, terms.distortion, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(rate, terms.rate, rtol=1e-10, atol=1e-8)
    torch.testing.assert_close(distortion + rate, -terms.elbo, rtol=1e-10, atol=1e-8)

    (distortion + rate).mean().backward()
    (-terms.elbo).mean().backward()
    for mine, theirs in zip((net.enc_hidden, net.enc_out, net.dec_hidden, net.dec_out), linears(vae)):
        torch.testing.assert_close(mine.weight.grad, theirs.weight.grad, rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(mine.bias.grad, theirs.bias.grad, rtol=1e-8, atol=1e-10)


def test_minimal_step_trains_like_fit():
    """One epoch of the minimal step ends where one epoch of ``fit`` does (same initial weights, batches,
    noise, loss and Adam), in float64 so that float rounding cannot hide a difference."""
    benchmark = load_script("train_throughput")
    cpu = torch.device("cpu")
    torch.manual_seed(1)
    images = torch.rand(300, 1, 28, 28, dtype=torch.float64)  # 3 batches, the last one smaller

    start = [p.detach().clone() for p in benchmark.fresh_model(cpu).parameters()]
    assert all(torch.equal(a, b.detach()) for a, b in zip(start, benchmark.fresh_minimal(cpu).parameters()))
    vae = benchmark.fresh_model(cpu).double()
    fit(vae, images, epochs=1, batch_size=benchmark.BATCH_SIZE, lr=benchmark.LR, device=cpu,
        seed=benchmark.SEED, progress=False)
    net = benchmark.run_minimal(images, cpu)

    trained_fit = torch.cat([p.detach().flatten() for layer in linears(vae) for p in (layer.weight, layer.bias)])
    trained_minimal = torch.cat([p.detach().flatten() for p in net.parameters()])
    initial = torch.cat([p.flatten() for p in start]).double()
    moved = (trained_fit - initial).norm()
    assert moved > 1e-3, "fit changed the weights"
    assert (trained_minimal - trained_fit).norm() < 1e-9 * moved


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
    assert summary["dataset"] == "mnist" and summary["clock"] == "wall"
    assert json.loads((tmp_path / "t.json").read_text()) == json.loads(json.dumps(summary))
    check_throughput_summary(summary, 100)


def test_train_throughput_refuses_cpu_time_for_a_gpu(capsys):
    with pytest.raises(SystemExit):
        load_script("train_throughput").main(["--device", "cuda", "--clock", "cpu"])
    assert "--clock cpu measures CPU time" in capsys.readouterr().err


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
