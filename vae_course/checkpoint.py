"""Saving and loading trained models, safely.

Used by ``fit(..., checkpoint=path)`` (save every epoch, resume) and by the command line
(``python -m vae_course train``); ``load`` rebuilds a saved model in a notebook or a script.

A checkpoint is one file holding the model's class name, its constructor arguments (``model.config``),
its weights and any metadata (a dict of tensors, numbers, strings, lists and dicts). It is written
durably and atomically (``atomic_write``: a temporary file, flushed to disk, then renamed over the old
one), so neither an interrupted save nor a power loss leaves a half-written checkpoint, and read with
``torch.load(weights_only=True)``, so a file that would run code when unpickled is refused, never executed.
"""

from __future__ import annotations

import os
import pickle
import re
import secrets
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from .models import MODELS

FORMAT = "vae_course.checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable, safe vae_course checkpoint; the message names the file."""


def save(model: nn.Module, path: str | os.PathLike, *, overwrite: bool = False, **metadata) -> Path:
    """Write ``model`` (class, constructor arguments, weights) and ``metadata`` to ``path`` atomically.

    An existing checkpoint of the same model (same class and arguments) is replaced: that is saving
    newer weights. Anything else already at ``path`` (another model's checkpoint, a file that is no
    checkpoint) is kept and a ``FileExistsError`` raised, unless ``overwrite=True``.
    """
    path = Path(path)
    config = getattr(model, "config", None)
    if config is None:
        raise TypeError(
            f"{type(model).__name__} has no .config (its constructor arguments), so it could not be rebuilt: "
            "save its weights with torch.save(model.state_dict(), path) instead"
        )
    if path.exists() and not overwrite:
        try:
            existing = read(path)
        except CheckpointError:
            existing = None
        if existing is None or (existing["class"], existing["config"]) != (type(model).__name__, config):
            what = "a checkpoint of another model" if existing else "a file that is not a vae_course checkpoint"
            raise FileExistsError(
                f"{path} already holds {what}; it was kept. Choose another path, or pass overwrite=True to replace it"
            )
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "class": type(model).__name__,
        "config": config,
        "state_dict": model.state_dict(),
        "metadata": metadata,
    }
    return atomic_write(path, lambda file: torch.save(payload, file))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace the file at ``path`` with what ``write(file)`` writes, all or nothing.

    ``write`` fills a temporary file beside ``path``; it is flushed to disk (``fsync``), renamed over
    ``path`` (atomic: readers see the old file or the new one, never half of one), and the directory
    is flushed too, so that after a power loss the name points at complete contents, old or new.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name beside the target (same file system, so the rename is atomic); "x" never clobbers.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Flush a directory's entries (the rename) to disk; Windows cannot open a directory, and need not."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read(path: str | os.PathLike) -> dict:
    """The checkpoint's contents: "class", "config", "state_dict" and "metadata" (tensors on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (an interrupted copy?): it holds no checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols: the error below says it all
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        code = re.search(r"(?:GLOBAL|Unsupported class) (\S+)", str(exc))  # torch 2.0/2.1 say the latter
        if code:
            raise CheckpointError(
                f"{path} was refused: unpickling it would run Python code ({code.group(1)}). "
                "It was not executed. Load only checkpoints written by vae_course.checkpoint.save"
            ) from None
        raise CheckpointError(f"{path} is not a torch checkpoint (corrupt, or another kind of file)") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} could not be read: it is corrupt or truncated ({exc})") from None
    except Exception:  # torch's safe unpickler meets other bytes with KeyError, IndexError, ...
        raise CheckpointError(f"{path} is not a torch checkpoint (corrupt, or another kind of file)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is a torch file but not a vae_course checkpoint. If it is a bare state_dict, build the "
            "model yourself and call model.load_state_dict(torch.load(path, weights_only=True))"
        )
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}, this package reads {VERSION}")
    return payload


def load(path: str | os.PathLike, model_class: type[nn.Module] | None = None) -> nn.Module:
    """Rebuild the saved model (in eval mode, on the CPU): ``model_class(**config)`` with its weights.

    ``model_class`` is needed only for a model class of your own (with a ``.config`` attribute);
    the package's models are found by name.
    """
    payload = read(path)
    cls = model_class or MODELS.get(payload["class"])
    if cls is None:
        raise CheckpointError(
            f"{path} holds a {payload['class']}, which is not a vae_course model: pass its class as model_class"
        )
    model = cls(**payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()
