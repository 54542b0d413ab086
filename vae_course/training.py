"""Training: one ``fit`` for the autoencoder and every VAE.

Introduced in notebook 01 (autoencoder) and notebook 06 (VAE on MNIST).

The loop is written for speed on a laptop CPU as much as on a GPU: the whole dataset sits on the
training device as one tensor, mini-batches are gathered by index (``vae_course.data.batches``), and
per-step metrics are accumulated as tensors and read back once per epoch, so the device never waits
for Python in the middle of an epoch, and Adam updates the parameters with one fused kernel per step.
``benchmarks/train_throughput.py`` measures the result against a tutorial pipeline.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as checkpoints
from ._checks import check_images, check_labels, finite_number, positive_int, values_already_checked
from .data import ImageData, batches, binarize, dequantize
from .objectives import elbo_terms, free_bits_rate, iwae_terms, reconstruction_loss

LOSSES = ("auto", "elbo", "iwae", "kl_only", "reconstruction")
_SETTINGS_ADDED_LATER = {"kl_warmup_epochs": 0.0, "free_bits": 0.0, "dequantized": False, "num_samples": 1}
EVAL_BATCH_SIZE = 1000


def get_device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class History:
    r"""Per-epoch numbers of one ``fit`` run, in nats per example (averaged over examples).

    ``train`` and ``test`` map a metric name to one value per epoch. For a VAE the metrics are
    "loss" (what was minimised: :math:`D + \beta R`, or the rate :math:`R` alone for "kl_only"), "neg_elbo"
    (:math:`-\mathrm{ELBO} = D + R`), "rate" (:math:`R = \mathrm{KL}(q(z \mid x) \,\|\, p(z))`) and
    "distortion" (:math:`D = -\mathbb{E}_q[\log p(x \mid z)]`).
    For the autoencoder they are "loss" and "distortion" (both the summed binary cross-entropy).
    Train numbers are averages over the epoch's mini-batches, taken while the model was learning;
    test numbers are measured after the epoch.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    test: dict[str, list[float]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    images_per_second: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        return cls(**values)

    def __str__(self) -> str:
        return "\n".join(self.describe_epoch(i) for i in range(self.epochs))

    def describe_epoch(self, index: int) -> str:
        """One line of numbers for epoch ``index`` (0-based)."""
        parts = [f"epoch {index + 1}"]
        for split, metrics in (("train", self.train), ("test", self.test)):
            for name, values in metrics.items():
                # The loss is shown unless it is one of the other numbers (-ELBO when beta = 1, ...).
                if name == "loss" and any(v[index] == values[index] for k, v in metrics.items() if k != "loss"):
                    continue
                parts.append(f"{split} {name} {values[index]:.2f}")
        parts.append(f"{self.images_per_second[index]:,.0f} img/s")
        return " | ".join(parts)


def fit(
    model: nn.Module,
    train_data: torch.Tensor | ImageData,
    *,
    epochs: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    test_data: torch.Tensor | ImageData | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
    beta: float = 1.0,
    loss: str = "auto",
    num_samples: int = 1,
    kl_warmup_epochs: float = 0.0,
    free_bits: float = 0.0,
    binarized: bool = False,
    dequantized: bool = False,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    on_epoch_end: Callable[[History], None] | None = None,
) -> History:
    r"""Train ``model`` with Adam and return its ``History``.

    The loss per example (averaged over each mini-batch for the gradient step):

    - ``"elbo"``: distortion + beta * rate,
      :math:`-\mathbb{E}_q[\log p(x \mid z)] + \beta \, \mathrm{KL}(q(z \mid x) \,\|\, p(z))`.
      :math:`\beta = 1` is :math:`-\mathrm{ELBO}`; :math:`\beta > 1` is the beta-VAE (Higgins et al. 2017);
      :math:`\beta = 0` drops the KL term (the "no KL" ablation, a plain autoencoder with noise).
    - ``"iwae"``: :math:`-\mathcal{L}_K`, the importance-weighted bound of ``objectives.iwae_bound`` with
      :math:`K` = ``num_samples`` samples per image (Burda et al. 2015); :math:`K = 1` is the ELBO with a
      Monte Carlo KL. Its "rate" and "distortion" are those of the same samples (notebook 11).
    - ``"kl_only"``: rate alone, the "no reconstruction" ablation.
    - ``"reconstruction"``: the autoencoder's summed binary cross-entropy.
    - ``"auto"``: "reconstruction" for a model without a prior (the ``Autoencoder``), else "elbo".

    Two remedies for posterior collapse change the "elbo" loss (notebook 09):

    - ``kl_warmup_epochs=W`` (KL annealing, Bowman et al. 2016; the linear warm-up of Sønderby et al. 2016):
      the weight of the rate rises linearly from 0 to ``beta`` over the first :math:`W` epochs, step by step,
      :math:`\beta_t = \beta \min(1, t / (W S))` at step :math:`t` with :math:`S` steps per epoch, then stays
      at ``beta``.
    - ``free_bits=λ`` (Kingma et al. 2016): the rate term is ``objectives.free_bits_rate``, each latent
      dimension's KL (averaged over the mini-batch) floored at :math:`\lambda` nats.

    The recorded "neg_elbo", "rate" and "distortion" are always the true ones; "loss" is what was
    minimised (for the test split: with the weight reached at the end of the epoch).

    ``binarized=True`` trains on dynamically binarized images (resampled each batch) and evaluates on
    one fixed binarization of ``test_data``. ``dequantized=True`` trains on images dequantized afresh
    each batch (``data.dequantize``: 8-bit values plus uniform noise, for continuous likelihoods) and
    evaluates on one fixed dequantization of ``test_data``.

    Randomness: ``fit`` seeds torch's global generator with ``seed`` (the reparameterised samples and
    the binarization draw from it) and shuffles with a generator of its own. Test metrics are computed
    under ``torch.random.fork_rng`` with the same fixed seed every epoch: each epoch's test value uses the
    same noise (common random numbers, so the test curve shows the model change, not the noise), and
    passing ``test_data`` or not leaves the trained weights identical.

    With ``checkpoint=path`` the run is saved after every epoch and, when the file exists, resumed from
    it: calling ``fit`` again with the same arguments after an interruption continues where it stopped,
    or returns at once if it already finished. Resuming checks that the model, the settings, the
    training images and the test images (by a fingerprint) are those of the saved run. The same ``seed``
    on a CPU gives identical numbers, resumed or not.
    """
    kind = _check_arguments(model, epochs, batch_size, lr, beta, loss)
    positive_int("num_samples", num_samples)
    if num_samples > 1 and kind != "iwae":
        raise ValueError(f"num_samples is the K of loss='iwae'; this run's loss is {kind!r}")
    finite_number("kl_warmup_epochs", kl_warmup_epochs)
    finite_number("free_bits", free_bits)
    if (kl_warmup_epochs or free_bits) and kind != "elbo":
        raise ValueError(f"kl_warmup_epochs and free_bits change the 'elbo' loss; this run's loss is {kind!r}")
    device = torch.device(device) if device is not None else get_device()
    train_images = _images(train_data, "train_data").to(device)
    test_images = _images(test_data, "test_data").to(device) if test_data is not None else None
    model.to(device)
    # A conditional model (the CVAE) trains on (image, label) pairs: the labels come with an ImageData.
    conditional = hasattr(model, "given")
    train_labels = _labels(model, train_data, "train_data") if conditional else None
    test_labels = _labels(model, test_data, "test_data") if conditional and test_data is not None else None
    # The whole dataset is checked once here, so the training steps may skip encode's value check.
    unit_interval = getattr(model, "likelihood", "bernoulli") != "gaussian"
    check_images(train_images, unit_interval=unit_interval, like=next(model.parameters()))
    if test_images is not None:
        check_images(test_images, unit_interval=unit_interval, like=next(model.parameters()))

    optimizer = _adam(model, lr, device)
    shuffle = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    history = History()
    settings = {"batch_size": batch_size, "lr": lr, "beta": beta, "loss": kind, "seed": seed, "binarized": binarized,
                "kl_warmup_epochs": kl_warmup_epochs, "free_bits": free_bits, "dequantized": dequantized,
                "num_samples": num_samples}
    if checkpoint is not None:  # the data's fingerprints, only where a checkpoint will hold them (~0.2 s for 60,000 images)
        settings["train_images"] = _fingerprint(train_images)
        settings["test_images"] = None if test_images is None else _fingerprint(test_images)
        if conditional:
            settings["train_labels"] = _fingerprint(train_labels)
        if Path(checkpoint).exists():
            history = _resume(Path(checkpoint), model, optimizer, shuffle, settings, device)
    if binarized and test_images is not None:
        # Drawn on the CPU: the same seed gives the same binary test images on every device.
        test_images = binarize(test_images.cpu(), torch.Generator().manual_seed(seed)).to(device)
    if dequantized and test_images is not None:
        test_images = dequantize(test_images.cpu(), torch.Generator().manual_seed(seed)).to(device)

    steps_per_epoch = math.ceil(len(train_images) / batch_size)
    warmup_steps = kl_warmup_epochs * steps_per_epoch
    bar = tqdm(total=epochs * steps_per_epoch, initial=history.epochs * steps_per_epoch,
               desc="training", unit="batch", disable=not progress)
    for epoch in range(history.epochs, epochs):
        model.train()
        start = time.perf_counter()
        totals = None
        with values_already_checked():  # no host synchronisation inside the epoch
            for step, (x, trained) in enumerate(_model_batches(model, train_images, train_labels, batch_size,
                                                               generator=shuffle, binarized=binarized,
                                                               dequantized=dequantized)):
                weight = _kl_weight(beta, epoch * steps_per_epoch + step, warmup_steps)
                per_example, metrics = _objective(trained, x, kind, weight, free_bits, num_samples)
                optimizer.zero_grad(set_to_none=True)
                per_example.mean().backward()
                optimizer.step()
                # Summed on the device, read once per epoch: no .item() synchronisation per step.
                step_totals = torch.stack(list(metrics.values())).detach().sum(dim=1)  # (num_metrics,)
                totals = step_totals if totals is None else totals + step_totals
                bar.update()
        _record(history.train, dict(zip(metrics, (totals / len(train_images)).tolist())))
        seconds = time.perf_counter() - start
        history.seconds.append(seconds)
        history.images_per_second.append(len(train_images) / seconds)
        if test_images is not None:
            with torch.random.fork_rng(devices=_cuda_devices(device)), values_already_checked():
                torch.manual_seed(seed)  # the same noise every epoch, and the training stream untouched
                weight = _kl_weight(beta, (epoch + 1) * steps_per_epoch, warmup_steps)
                _record(history.test, evaluate(model, test_images, kind, weight, free_bits, num_samples, test_labels))
        bar.set_postfix_str(f"train loss {history.train['loss'][-1]:.1f}")
        if checkpoint is not None:
            _save(Path(checkpoint), model, optimizer, shuffle, settings, history, device)
        if on_epoch_end is not None:
            on_epoch_end(history)
    bar.close()
    model.eval()
    return history


def _adam(model: nn.Module, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam, with its fused kernel on the CPU and CUDA (torch >= 2.4).

    The fused kernel updates each parameter in one pass; the default implementation runs several
    separate operations over every parameter tensor per step. For the reference VAE on a CPU that
    shrinks the optimizer from ~15 % of a training step to ~5 % (benchmarks/README.md). Same algorithm
    and hyperparameters: the results differ from unfused Adam only by float32 rounding.
    """
    # torch.__version__ is a TorchVersion: it compares as a version ("2.15" > "2.4"), not as a string.
    fused = device.type in ("cpu", "cuda") and torch.__version__ >= "2.4"
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True if fused else None)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, loss: str = "auto", beta: float = 1.0, free_bits: float = 0.0,
             num_samples: int = 1, labels: torch.Tensor | None = None) -> dict[str, float]:
    """Average per-example metrics of ``fit``'s loss over ``images``, in chunks that bound memory:
    {"loss", "neg_elbo", "rate", "distortion"} for a VAE, {"loss", "distortion"} for the autoencoder.
    With ``free_bits``, each chunk of ``EVAL_BATCH_SIZE`` images plays the mini-batch's part; a
    conditional model (the CVAE) needs the images' ``labels``."""
    loss = _resolve_loss(model, loss)
    if hasattr(model, "given") and labels is None:
        raise ValueError(f"a {type(model).__name__} is evaluated on (image, label) pairs: pass labels=")
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    for x, evaluated in _model_batches(model, images, labels, EVAL_BATCH_SIZE, shuffle=False):
        _, metrics = _objective(evaluated, x, loss, beta, free_bits, num_samples)
        for name, values in metrics.items():
            totals[name] = totals.get(name, 0) + values.sum()
    return {name: total.item() / len(images) for name, total in totals.items()}


def _model_batches(model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None, batch_size: int,
                   **options) -> Iterator[tuple[torch.Tensor, nn.Module]]:
    """``data.batches`` of images, each with the model to apply to it: ``model`` itself, or, given the
    images' ``labels``, the conditional model with the batch's labels fixed (``CVAE.given``)."""
    for batch in batches(images, batch_size, labels=labels, **options):
        yield (batch, model) if labels is None else (batch[0], model.given(batch[1]))


def _kl_weight(beta: float, step: int, warmup_steps: float) -> float:
    """The weight of the rate at training step ``step``: beta * min(1, step / warmup_steps)."""
    return beta if step >= warmup_steps else beta * step / warmup_steps


def _objective(model: nn.Module, x: torch.Tensor, kind: str, beta: float, free_bits: float = 0.0,
               num_samples: int = 1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(per-example loss (B,), {metric name: per-example values (B,)})."""
    if kind == "reconstruction":
        bce = reconstruction_loss(model, x)
        return bce, {"loss": bce, "distortion": bce}
    if kind == "iwae":
        bound, terms = iwae_terms(model, x, num_samples)
        loss = -bound
    else:
        posterior = model.encode(x)
        terms = elbo_terms(model, x, posterior)
        penalised_rate = free_bits_rate(posterior, model.prior, free_bits) if free_bits else terms.rate
        loss = terms.rate if kind == "kl_only" else terms.distortion + beta * penalised_rate
    distortion, rate = terms.distortion, terms.rate
    return loss, {"loss": loss, "neg_elbo": distortion + rate, "rate": rate, "distortion": distortion}


def _record(metrics: dict[str, list[float]], values: dict[str, float]) -> None:
    for name, value in values.items():
        metrics.setdefault(name, []).append(value)


def _fingerprint(images: torch.Tensor) -> str:
    """A short hash that tells two image tensors apart: shape, dtype, the exact sum, and the bytes
    of at most about a million values spread over the tensor (one copy of a few MB to the host)."""
    flat = images.detach().reshape(-1)
    sample = flat[:: max(1, flat.numel() // 2**20)].cpu()
    digest = hashlib.blake2b(digest_size=8)
    digest.update(f"{tuple(images.shape)} {images.dtype} {images.sum(dtype=torch.float64).item()!r}".encode())
    digest.update(sample.numpy().tobytes())
    return digest.hexdigest()


def _cuda_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose generator ``fork_rng`` must restore (none off CUDA)."""
    return [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []


def _check_arguments(model: nn.Module, epochs: int, batch_size: int, lr: float, beta: float, loss: str) -> str:
    positive_int("epochs", epochs)
    positive_int("batch_size", batch_size)
    finite_number("lr", lr, strict=True)
    finite_number("beta", beta)
    return _resolve_loss(model, loss)


def _resolve_loss(model: nn.Module, loss: str) -> str:
    """The loss ``fit`` uses: "auto" resolved, and a clear error for one the model cannot train with."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {LOSSES}")
    has_prior = hasattr(model, "prior")
    if loss == "auto":
        loss = "elbo" if has_prior else "reconstruction"
    if loss in ("elbo", "iwae", "kl_only") and not has_prior:
        raise ValueError(f"loss={loss!r} needs a model with a prior (a VAE); this model trains with loss='reconstruction'")
    if loss == "reconstruction" and has_prior:
        raise ValueError("loss='reconstruction' is for the Autoencoder; for a VAE without the KL term use beta=0")
    return loss


def _images(data: torch.Tensor | ImageData, name: str) -> torch.Tensor:
    images = data.images if isinstance(data, ImageData) else data
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be an image tensor or an ImageData, got {type(data).__name__}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty: there is nothing to train on")
    return images


def _labels(model: nn.Module, data: torch.Tensor | ImageData, name: str) -> torch.Tensor:
    """The labels of ``data`` for a conditional model, checked once (so the steps need not), on the
    model's device."""
    if not isinstance(data, ImageData):
        raise TypeError(f"a {type(model).__name__} trains on images with their labels: pass {name} as an ImageData")
    return check_labels(data.labels, model.num_classes, like=next(model.parameters()))


def _describe_change(key: str, old: object, new: object) -> str:
    if key == "train_images":
        return "the training images differ from the ones it was trained on"
    if key == "test_images":
        if old is None or new is None:
            return f"it was trained {'without' if old is None else 'with'} test_data, now {'without' if new is None else 'with'}"
        return "the test images differ from the ones it was evaluated on"
    return f"{key} was {old!r}, now {new!r}"


def _save(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, shuffle: torch.Generator,
          settings: dict, history: History, device: torch.device) -> None:
    rng = {"cpu": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    # overwrite=True: fit checked on entry that the file at path is this run's (or absent), so saving
    # need not read the previous checkpoint back every epoch.
    checkpoints.save(model, path, overwrite=True, fit_settings=settings, optimizer=optimizer.state_dict(),
                     history=history.to_dict(), rng=rng)


def _resume(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, shuffle: torch.Generator,
            settings: dict, device: torch.device) -> History:
    state = checkpoints.read(path)
    if state["class"] != type(model).__name__ or state["config"] != getattr(model, "config", None):
        raise ValueError(
            f"checkpoint {path} holds a {state['class']}{state['config']}, not this "
            f"{type(model).__name__}{getattr(model, 'config', None)}: pass a new checkpoint path to train this model"
        )
    saved = state["metadata"].get("fit_settings")
    if saved is None:
        raise ValueError(f"checkpoint {path} was not written by fit, so it cannot be resumed: pass a new checkpoint path")
    saved = {**_SETTINGS_ADDED_LATER, **saved}  # a checkpoint written before a setting existed used its default
    changed = [_describe_change(key, saved.get(key), value) for key, value in settings.items() if saved.get(key) != value]
    if changed:
        raise ValueError(f"checkpoint {path} was trained with other settings ({'; '.join(changed)}): "
                         "pass a new checkpoint path, or the same settings and data to resume")
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["metadata"]["optimizer"])
    rng = state["metadata"]["rng"]
    torch.set_rng_state(rng["cpu"])
    shuffle.set_state(rng["shuffle"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)
    return History.from_dict(state["metadata"]["history"])
