"""Latent sliders: move a code :math:`z` with sliders and watch the decoder's image change.

Introduced in notebook 07 (exploring the latent space).

Built only from ipywidgets' core widgets: a ``FloatSlider`` per latent dimension and a
``widgets.Image`` whose PNG bytes are redrawn by a callback registered with ``slider.observe``. That
combination renders the same in JupyterLab, the classic Notebook and Colab, and it keeps strict nbval
green (nothing is printed into an output area when a slider moves).

Every explorer exposes what a test needs: ``sliders``, ``image`` (its ``value`` holds the PNG bytes),
``latent`` (the code :math:`z` now shown) and an ``on_change`` callback called with that code after each redraw.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from .plotting import scatter_latent

IMAGE_SCALE = 5  # each of the 28 x 28 pixels is drawn as a 5 x 5 block: a 140 x 140 image


@torch.no_grad()
def decoded_png(model: nn.Module, z: torch.Tensor, scale: int = IMAGE_SCALE) -> bytes:
    r"""The mean image of :math:`p(x \mid z)` for one code :math:`z` (latent_dim,), as PNG bytes, enlarged ``scale``
    times
    with square pixels: (latent_dim,) => (1, 28, 28) in [0, 1] => (28 * scale, 28 * scale) grey levels."""
    parameter = next(model.parameters())
    image = model.decode(z.to(parameter)[None]).mean[0].clamp(0, 1)  # (1, 28, 28)
    pixels = (image[0] * 255).round().to(torch.uint8).cpu()  # (28, 28) grey levels
    pixels = pixels.repeat_interleave(scale, dim=0).repeat_interleave(scale, dim=1)  # square blocks
    buffer = io.BytesIO()
    Image.fromarray(pixels.numpy()).save(buffer, format="png")
    return buffer.getvalue()


def _slider(index: int, value: float, limit: float, step: float) -> widgets.FloatSlider:
    """A slider for z[index], wide enough for ``limit`` either side of 0 and for its starting value."""
    return widgets.FloatSlider(
        value=value, min=min(-limit, value), max=max(limit, value), step=step,
        description=f"z[{index}]", continuous_update=True, readout_format=".2f",
    )


class _Explorer:
    """Shared behaviour: sliders set z, z is decoded into the image, ``on_change`` hears about it."""

    def _connect(self, model: nn.Module, sliders: list[widgets.FloatSlider],
                 on_change: Callable[[torch.Tensor], None] | None) -> None:
        self.model = model.eval()
        self.sliders = sliders
        self.on_change = on_change
        self.image = widgets.Image(format="png")
        for slider in sliders:
            slider.observe(self._redraw, names="value")
        self._redraw()

    @property
    def latent(self) -> torch.Tensor:
        """The code :math:`z` now shown, one entry per slider: shape (latent_dim,)."""
        return torch.tensor([slider.value for slider in self.sliders], dtype=torch.float32)

    def _redraw(self, change: dict | None = None) -> None:
        z = self.latent
        self.image.value = decoded_png(self._decoder(), z)
        self._redraw_extra(z)
        if self.on_change is not None:
            self.on_change(z)

    def _redraw_extra(self, z: torch.Tensor) -> None:
        """Anything else an explorer shows for z (the 2-d explorer marks it on the scatter)."""

    def _decoder(self) -> nn.Module:
        """What decodes z (the conditional explorer fixes the chosen label first)."""
        return self.model


class LatentExplorer(widgets.HBox, _Explorer):
    r"""One slider per latent dimension, starting at ``start`` (e.g. the posterior mean of a test
    image), the decoded image beside them, and a button that puts every slider back to ``start``.

    ``limit``: each slider spans at least [-limit, limit], the prior's :math:`\pm 3` standard deviations by
    default.
    """

    def __init__(self, model: nn.Module, start: torch.Tensor, *, limit: float = 3.0, step: float = 0.05,
                 on_change: Callable[[torch.Tensor], None] | None = None) -> None:
        start = _check_code(model, start)
        self.start = start
        sliders = [_slider(i, v, limit, step) for i, v in enumerate(start.tolist())]
        self.reset_button = widgets.Button(description="reset", tooltip="put every slider back to the start code")
        self.reset_button.on_click(self.reset)
        self._connect(model, sliders, on_change)
        super().__init__([*_columns(sliders), widgets.VBox([self.image, self.reset_button])])

    def reset(self, button: widgets.Button | None = None) -> None:
        """Put every slider back to its start value (one redraw per slider that moves)."""
        for slider, value in zip(self.sliders, self.start.tolist()):
            slider.value = value

    def __repr__(self) -> str:
        return f"LatentExplorer({len(self.sliders)} sliders)"


class LatentExplorer2D(widgets.HBox, _Explorer):
    """For a model with a 2-d latent space: two sliders for ``z = (z[0], z[1])``, the decoded image, and
    the scatter of ``codes`` (N, 2) coloured by ``labels`` (N,) with the current :math:`z` marked on it."""

    def __init__(self, model: nn.Module, codes: torch.Tensor, labels: torch.Tensor,
                 start: Sequence[float] = (0.0, 0.0), *, limit: float = 3.0, step: float = 0.05,
                 on_change: Callable[[torch.Tensor], None] | None = None) -> None:
        start = _check_code(model, torch.as_tensor(start, dtype=torch.float32))
        if start.shape != (2,):
            raise ValueError(f"LatentExplorer2D is for a 2-d latent space, this model has latent_dim={start.shape[0]}")
        self.figure = Figure(figsize=(4.2, 3.6), dpi=80)
        FigureCanvasAgg(self.figure)  # drawn off-screen: nothing is printed into the notebook
        ax = self.figure.subplots()
        scatter_latent(codes, labels, title="test codes and the slider's z", ax=ax, size=2.0)
        self._marker = ax.plot([], [], marker="X", markersize=12, color="black", markeredgecolor="white")[0]
        self.figure.tight_layout()
        self.scatter = widgets.Image(format="png")
        sliders = [_slider(i, v, limit, step) for i, v in enumerate(start.tolist())]
        self._connect(model, sliders, on_change)
        super().__init__([widgets.VBox([*sliders, self.image]), self.scatter])

    def _redraw_extra(self, z: torch.Tensor) -> None:
        self._marker.set_data([z[0].item()], [z[1].item()])
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        self.scatter.value = buffer.getvalue()

    def __repr__(self) -> str:
        return "LatentExplorer2D(2 sliders)"


class ConditionalExplorer(widgets.VBox, _Explorer):
    r"""For a ``CVAE``: a row of buttons that picks the label :math:`y`, one slider per latent ("style")
    dimension, and the mean image of :math:`p(x \mid z, y)`. Changing the label keeps :math:`z`: the same
    style, another digit. Introduced in notebook 10 (the conditional VAE).

    ``label_picker`` is the ``ToggleButtons`` widget; ``label`` the label now shown.
    """

    def __init__(self, model: nn.Module, start: torch.Tensor, label: int = 0, *, limit: float = 3.0,
                 step: float = 0.05, on_change: Callable[[torch.Tensor], None] | None = None) -> None:
        if not hasattr(model, "given"):
            raise TypeError(f"ConditionalExplorer needs a conditional model (a CVAE), got {type(model).__name__}: "
                            "use LatentExplorer")
        start = _check_code(model, start)
        self.label_picker = widgets.ToggleButtons(options=list(range(model.num_classes)), value=label,
                                                  description="label y", style={"button_width": "2.2em"})
        self.label_picker.observe(self._redraw, names="value")
        sliders = [_slider(i, v, limit, step) for i, v in enumerate(start.tolist())]
        self._connect(model, sliders, on_change)
        super().__init__([self.label_picker, widgets.HBox([*_columns(sliders), self.image])])

    @property
    def label(self) -> int:
        return self.label_picker.value

    def _decoder(self) -> nn.Module:
        return self.model.given(self.label)

    def __repr__(self) -> str:
        return f"ConditionalExplorer(label {self.label}, {len(self.sliders)} sliders)"


def _columns(sliders: list[widgets.FloatSlider]) -> list[widgets.VBox]:
    """The sliders in columns of ten."""
    return [widgets.VBox(sliders[i:i + 10]) for i in range(0, len(sliders), 10)]


def _check_code(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
    latent_dim = getattr(model, "latent_dim", None)
    if latent_dim is None or not hasattr(model, "prior"):
        raise TypeError(f"the explorer needs a VAE (decode(z) returns p(x|z), and a prior p(z)), got {type(model).__name__}")
    z = torch.as_tensor(z).detach().float().cpu().reshape(-1)
    if z.shape[0] != latent_dim:
        raise ValueError(f"the start code has {z.shape[0]} numbers, the model's latent space has {latent_dim}: "
                         "pass one code, e.g. model.encode(x[:1]).mean[0]")
    return z
