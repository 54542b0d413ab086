"""The figures in ``figures/``, regenerated from nothing by ``python -m vae_course figures``.

Trains what the figures need (a 20-d VAE, a 2-d VAE and the 2-d ablations of notebook 06, a beta sweep
(09), four likelihoods on Fashion-MNIST (08), a CVAE (10)) on the notebooks' data and settings, then draws
every figure with ``vae_course.plotting`` and writes it as a PNG, with an index ``README.md`` that states the data, the settings and one caption per
figure. Nothing in ``figures/`` is drawn or edited by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .data import ImageData, binarize, dequantize, load_dataset
from .gaps import inference_gaps
from .latent import interpolate, kl_per_dimension, traverse
from .models import CVAE, VAE
from .plotting import (plot_curves, plot_kl_per_dimension, plot_rate_distortion, scatter_latent, show_images,
                       show_manifold, show_traversal)
from .training import History, evaluate, fit, get_device

# The 2-d models of notebook 06's ablation: what each minimises, and its fit() arguments.
ABLATIONS: dict[str, dict] = {
    "beta = 0 (no KL term)": {"beta": 0.0},
    "KL only (no reconstruction term)": {"loss": "kl_only"},
    "beta = 1 (the VAE)": {"beta": 1.0},
    "beta = 8": {"beta": 8.0},
}
BETAS = (0.1, 0.3, 1.0, 3.0, 10.0)  # the rate-distortion sweep of notebook 09, 20-d VAEs
# The likelihoods of notebook 08 on Fashion-MNIST: VAE arguments, and fit's data option.
LIKELIHOODS: dict[str, tuple[dict, dict]] = {
    "Bernoulli, binarized": ({"likelihood": "bernoulli"}, {"binarized": True}),
    "Bernoulli (BCE), grey": ({"likelihood": "bernoulli"}, {}),
    "continuous Bernoulli": ({"likelihood": "continuous_bernoulli"}, {"dequantized": True}),
    "Gaussian, learned sigma": ({"likelihood": "gaussian"}, {"dequantized": True}),
}

CAPTIONS: dict[str, str] = {
    "reconstructions.png": "Test digits (odd rows) and their reconstructions by the 20-d VAE (even rows).",
    "prior_samples.png": "New digits: decoded z ~ p(z) = N(0, I) of the 20-d VAE.",
    "learning_curves.png": "Train (solid) and test (dashed) -ELBO = distortion + rate, in nats per image.",
    "kl_per_dimension.png": "KL per latent dimension of the 20-d VAE: the nats each carries (near 0: an unused dimension).",
    "manifold.png": "Decoded manifold of the 2-d VAE (the ablation's beta = 1): 20 x 20 codes equally spaced in prior probability.",
    "latent_scatter.png": "Posterior means of the binarized test digits under that 2-d VAE, coloured by digit.",
    "interpolation.png": "Straight lines between the codes of two test digits, decoded by the 20-d VAE.",
    "traversal.png": "One dimension at a time from -3 to 3, others at a test digit's code, most-used dimensions first.",
    "ablation_scatter.png": "The 2-d codes of test digits under each objective of notebook 06's ablation (dashed: 95 % of p(z)).",
    "rate_distortion.png": "Notebook 09's beta sweep in the rate-distortion plane: test (R, D) of 20-d VAEs, dashed lines of equal -ELBO = D + R.",
    "likelihoods.png": "Notebook 08's likelihoods on Fashion-MNIST: each model's mean reconstruction and a sample with the likelihood's own noise.",
    "same_style_every_digit.png": "Notebook 10's 2-d CVAE: each test digit's code (its style) decoded with every label 0-9.",
    "inference_gaps.png": "Notebook 11's inference gaps of the 20-d VAE: log p(x) - ELBO split into the approximation and the amortization gap, per test digit.",
}


@dataclass
class Settings:
    """What the figures are trained on: the notebooks' fixed subsets and epochs by default."""

    num_train: int = 4000
    num_test: int = 1000
    epochs: int = 30
    epochs_2d: int = 15
    seed: int = 0


def make_figures(out: str | Path, settings: Settings | None = None, device: torch.device | str | None = None,
                 log: Callable[[str], None] = print) -> list[Path]:
    """Train the models and write every figure of ``CAPTIONS`` (and ``README.md``) into ``out``."""
    settings = settings or Settings()
    device = torch.device(device) if device is not None else get_device()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train = load_dataset("mnist", "train").subset(settings.num_train)
    test = load_dataset("mnist", "test").subset(settings.num_test)
    log(f"data: {train.source}; {test.source}")

    def trained(latent_dim: int, epochs: int, **objective) -> tuple[VAE, History]:
        torch.manual_seed(settings.seed)
        model = VAE(latent_dim)
        history = fit(model, train, epochs=epochs, test_data=test, device=device, seed=settings.seed,
                      binarized=True, progress=False, **objective)
        log(f"trained VAE({latent_dim}) {objective or ''}: {history.describe_epoch(history.epochs - 1)}")
        return model, history

    vae, history = trained(20, settings.epochs)
    ablations = {name: trained(2, settings.epochs_2d, **objective)[0] for name, objective in ABLATIONS.items()}
    vae_2d = ablations["beta = 1 (the VAE)"]
    x_test = binarize(test.images, torch.Generator().manual_seed(settings.seed)).to(device)  # as the notebooks
    sweep = {beta: trained(20, settings.epochs_2d, beta=beta)[0] for beta in BETAS}

    # A 2-d CVAE, as notebook 10's grid: with 20 dimensions the code keeps the digit and the label is ignored.
    torch.manual_seed(settings.seed)
    cvae = CVAE(2)
    fit(cvae, train, epochs=settings.epochs, device=device, seed=settings.seed, binarized=True, progress=False)
    log(f"trained CVAE(2) for {settings.epochs} epochs")

    fashion = load_dataset("fashion-mnist", "train").subset(settings.num_train)
    fashion_test = load_dataset("fashion-mnist", "test").subset(16)
    log(f"data for the likelihoods: {fashion.source}")
    likelihoods = {}
    for name, (arguments, data_option) in LIKELIHOODS.items():
        torch.manual_seed(settings.seed)
        likelihoods[name] = VAE(20, **arguments)
        fit(likelihoods[name], fashion, epochs=settings.epochs_2d, device=device, seed=settings.seed, progress=False,
            **data_option)
        log(f"trained VAE(20, {arguments}) on Fashion-MNIST for {settings.epochs_2d} epochs")

    torch.manual_seed(settings.seed)
    gaps = inference_gaps(vae, x_test[:24], steps=300, elbo_samples=1000, evidence_samples=2000)
    log(f"inference gaps: approximation {gaps.approximation.mean():.2f}, amortization {gaps.amortization.mean():.2f} nats")

    drawings = {
        **_drawings(vae, history, vae_2d, ablations, x_test, test),
        **_course_part_three_and_four(sweep, x_test, likelihoods, fashion_test.images.to(device), cvae, test, gaps),
    }
    written = []
    with torch.no_grad():
        for name, draw in drawings.items():
            figure = draw()
            path = out / name
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
            log(f"wrote {path}")
    (out / "README.md").write_text(_index(train, test, settings))
    return written


def _drawings(vae: VAE, history: History, vae_2d: VAE, ablations: dict[str, VAE], x_test: torch.Tensor,
              test: ImageData) -> dict[str, Callable[[], Figure]]:
    """One function per figure file, each returning the drawn Figure."""

    def reconstructions() -> Figure:
        originals = x_test[:32]
        pairs = torch.stack([originals.reshape(2, 16, 1, 28, 28), vae.reconstruct(originals).reshape(2, 16, 1, 28, 28)], 1)
        return show_images(pairs.reshape(-1, 1, 28, 28), nrow=16, title="Test digits and their reconstructions").figure

    def prior_samples() -> Figure:
        torch.manual_seed(0)
        return show_images(vae.sample(64), nrow=16, title="Decoded samples z ~ p(z)").figure

    def learning_curves() -> Figure:
        figure, axes = plt.subplots(1, 3, figsize=(13, 3.5))
        titles = {"neg_elbo": "-ELBO = D + R falls fast, then slowly", "distortion": "distortion D falls",
                  "rate": "rate R = KL(q || p) rises as the code is used"}
        for ax, (metric, title) in zip(axes, titles.items()):
            plot_curves(history, metrics=(metric,), title=title, ax=ax)
        figure.tight_layout()
        return figure

    def kl_dimensions() -> Figure:
        return plot_kl_per_dimension(kl_per_dimension(vae, x_test), title="KL(q(z_d|x) || p(z_d)) per dimension").figure

    def manifold() -> Figure:
        return show_manifold(vae_2d, num_per_side=20, title="Decoded manifold of the 2-d VAE").figure

    def latent_scatter() -> Figure:
        return scatter_latent(vae_2d.encode(x_test).mean, test.labels, title="Posterior means of test digits").figure

    def interpolation() -> Figure:
        codes = vae.encode(x_test).mean
        firsts = {digit: int((test.labels == digit).nonzero()[0]) for digit in range(10)}
        pairs = [(0, 6), (1, 7), (3, 8), (4, 9), (2, 5)]
        rows = torch.stack([vae.decode(interpolate(codes[firsts[a]], codes[firsts[b]], 10)).mean for a, b in pairs])
        return show_traversal(rows, row_labels=[f"{a} to {b}" for a, b in pairs],
                              title="Interpolating between the codes of two test digits").figure

    def traversal() -> Figure:
        order = torch.argsort(kl_per_dimension(vae, x_test), descending=True)[:8]
        z = vae.encode(x_test[:1]).mean[0]
        values = torch.linspace(-3, 3, 11)
        rows = torch.stack([vae.decode(traverse(z, int(d), values)).mean for d in order])
        return show_traversal(rows, row_labels=[f"z[{d}]" for d in order.tolist()],
                              column_labels=[f"{round(v, 1) + 0.0:.1f}" for v in values.tolist()],  # + 0.0: no "-0.0"
                              title="Traversals: one dimension from -3 to 3, the others fixed").figure

    def ablation_scatter() -> Figure:
        figure, axes = plt.subplots(1, len(ablations), figsize=(4.2 * len(ablations), 4))
        for ax, (name, model) in zip(axes, ablations.items()):
            scatter_latent(model.encode(x_test).mean, test.labels, title=name, ax=ax, prior_mass=0.95)
            if ax is not axes[-1]:
                ax.get_legend().remove()
        figure.tight_layout()
        return figure

    return {"reconstructions.png": reconstructions, "prior_samples.png": prior_samples,
            "learning_curves.png": learning_curves, "kl_per_dimension.png": kl_dimensions,
            "manifold.png": manifold, "latent_scatter.png": latent_scatter, "interpolation.png": interpolation,
            "traversal.png": traversal, "ablation_scatter.png": ablation_scatter}


def _course_part_three_and_four(sweep: dict[float, VAE], x_test: torch.Tensor, likelihoods: dict[str, VAE],
                                fashion: torch.Tensor, cvae: CVAE, test: ImageData, gaps) -> dict[str, Callable[[], Figure]]:
    """The figures of notebooks 08-11."""

    def rate_distortion() -> Figure:
        torch.manual_seed(0)
        metrics = [evaluate(model, x_test) for model in sweep.values()]
        thumbnails = [model.reconstruct(x_test[:4]) for model in sweep.values()]
        ax = plot_rate_distortion([m["rate"] for m in metrics], [m["distortion"] for m in metrics],
                                  labels=[f"beta = {beta:g}" for beta in sweep], images=thumbnails,
                                  title="The beta sweep: more rate buys less distortion")
        return ax.figure

    def likelihood_grid() -> Figure:
        torch.manual_seed(0)
        originals = fashion[:8]
        rows, labels = [originals], ["test images"]
        for name, model in likelihoods.items():
            decoded = model.decode(model.encode(originals).mean)
            rows += [decoded.mean.clamp(0, 1), decoded.sample().clamp(0, 1)]
            labels += [f"{name}: mean", f"{name}: a sample"]
        return show_traversal(torch.stack(rows), row_labels=labels,
                              title="Reconstructions: the mean of p(x|z), and a sample with its noise").figure

    def same_style() -> Figure:
        firsts = [int((test.labels == digit).nonzero()[0]) for digit in (0, 2, 4, 7, 8, 9)]
        x, y = x_test[firsts], test.labels[firsts].to(x_test.device)
        codes = cvae.encode(x, y).mean  # (6, latent_dim): each digit's style
        grid = torch.stack([torch.cat([x[i:i + 1], cvae.decode(codes[i].expand(10, -1), torch.arange(10)).mean])
                            for i in range(len(firsts))])
        return show_traversal(grid, row_labels=[f"a test {int(label)}" for label in y],
                              column_labels=["input", *map(str, range(10))],
                              title="Same style, every digit: one code decoded with each label").figure

    def gap_bars() -> Figure:
        figure, ax = plt.subplots(figsize=(9, 3.5))
        index = torch.arange(len(gaps.total)).numpy()
        approximation, amortization = gaps.approximation.cpu().numpy(), gaps.amortization.cpu().numpy()
        ax.bar(index, approximation, color="C0", label="approximation gap: log p(x) - ELBO(q*)")
        ax.bar(index, amortization, bottom=approximation, color="C1", label="amortization gap: ELBO(q*) - ELBO(q_phi)")
        ax.set_xlabel("test digit")
        ax.set_ylabel("nats")
        ax.set_title("Whose fault is the ELBO's gap? The family's (blue) and the encoder's (orange)")
        ax.legend(fontsize="small")
        return figure

    return {"rate_distortion.png": rate_distortion, "likelihoods.png": likelihood_grid,
            "same_style_every_digit.png": same_style, "inference_gaps.png": gap_bars}


def _index(train: ImageData, test: ImageData, settings: Settings) -> str:
    lines = [
        "# figures/",
        "",
        "Written by `python -m vae_course figures` (`make figures`), never by hand. Run it again to regenerate",
        "every file here from nothing.",
        "",
        f"- data: {train.source}; {test.source}",
        f"- models: VAE(20) and CVAE(2) trained {settings.epochs} epochs; 2-d VAEs and the beta sweep's VAE(20)s"
        f" {settings.epochs_2d} epochs each; dynamically binarized training images, Adam, batch 128, seed {settings.seed}",
        f"- likelihoods: VAE(20)s on the first {settings.num_train} Fashion-MNIST training images, {settings.epochs_2d}"
        " epochs each (binarized, grey, or dequantized as each likelihood needs)",
        "",
        "| file | what it shows |",
        "| --- | --- |",
        *(f"| `{name}` | {caption} |" for name, caption in CAPTIONS.items()),
        "",
    ]
    return "\n".join(lines)
