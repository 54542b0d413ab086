"""The figures in ``figures/``, regenerated from nothing by ``python -m vae_course figures``.

Trains what the figures need (a 20-d VAE, a 2-d VAE and the 2-d ablations of notebook 06) on the same
data and settings as notebooks 06 and 07, then draws every figure with ``vae_course.plotting`` and
writes it as a PNG, with an index ``README.md`` that states the data, the settings and one caption per
figure. Nothing in ``figures/`` is drawn or edited by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from .data import ImageData, binarize, load_dataset
from .latent import interpolate, kl_per_dimension, traverse
from .models import VAE
from .plotting import plot_curves, plot_kl_per_dimension, scatter_latent, show_images, show_manifold, show_traversal
from .training import History, fit, get_device

# The 2-d models of notebook 06's ablation: what each minimises, and its fit() arguments.
ABLATIONS: dict[str, dict] = {
    "beta = 0 (no KL term)": {"beta": 0.0},
    "KL only (no reconstruction term)": {"loss": "kl_only"},
    "beta = 1 (the VAE)": {"beta": 1.0},
    "beta = 8": {"beta": 8.0},
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

    written = []
    with torch.no_grad():
        for name, draw in _drawings(vae, history, vae_2d, ablations, x_test, test).items():
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


def _index(train: ImageData, test: ImageData, settings: Settings) -> str:
    lines = [
        "# figures/",
        "",
        "Written by `python -m vae_course figures` (`make figures`), never by hand. Run it again to regenerate",
        "every file here from nothing.",
        "",
        f"- data: {train.source}; {test.source}",
        f"- models: VAE(20) trained {settings.epochs} epochs; 2-d VAEs {settings.epochs_2d} epochs each;"
        f" dynamically binarized training images, Adam, batch 128, seed {settings.seed}",
        "",
        "| file | what it shows |",
        "| --- | --- |",
        *(f"| `{name}` | {caption} |" for name, caption in CAPTIONS.items()),
        "",
    ]
    return "\n".join(lines)
