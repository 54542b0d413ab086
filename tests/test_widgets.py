"""The latent sliders of vae_course.widgets, headless: construct an explorer, move a slider as the browser
would (by setting its value), and check the redrawn PNG bytes and the code passed to the callback against
the decoder's own output. Models are untrained VAEs: the widgets do not care what was learnt."""

from __future__ import annotations

import io

import ipywidgets as widgets
import ipywidgets.widgets.widget as widget_module
import numpy as np
import pytest
import torch
from PIL import Image

from vae_course.models import VAE, Autoencoder
from vae_course.widgets import IMAGE_SCALE, LatentExplorer, LatentExplorer2D, decoded_png


@pytest.fixture
def vae_4d() -> VAE:
    torch.manual_seed(0)
    return VAE(latent_dim=4, hidden_dims=(16,)).eval()


@pytest.fixture
def vae_2d() -> VAE:
    torch.manual_seed(1)
    return VAE(latent_dim=2, hidden_dims=(16,)).eval()


def png_pixels(png: bytes) -> torch.Tensor:
    with Image.open(io.BytesIO(png)) as image:
        return torch.from_numpy(np.asarray(image, dtype=np.float32))


def test_decoded_png_shows_the_decoders_mean_image_with_square_pixels(vae_4d):
    z = torch.tensor([0.5, -1.0, 2.0, 0.0])
    pixels = png_pixels(decoded_png(vae_4d, z))
    assert pixels.shape == (28 * IMAGE_SCALE, 28 * IMAGE_SCALE)
    with torch.no_grad():
        expected = vae_4d.decode(z[None]).mean[0, 0] * 255  # (28, 28)
    assert torch.allclose(pixels[::IMAGE_SCALE, ::IMAGE_SCALE], expected, atol=0.51)  # rounding to uint8
    assert torch.equal(pixels[:IMAGE_SCALE, :IMAGE_SCALE], pixels[0, 0].expand(IMAGE_SCALE, IMAGE_SCALE))


def test_explorer_starts_at_the_code_and_redraws_when_a_slider_moves(vae_4d):
    start = torch.tensor([0.3, -0.7, 1.2, 0.0])
    seen = []
    explorer = LatentExplorer(vae_4d, start, on_change=seen.append)
    assert [s.value for s in explorer.sliders] == pytest.approx(start.tolist())
    assert explorer.image.value == decoded_png(vae_4d, start)
    assert [s.description for s in explorer.sliders] == ["z[0]", "z[1]", "z[2]", "z[3]"]

    explorer.sliders[2].value = -2.5
    moved = torch.tensor([0.3, -0.7, -2.5, 0.0])
    assert torch.allclose(explorer.latent, moved)
    assert torch.allclose(seen[-1], moved), "on_change gets the code now shown"
    assert explorer.image.value == decoded_png(vae_4d, moved)
    assert explorer.image.value != decoded_png(vae_4d, start)


def test_reset_puts_every_slider_and_the_image_back(vae_4d):
    start = torch.tensor([0.3, -0.7, 1.2, 0.0])
    explorer = LatentExplorer(vae_4d, start)
    first_image = explorer.image.value
    explorer.sliders[0].value = 3.0
    explorer.sliders[3].value = -3.0
    explorer.reset_button.click()
    assert torch.allclose(explorer.latent, start)
    assert explorer.image.value == first_image


def test_sliders_reach_the_prior_range_and_any_start_value(vae_4d):
    explorer = LatentExplorer(vae_4d, torch.tensor([0.0, 4.5, -5.0, 1.0]), limit=3.0)
    ranges = [(s.min, s.max) for s in explorer.sliders]
    assert ranges == [(-3.0, 3.0), (-3.0, 4.5), (-5.0, 3.0), (-3.0, 3.0)]


def displayed_bundle(widget: widgets.Widget, monkeypatch: pytest.MonkeyPatch) -> dict:
    """The MIME bundle a notebook stores when ``widget`` ends a cell. ipywidgets 8 returns it from
    ``_repr_mimebundle_``; ipywidgets 7 (Colab ships 7.7.1) has no such method: its ``_ipython_display_``
    hands the same bundle to IPython's ``display(data, raw=True)``, caught here."""
    if hasattr(widget, "_repr_mimebundle_"):
        return widget._repr_mimebundle_()
    published = []
    monkeypatch.setattr(widget_module, "display", lambda data, raw: published.append(data))
    widget._ipython_display_()
    assert len(published) == 1
    return published[0]


def test_explorer_is_one_widget_with_a_stable_text_form(vae_4d, vae_2d, monkeypatch):
    explorer = LatentExplorer(vae_4d, torch.zeros(4))
    assert isinstance(explorer, widgets.Box)
    assert explorer.reset_button in explorer.children[-1].children and explorer.image in explorer.children[-1].children
    explorer_2d = LatentExplorer2D(vae_2d, torch.zeros(3, 2), torch.arange(3))
    for shown, text in [(explorer, "LatentExplorer(4 sliders)"), (explorer_2d, "LatentExplorer2D(2 sliders)")]:
        bundle = displayed_bundle(shown, monkeypatch)
        assert bundle["text/plain"] == text, "nbval compares this text: no bytes, no ids"
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == shown.model_id, "a live widget"


def test_explorer_refuses_a_start_code_of_the_wrong_size(vae_4d):
    with pytest.raises(ValueError, match="start code has 3 numbers.*latent space has 4"):
        LatentExplorer(vae_4d, torch.zeros(3))


def test_explorer_refuses_something_that_is_not_a_decoder():
    with pytest.raises(TypeError, match="decode"):
        LatentExplorer(torch.nn.Linear(2, 2), torch.zeros(2))
    with pytest.raises(TypeError, match="needs a VAE"):  # its decode returns logits, not p(x|z)
        LatentExplorer(Autoencoder(2, (8,)), torch.zeros(2))


def test_explorers_follow_a_float64_model():
    model = VAE(latent_dim=2, hidden_dims=(8,)).double()
    explorer = LatentExplorer2D(model, torch.randn(10, 2, dtype=torch.float64), torch.arange(10) % 10)
    explorer.sliders[0].value = 1.0
    with torch.no_grad():
        expected = model.decode(torch.tensor([[1.0, 0.0]], dtype=torch.float64)).mean[0, 0]
    pixels = np.asarray(Image.open(io.BytesIO(explorer.image.value)))[::IMAGE_SCALE, ::IMAGE_SCALE]
    assert np.abs(pixels / 255 - expected.numpy()).max() <= 0.5 / 255 + 1e-9


def test_2d_explorer_marks_the_code_on_the_scatter_and_redraws_both(vae_2d):
    synthetic_codes = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(100) % 10
    seen = []
    explorer = LatentExplorer2D(vae_2d, synthetic_codes, labels, start=(0.5, -0.5), on_change=seen.append)
    assert list(explorer._marker.get_data()[0]) == [0.5]
    image, scatter = explorer.image.value, explorer.scatter.value
    assert scatter[:8] == b"\x89PNG\r\n\x1a\n"

    explorer.sliders[1].value = 2.0
    assert torch.allclose(seen[-1], torch.tensor([0.5, 2.0]))
    assert explorer.image.value == decoded_png(vae_2d, torch.tensor([0.5, 2.0])) != image
    assert explorer.scatter.value != scatter, "the marker moved, so the scatter was redrawn"
    assert [list(v) for v in explorer._marker.get_data()] == [[0.5], [2.0]]
    assert repr(explorer) == "LatentExplorer2D(2 sliders)"


def test_2d_explorer_refuses_a_model_that_is_not_2d(vae_4d):
    with pytest.raises(ValueError):
        LatentExplorer2D(vae_4d, torch.zeros(5, 2), torch.zeros(5, dtype=torch.int64))


def test_conditional_explorer_redraws_for_a_new_label_with_the_same_style():
    from vae_course.models import CVAE
    from vae_course.widgets import ConditionalExplorer

    torch.manual_seed(0)
    cvae = CVAE(latent_dim=3, hidden_dims=(16,)).eval()
    start = torch.tensor([0.5, -1.0, 0.2])
    seen = []
    explorer = ConditionalExplorer(cvae, start, label=2, on_change=seen.append)
    pixels = png_pixels(explorer.image.value)[::IMAGE_SCALE, ::IMAGE_SCALE]
    with torch.no_grad():
        expected = cvae.decode(start[None], 2).mean[0, 0] * 255  # the decoder's own image for (z, y = 2)
    assert torch.allclose(pixels, expected, atol=0.51)
    assert explorer.label == 2 and list(explorer.label_picker.options) == list(range(10))

    explorer.label_picker.value = 7
    assert explorer.image.value == decoded_png(cvae.given(7), start)
    assert explorer.image.value != decoded_png(cvae.given(2), start)
    assert torch.allclose(seen[-1], start), "a new label keeps the style code"
    explorer.sliders[0].value = 2.0
    assert explorer.image.value == decoded_png(cvae.given(7), torch.tensor([2.0, -1.0, 0.2]))
    assert repr(explorer) == "ConditionalExplorer(label 7, 3 sliders)"


def test_conditional_explorer_refuses_an_unconditional_model(vae_4d):
    from vae_course.widgets import ConditionalExplorer

    with pytest.raises(TypeError, match="use LatentExplorer"):
        ConditionalExplorer(vae_4d, torch.zeros(4))
