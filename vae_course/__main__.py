"""Command line: train a model outside the notebooks, or regenerate the course's figures.

    python -m vae_course train --dataset mnist --model vae --latent-dim 20 --epochs 10 --out runs/vae20

prints per-epoch numbers, saves ``model.pt`` (resumed if the command is run again), ``history.json``,
and ``reconstructions.png`` / ``samples.png`` image grids in the ``--out`` directory.

    python -m vae_course figures

trains the models the figures need and rewrites every PNG in ``figures/`` (``vae_course.figures``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torchvision.utils import save_image

from .checkpoint import CheckpointError, atomic_write
from .data import DATASETS, DataUnavailableError, load_dataset
from .figures import Settings, make_figures
from .models import LIKELIHOODS, VAE, Autoencoder, ConvVAE
from .training import History, fit, get_device

MODEL_CHOICES = ("ae", "vae", "conv-vae")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vae_course", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model and save it with example images",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--dataset", choices=DATASETS, default="mnist")
    train.add_argument("--model", choices=MODEL_CHOICES, default="vae")
    train.add_argument("--latent-dim", type=int, default=20)
    train.add_argument("--hidden-dims", type=int, nargs="+", default=[400], help="MLP hidden sizes (ae, vae)")
    train.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli", help="p(x|z) (vae, conv-vae)")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (0: no KL)")
    train.add_argument("--binarized", action="store_true", help="dynamic binarization, as in the literature")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    train.add_argument("--out", type=Path, required=True, help="directory for the checkpoint, history and images")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    defaults = Settings()
    figures = commands.add_parser("figures", help="train what the figures need and rewrite every PNG in figures/",
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    figures.add_argument("--out", type=Path, default=Path("figures"), help="directory for the PNGs and README.md")
    figures.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs of the 20-d VAE")
    figures.add_argument("--epochs-2d", type=int, default=defaults.epochs_2d, help="epochs of each 2-d VAE")
    figures.add_argument("--num-train", type=int, default=defaults.num_train, help="training images used")
    figures.add_argument("--num-test", type=int, default=defaults.num_test, help="test images used")
    figures.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    return parser


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)  # the model's initial weights
    if args.model == "ae":
        model: torch.nn.Module = Autoencoder(args.latent_dim, args.hidden_dims)
    elif args.model == "vae":
        model = VAE(args.latent_dim, args.hidden_dims, args.likelihood)
    else:
        model = ConvVAE(args.latent_dim, args.likelihood)
    train_data = load_dataset(args.dataset, "train")
    test_data = load_dataset(args.dataset, "test")
    device = torch.device(args.device) if args.device else get_device()
    print(f"data: {train_data.source}; {test_data.source}")
    print(f"model: {type(model).__name__}{model.config} on {device}")
    checkpoint = args.out / "model.pt"
    if checkpoint.exists():
        print(f"resuming from {checkpoint}")

    def report(history: History) -> None:
        print(history.describe_epoch(history.epochs - 1), flush=True)

    history = fit(model, train_data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  test_data=test_data, device=device, seed=args.seed, beta=args.beta, binarized=args.binarized,
                  progress=not args.no_progress, checkpoint=checkpoint, on_epoch_end=report)
    text = json.dumps(history.to_dict(), indent=1).encode()
    atomic_write(args.out / "history.json", lambda file: file.write(text))
    with torch.no_grad():
        originals = test_data.images[:8].to(device)
        save_image(torch.cat([originals, model.reconstruct(originals)]), args.out / "reconstructions.png", nrow=8)
        saved = ["reconstructions.png (top: test images, bottom: reconstructions)"]
        if hasattr(model, "sample"):
            save_image(model.sample(64), args.out / "samples.png", nrow=8)
            saved.append("samples.png (decoded z ~ p(z))")
    print(f"saved in {args.out}: model.pt, history.json, " + ", ".join(saved))


def figures(args: argparse.Namespace) -> None:
    settings = Settings(num_train=args.num_train, num_test=args.num_test, epochs=args.epochs, epochs_2d=args.epochs_2d)
    written = make_figures(args.out, settings, device=args.device)
    print(f"wrote {len(written)} figures and README.md in {args.out}")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        train(args) if args.command == "train" else figures(args)
    except (ValueError, FileExistsError, CheckpointError, DataUnavailableError) as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
