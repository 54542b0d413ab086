"""Plotting helpers, headless: each draws what it says on the axes it returns."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox  # noqa: E402

from vae_course.latent import normal_grid  # noqa: E402
from vae_course.models import VAE, Autoencoder  # noqa: E402
from vae_course.plotting import (  # noqa: E402
    plot_curves,
    plot_kl_per_dimension,
    plot_rate_distortion,
    plot_unit_activity,
    scatter_latent,
    show_images,
    show_manifold,
    show_traversal,
)
from vae_course.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_show_images_draws_one_padded_grid(synthetic_images):
    ax = show_images(synthetic_images, nrow=4, title="six images")
    (image,) = ax.get_images()
    # 2 rows x 4 columns of 28-pixel images with 2-pixel padding: (2 * 30 + 2, 4 * 30 + 2)
    assert image.get_array().shape[:2] == (62, 122)
    assert ax.get_title() == "six images"


def test_show_images_accepts_values_outside_the_unit_interval_by_clipping(synthetic_images):
    ax = show_images(synthetic_images * 3 - 1, nrow=6)
    pixels = ax.get_images()[0].get_array()
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_scatter_latent_draws_one_group_per_digit():
    synthetic_codes = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(50) % 10
    ax = scatter_latent(synthetic_codes, labels, title="codes")
    assert len(ax.collections) == 10
    assert sum(len(c.get_offsets()) for c in ax.collections) == 50
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(d) for d in range(10)]


def test_scatter_latent_refuses_codes_that_are_not_2d():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        scatter_latent(torch.zeros(5, 3), torch.zeros(5, dtype=torch.int64))


def test_plot_curves_draws_train_and_test_for_each_metric():
    history = History(train={"neg_elbo": [3.0, 2.0], "rate": [1.0, 1.5]}, test={"neg_elbo": [3.5, 2.5]},
                      seconds=[1.0, 1.0], images_per_second=[10.0, 10.0])
    ax = plot_curves(history, metrics=("neg_elbo", "rate"))
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train neg_elbo", "test neg_elbo", "train rate"]
    assert list(ax.get_lines()[1].get_ydata()) == [3.5, 2.5]


def test_show_manifold_decodes_the_normal_grid_in_place():
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden_dims=(16,)).eval()
    ax = show_manifold(model, num_per_side=4, title="manifold")
    (image,) = ax.get_images()
    assert image.get_array().shape[:2] == (4 * 30 + 2, 4 * 30 + 2)
    grid = normal_grid(4)
    with torch.no_grad():
        expected = model.decode(grid).mean  # (16, 1, 28, 28), top row first
    pixels = torch.as_tensor(image.get_array()[..., 0])  # grey: every channel is the same
    top_right = pixels[2:30, 3 * 30 + 2:3 * 30 + 30]  # row 0, column 3 of the grid
    assert torch.allclose(top_right, expected[3, 0], atol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"{v:.1f}" for v in grid[:4, 0].tolist()]
    assert ax.get_title() == "manifold"


def test_show_manifold_follows_the_models_dtype():
    model = VAE(latent_dim=2, hidden_dims=(16,)).double().eval()
    (image,) = show_manifold(model, num_per_side=3).get_images()
    with torch.no_grad():
        expected = model.decode(normal_grid(3).double()).mean  # (9, 1, 28, 28), float64
    top_left = torch.as_tensor(image.get_array()[2:30, 2:30, 0])
    assert torch.allclose(top_left.double(), expected[0, 0], atol=1e-6)


def test_show_manifold_refuses_an_autoencoder_naming_the_reason():
    with pytest.raises(TypeError, match="no prior"):
        show_manifold(Autoencoder(2, (8,)))


def test_show_manifold_refuses_a_model_that_is_not_2d():
    with pytest.raises(ValueError, match="2-d latent"):
        show_manifold(VAE(latent_dim=3, hidden_dims=(16,)))


def test_show_traversal_draws_rows_with_their_labels(synthetic_images):
    rows = synthetic_images.reshape(2, 3, 1, 28, 28)
    ax = show_traversal(rows, row_labels=["a", "b"], column_labels=["-1", "0", "1"], title="rows")
    (image,) = ax.get_images()
    assert image.get_array().shape[:2] == (2 * 30 + 2, 3 * 30 + 2)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "0", "1"]


def test_show_traversal_refuses_a_flat_batch(synthetic_images):
    with pytest.raises(ValueError, match=r"\(rows, steps"):
        show_traversal(synthetic_images)


def test_plot_kl_per_dimension_sorts_bars_and_names_dimensions():
    ax = plot_kl_per_dimension(torch.tensor([0.5, 2.0, 0.0, 1.0]))
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == [2.0, 1.0, 0.5, 0.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3", "0", "2"]


def test_scatter_latent_draws_the_prior_circle_holding_the_given_mass():
    synthetic_codes = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    ax = scatter_latent(synthetic_codes, torch.arange(50) % 10, prior_mass=0.95)
    (circle,) = ax.patches
    radius = circle.get_radius()
    # P(|z| < r) for z ~ N(0, I_2) is the chi-square(2) CDF: check it by Monte Carlo, independently
    z = torch.randn(400_000, 2, generator=torch.Generator().manual_seed(1))
    assert abs((z.norm(dim=1) < radius).float().mean().item() - 0.95) < 0.002
    assert ax.get_aspect() == 1.0


def test_plot_unit_activity_orders_bars_and_marks_the_threshold():
    ax = plot_unit_activity(torch.tensor([0.5, 2.0, 0.001]), order=torch.tensor([1, 0, 2]), threshold=0.01)
    assert [bar.get_height() for bar in ax.patches] == pytest.approx([2.0, 0.5, 0.001])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "0", "2"]
    assert ax.get_yscale() == "log" and list(ax.get_lines()[0].get_ydata()) == [0.01, 0.01]


def test_plot_rate_distortion_places_the_points_and_draws_lines_of_slope_minus_one(synthetic_images):
    rates, distortions = [20.0, 5.0, 10.0], [100.0, 130.0, 112.0]
    thumbnails = [synthetic_images[:2], synthetic_images[2:4], synthetic_images[4:]]
    ax = plot_rate_distortion(rates, distortions, labels=["a", "b", "c"], images=thumbnails, levels=[120.0, 130.0])
    (points,) = ax.collections
    assert points.get_offsets().tolist() == [[20.0, 100.0], [5.0, 130.0], [10.0, 112.0]]
    joined = ax.get_lines()[0]
    assert list(joined.get_xdata()) == [5.0, 10.0, 20.0]  # joined in order of rate
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 2
    for line, level in zip(dashed, (120.0, 130.0)):
        (r0, r1), (d0, d1) = line.get_xdata(), line.get_ydata()
        assert (d1 - d0) / (r1 - r0) == pytest.approx(-1.0)  # D + R = const
        assert r0 + d0 == pytest.approx(level) and r1 + d1 == pytest.approx(level)
    assert sum(isinstance(artist, AnnotationBbox) for artist in ax.artists) == 3
    assert {"a", "b", "c"} <= {text.get_text() for text in ax.texts}
    assert "nats" in ax.get_xlabel() and "nats" in ax.get_ylabel()


def test_plot_rate_distortion_chooses_levels_that_span_the_points():
    ax = plot_rate_distortion([1.0, 18.0, 60.0], [190.0, 122.0, 102.0])
    levels = sorted(line.get_xdata()[0] + line.get_ydata()[0] for line in ax.get_lines()
                    if line.get_linestyle() == "--")
    assert levels[0] <= 140.0 and levels[-1] >= 191.0  # the lowest and the highest D + R lie between lines


def test_plot_rate_distortion_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="one distortion per rate"):
        plot_rate_distortion([1.0, 2.0], [3.0])
    with pytest.raises(ValueError, match="labels"):
        plot_rate_distortion([1.0, 2.0], [3.0, 4.0], labels=["only one"])
