"""Input checks whose messages name the fix. Plumbing: a learner reading the course can skip this module.

``check_images`` is called by every ``encode`` and once per ``fit``. Its shape, dtype and device checks
cost nothing; its value check (NaN, inf, range) reads two numbers back from the device, which makes the
host wait for the device. ``fit`` has checked the whole dataset before training, so it runs its steps
inside ``values_already_checked()``, where that one synchronising check is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch

IMAGE_SHAPE = (1, 28, 28)
NUM_PIXELS = math.prod(IMAGE_SHAPE)  # 784

_values_already_checked = 0  # > 0 inside values_already_checked()


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` if it is an int >= ``minimum`` (not a bool), else a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def finite_number(name: str, value: object, *, minimum: float = 0.0, strict: bool = False) -> float:
    """``value`` if it is a finite real number above ``minimum`` (``strict``) or at least it, else a ``ValueError``."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not is_number or value < minimum or (strict and value == minimum):
        kind = "a positive number" if strict and minimum == 0 else f"a number {'>' if strict else '>='} {minimum:g}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return float(value)


@contextmanager
def values_already_checked() -> Iterator[None]:
    """Within this block ``check_images`` skips its value check (the one host synchronisation)."""
    global _values_already_checked
    _values_already_checked += 1
    try:
        yield
    finally:
        _values_already_checked -= 1


def check_images(x: torch.Tensor, *, unit_interval: bool = True, like: torch.Tensor | None = None) -> None:
    """Raise a ``ValueError`` naming the fix unless ``x`` is a float batch of shape (B, 1, 28, 28).

    ``unit_interval``: values must lie in [0, 1] (Bernoulli-type likelihoods read them as probabilities).
    ``like``: a parameter of the model; ``x`` must share its dtype and device.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(x).__name__}: use torch.as_tensor(x)")
    if x.dim() != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        hint = ""
        if x.shape and x.shape[-1] == NUM_PIXELS:
            hint = ": these look like flat vectors, use x.view(-1, 1, 28, 28)"
        elif x.dim() == 3 and tuple(x.shape[1:]) == (28, 28):
            hint = ": add the channel dimension with x.unsqueeze(1)"
        elif tuple(x.shape) == (28, 28) or tuple(x.shape) == IMAGE_SHAPE:
            hint = ": a single image, use x.view(1, 1, 28, 28)"
        raise ValueError(f"expected images of shape (batch, 1, 28, 28), got {tuple(x.shape)}{hint}")
    if x.shape[0] == 0:
        raise ValueError("got an empty batch (0 images)")
    if not x.is_floating_point():
        raise ValueError(f"images have dtype {x.dtype}; the model expects floats in [0, 1]: use x.float() / 255")
    if like is not None and x.dtype != like.dtype:
        raise ValueError(f"images are {x.dtype} but the model is {like.dtype}: use x.to({like.dtype})")
    if like is not None and x.device != like.device:
        raise ValueError(f"images are on {x.device} but the model is on {like.device}: use x.to('{like.device}')")
    if _values_already_checked:
        return
    # One reduction and one synchronisation: NaN propagates into both extremes, inf shows in one.
    # torch before 2.2 has no float16 aminmax on the CPU, hence the float32 copy there.
    values = x.float() if x.dtype == torch.float16 and x.device.type == "cpu" else x
    low, high = torch.stack(torch.aminmax(values)).tolist()
    if math.isnan(low) or math.isnan(high):
        raise ValueError("images contain NaN: check the preprocessing that produced them")
    if math.isinf(low) or math.isinf(high):
        raise ValueError("images contain inf: check the preprocessing that produced them")
    if unit_interval and (low < 0.0 or high > 1.0):
        fix = "divide 0-255 pixels by 255" if high > 1.0 else "rescale them to [0, 1]"
        raise ValueError(
            f"images range over [{low:.4g}, {high:.4g}] but this likelihood needs values in [0, 1]: {fix}, "
            "or use likelihood='gaussian'"
        )


def check_code(model: torch.nn.Module, z: torch.Tensor) -> None:
    """Raise a ``ValueError`` naming the model's ``latent_dim`` unless z has shape (..., latent_dim)."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of codes, got {type(z).__name__}: use torch.as_tensor(z)")
    if z.dim() == 0 or z.shape[-1] != model.latent_dim:
        raise ValueError(
            f"codes of shape {tuple(z.shape)} do not fit this {type(model).__name__}: its latent_dim is "
            f"{model.latent_dim}, so z needs shape (..., {model.latent_dim})"
        )


def check_labels(y: torch.Tensor, num_classes: int, *, like: torch.Tensor) -> torch.Tensor:
    """``y`` as an int64 tensor on ``like``'s device, or a ``ValueError`` unless it holds integers 0 to
    ``num_classes`` - 1 (an int, or an integer tensor). The value check, one host synchronisation, is
    skipped inside ``values_already_checked()``."""
    y = torch.as_tensor(y, device=like.device)
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"labels must be integers 0 to {num_classes - 1}, got dtype {y.dtype}: use y.long()")
    if not _values_already_checked and y.numel():
        low, high = torch.stack(torch.aminmax(y)).tolist()
        if low < 0 or high >= num_classes:
            raise ValueError(f"labels must be integers 0 to {num_classes - 1}, got values from {low} to {high}")
    return y.long()
