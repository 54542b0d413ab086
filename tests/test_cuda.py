"""The same code on a CUDA GPU: training, the objectives, checkpoints and device errors."""

from __future__ import annotations

import math

import pytest
import torch

from vae_course import checkpoint, training
from vae_course.models import VAE
from vae_course.objectives import elbo, elbo_terms, iwae_bound, log_likelihood
from vae_course.training import fit

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is available here"),
    pytest.mark.cuda,
]


@pytest.fixture(scope="module")
def trained_cpu_model(mnist_train):
    """A small VAE trained briefly on the CPU, so that its posteriors are tight and estimates stable."""
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden_dims=(64,))
    fit(model, mnist_train.images[:1000], epochs=2, device="cpu", progress=False)
    return model


def on(model: VAE, device: str) -> VAE:
    copy = VAE(**model.config)
    copy.load_state_dict(model.state_dict())
    return copy.to(device).eval()


def test_fit_on_cuda(mnist_train, mnist_test):
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden_dims=(32,))
    history = fit(model, mnist_train.images[:512], epochs=2, test_data=mnist_test.images[:256], device="cuda",
                  progress=False)
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert model.prior_loc.device.type == "cuda"
    assert not model.training
    assert history.epochs == 2
    assert all(math.isfinite(v) for split in (history.train, history.test) for vs in split.values() for v in vs)
    assert model.sample(4).device.type == "cuda"


def test_objectives_agree_with_the_cpu(trained_cpu_model, mnist_test):
    x = mnist_test.images[:64]
    cpu, gpu = on(trained_cpu_model, "cpu"), on(trained_cpu_model, "cuda")
    x_gpu = x.cuda()
    with torch.no_grad():
        # Deterministic: the analytic KL and the mean reconstruction.
        kl_cpu, kl_gpu = elbo_terms(cpu, x).kl, elbo_terms(gpu, x_gpu).kl.cpu()
        torch.testing.assert_close(kl_gpu, kl_cpu, rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(gpu.reconstruct(x_gpu).cpu(), cpu.reconstruct(x), rtol=1e-3, atol=1e-3)
        # Monte Carlo: the devices draw different samples, so compare batch means of many-sample estimates.
        for estimate in (lambda m, v: elbo(m, v, num_samples=200), lambda m, v: iwae_bound(m, v, 200),
                         lambda m, v: log_likelihood(m, v, num_samples=1000)):
            mean_cpu = estimate(cpu, x).mean().item()
            mean_gpu = estimate(gpu, x_gpu).mean().item()
            assert math.isfinite(mean_gpu)
            assert mean_gpu == pytest.approx(mean_cpu, rel=2e-2)  # CPU seeds differ by <= 0.4%
        terms = elbo_terms(gpu, x_gpu)
        assert terms.kl.device.type == "cuda" and terms.reconstruction.shape == (64,)


def test_cuda_checkpoint_loads_on_the_cpu(trained_cpu_model, tmp_path):
    gpu = on(trained_cpu_model, "cuda")
    checkpoint.save(gpu, tmp_path / "gpu.pt")
    loaded = checkpoint.load(tmp_path / "gpu.pt")
    state, saved = loaded.state_dict(), gpu.state_dict()
    assert state.keys() == saved.keys()
    for key in state:
        assert state[key].device.type == "cpu"
        assert torch.equal(state[key], saved[key].cpu())


def test_input_on_the_wrong_device_names_the_fix(trained_cpu_model, mnist_test):
    gpu = on(trained_cpu_model, "cuda")
    with pytest.raises(ValueError, match=r"\.to\("):
        elbo(gpu, mnist_test.images[:4])
    with pytest.raises(ValueError, match=r"\.to\("):
        gpu.reconstruct(mnist_test.images[:4])


def test_a_training_epoch_never_waits_for_the_gpu(mnist_train, monkeypatch):
    """Between fit's first and last mini-batch nothing waits for the device: torch raises on any sync."""
    original_batches = training.batches

    def strict_batches(*args, **kwargs):
        iterator = original_batches(*args, **kwargs)
        first = next(iterator)  # the shuffled order reaches the device here, before the first step
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield first
            yield from iterator
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(training, "batches", strict_batches)
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden_dims=(32,))
    history = fit(model, mnist_train.images[:512], epochs=1, batch_size=64, device="cuda", progress=False)
    assert history.epochs == 1 and math.isfinite(history.train["loss"][0])

    torch.cuda.set_sync_debug_mode("error")  # and the mode does catch a sync: encode's own value check
    try:
        with pytest.raises(RuntimeError, match="synchroniz"):
            model.encode(mnist_train.images[:4].cuda())
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_cvae_and_the_part_3_options_train_on_cuda(mnist_train, mnist_test):
    """The labels follow the model to the GPU (they were once checked on the CPU, before the model moved);
    dequantized batches and the IWAE loss run there too."""
    from vae_course.models import CVAE

    train, test = mnist_train.subset(512), mnist_test.subset(256)
    torch.manual_seed(0)
    history = fit(CVAE(latent_dim=2, hidden_dims=(32,)), train, epochs=1, test_data=test, device="cuda",
                  binarized=True, progress=False)
    assert math.isfinite(history.test["neg_elbo"][0])
    torch.manual_seed(0)
    grey = VAE(latent_dim=2, hidden_dims=(32,), likelihood="continuous_bernoulli")
    history = fit(grey, train, epochs=1, test_data=test, device="cuda", dequantized=True, loss="iwae",
                  num_samples=4, progress=False)
    assert history.test["loss"][0] <= history.test["neg_elbo"][0] + 1e-3
