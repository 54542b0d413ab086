r"""Models: a deterministic autoencoder and VAEs that speak in ``torch.distributions``.

Introduced in notebook 01 (autoencoder) and notebook 06 (VAE on MNIST).

Every generative model here follows one protocol, which is all the objectives rely on:

- ``encode(x)`` returns :math:`q(z \mid x)`, a distribution with batch shape (B,) and event shape (latent_dim,);
- ``decode(z)`` returns :math:`p(x \mid z)`, a distribution with event shape (1, 28, 28); ``z`` may carry leading
  sample dimensions, e.g. (K, B, latent_dim) gives batch shape (K, B);
- ``prior`` is :math:`p(z) = \mathcal{N}(0, I)` with event shape (latent_dim,); ``latent_dim`` is an attribute.

Inputs are checked at ``encode``: a wrong shape, a non-float dtype (such as uint8 pixels 0-255),
NaN/inf, or values outside [0, 1] for a Bernoulli-type likelihood raise a ``ValueError`` naming the fix
(``vae_course._checks``); ``decode`` checks that a code has ``latent_dim`` numbers.
The distributions are built with ``validate_args=False``: that check has been done, and torch's own
would reject grey pixel values under a Bernoulli likelihood. Reading a grey value :math:`x \in [0, 1]`
as :math:`x \log p + (1 - x) \log(1 - p)` is the usual binary cross-entropy on MNIST (not a normalised
density for non-binary :math:`x`: that is what the continuous Bernoulli fixes).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, ContinuousBernoulli, Distribution, Independent, Normal

from ._checks import IMAGE_SHAPE, NUM_PIXELS, check_code, check_images, check_labels, positive_int
from .objectives import log_likelihood

LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")

# exp(0.5 * logvar) stays finite and positive in float32 inside this range: sigma in [3e-7, 2.2e4].
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
# A learned Gaussian scale may not shrink below this: on MNIST's constant black border, an unbounded
# per-pixel scale would shrink to 0 and send log p(x|z) to +infinity (notebook 08).
MIN_GAUSSIAN_SCALE = 1e-2


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class Model(nn.Module):
    """A module that remembers its constructor's arguments as ``config``, for ``checkpoint.load``.

    ``config`` is recorded after ``__init__`` returns, from the arguments as called (defaults filled
    in), so no argument can be forgotten: a checkpoint rebuilds exactly the model that was saved, even
    one whose argument (the likelihood, say) changes no weight shape. Every model here derives from it.
    """

    config: dict

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def __init__(self, *args, **kwargs) -> None:
            init(self, *args, **kwargs)
            if type(self) is cls:  # the outermost class records; a parent's __init__ called by super() does not
                arguments = signature.bind(self, *args, **kwargs)
                arguments.apply_defaults()
                self.config = {name: list(value) if isinstance(value, tuple) else value
                               for name, value in list(arguments.arguments.items())[1:]}

        cls.__init__ = __init__


class Autoencoder(Model):
    r"""A deterministic autoencoder: :math:`x \to` code :math:`z \to` reconstruction :math:`\hat x` (notebook 01).

    ``encode`` returns the code and ``decode`` the logits of the reconstruction, tensors rather than
    distributions: there is no prior, so nothing here is generative. ``reconstruct`` returns the
    reconstruction :math:`\hat x = \sigma(\text{logits}) \in [0, 1]`. It trains by minimising the binary
    cross-entropy between :math:`x` and :math:`\hat x`, summed over pixels
    (``vae_course.objectives.reconstruction_loss``), computed from the logits: :math:`\log \sigma(t)`
    never rounds to :math:`\log 0`, so a confidently wrong pixel keeps its gradient.
    """

    def __init__(self, latent_dim: int, hidden_dims: Sequence[int] = (400,)) -> None:
        super().__init__()
        _check_sizes(latent_dim, hidden_dims)
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(nn.Flatten(), mlp([NUM_PIXELS, *hidden_dims, latent_dim]))
        self.decoder = nn.Sequential(
            mlp([latent_dim, *reversed(hidden_dims), NUM_PIXELS]),
            nn.Unflatten(-1, IMAGE_SHAPE),  # (..., 784) => (..., 1, 28, 28)
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code :math:`z = f(x)`, shape (B, latent_dim)."""
        check_images(x, like=next(self.parameters()))
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        r"""The logits :math:`g(z)` of the reconstruction, shape (..., 1, 28, 28): :math:`\hat x = \sigma(g(z))`."""
        check_code(self, z)
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\hat x = \sigma(\text{decode}(\text{encode}(x)))`, pixel values in [0, 1]."""
        return torch.sigmoid(self.decode(self.encode(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x)


class LatentVariableModel(Model):
    r"""What every VAE shares: the prior, the Gaussian encoder :math:`q(z \mid x)` and the likelihood
    :math:`p(x \mid z)`.

    A subclass supplies two networks: ``encoder`` maps (N, 1, 28, 28) to (N, 2 * latent_dim), the mean
    and log-variance of :math:`q(z \mid x)`; ``decoder`` maps (N, latent_dim) to (N, 1, 28, 28), one number
    per pixel that parameterises :math:`p(x \mid z)`.
    """

    encoder: nn.Module
    decoder: nn.Module

    def __init__(self, latent_dim: int, likelihood: str = "bernoulli", gaussian_scale: float | str | None = None) -> None:
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}: choose one of {LIKELIHOODS}")
        if gaussian_scale is not None and likelihood != "gaussian":
            raise ValueError("gaussian_scale applies only to likelihood='gaussian'")
        if gaussian_scale not in (None, "per_pixel") and not (isinstance(gaussian_scale, (int, float)) and gaussian_scale > 0):
            raise ValueError(f"gaussian_scale must be a positive number, 'per_pixel' or None, got {gaussian_scale!r}")
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.gaussian_scale = gaussian_scale
        # Buffers, not constants: the prior follows the model to its device and dtype.
        self.register_buffer("prior_loc", torch.zeros(latent_dim))
        self.register_buffer("prior_scale", torch.ones(latent_dim))
        if likelihood == "gaussian" and gaussian_scale in (None, "per_pixel"):
            # One learned sigma for all pixels, or one per pixel (1, 28, 28); neither depends on z.
            self.log_scale = nn.Parameter(torch.zeros(IMAGE_SHAPE if gaussian_scale == "per_pixel" else ()))

    @property
    def prior(self) -> Distribution:
        r""":math:`p(z) = \mathcal{N}(0, I)`, event shape (latent_dim,)."""
        return Independent(Normal(self.prior_loc, self.prior_scale, validate_args=False), 1, validate_args=False)

    def encode(self, x: torch.Tensor) -> Distribution:
        r""":math:`q(z \mid x) = \mathcal{N}(\mu(x), \mathrm{diag}(\sigma(x)^2))`, batch shape (B,), event shape
        (latent_dim,)."""
        check_images(x, unit_interval=self.likelihood != "gaussian", like=self.prior_loc)
        return self._posterior(self.encoder(x))

    def _posterior(self, out: torch.Tensor) -> Distribution:
        mu, logvar = out.chunk(2, dim=-1)  # (B, 2 * latent_dim) => 2 x (B, latent_dim)
        logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)  # no overflow in exp, no sigma of exactly 0
        return Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1, validate_args=False)

    def decode(self, z: torch.Tensor) -> Distribution:
        r""":math:`p(x \mid z)`, event shape (1, 28, 28); ``z`` of shape (..., latent_dim) gives batch shape (...).

        "bernoulli": ``Bernoulli(logits)``; "continuous_bernoulli": ``ContinuousBernoulli(logits)``, the
        normalised version for grey values (Loaiza-Ganem & Cunningham 2019); "gaussian":
        ``Normal(sigmoid(output), sigma)``. In every case ``decode(z).mean`` is an image in [0, 1].
        """
        check_code(self, z)
        return self._likelihood(z)

    def _likelihood(self, decoder_input: torch.Tensor) -> Distribution:
        """p(x|z) from the decoder's output for inputs (..., n): batch shape (...)."""
        leading = decoder_input.shape[:-1]
        out = self.decoder(decoder_input.reshape(-1, decoder_input.shape[-1]))  # (N, n) => (N, 1, 28, 28)
        out = out.reshape(*leading, *IMAGE_SHAPE)
        if self.likelihood == "bernoulli":
            pixels: Distribution = Bernoulli(logits=out, validate_args=False)
        elif self.likelihood == "continuous_bernoulli":
            pixels = ContinuousBernoulli(logits=out, validate_args=False)
        else:
            pixels = Normal(torch.sigmoid(out), self._gaussian_scale(out), validate_args=False)
        return Independent(pixels, len(IMAGE_SHAPE), validate_args=False)

    def _gaussian_scale(self, like: torch.Tensor) -> torch.Tensor:
        if self.gaussian_scale not in (None, "per_pixel"):
            return torch.full_like(like, self.gaussian_scale)
        return (MIN_GAUSSIAN_SCALE + torch.exp(self.log_scale)).expand_as(like)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        r"""The mean image of :math:`p(x \mid z)` at :math:`z` = the mean of :math:`q(z \mid x)`: a deterministic
        reconstruction."""
        return self.decode(self.encode(x).mean).mean

    def sample(self, num_images: int) -> torch.Tensor:
        r"""Mean images of :math:`p(x \mid z)` for :math:`z \sim p(z)`: (num_images, 1, 28, 28)."""
        return self.decode(self.prior.sample((num_images,))).mean

    def forward(self, x: torch.Tensor) -> tuple[Distribution, Distribution]:
        r"""(:math:`q(z \mid x)`, :math:`p(x \mid z)`) for one reparameterised sample :math:`z \sim q(z \mid x)`."""
        posterior = self.encode(x)
        return posterior, self.decode(posterior.rsample())


class VAE(LatentVariableModel):
    r"""The VAE of Kingma & Welling (2014) with MLPs of the sizes of the PyTorch example (theirs had 500 tanh units):
    784-400-(20 + 20) encoder, 20-400-784 decoder, ReLU between.

    ``likelihood``: "bernoulli", "continuous_bernoulli" or "gaussian"; ``gaussian_scale`` fixes :math:`\sigma`
    of the Gaussian likelihood, or learns it: one for all pixels when None, one per pixel when "per_pixel";
    a learned :math:`\sigma` is ``MIN_GAUSSIAN_SCALE`` + :math:`e^{s}` (notebook 08 says why it needs a floor).
    """

    def __init__(
        self,
        latent_dim: int = 20,
        hidden_dims: Sequence[int] = (400,),
        likelihood: str = "bernoulli",
        gaussian_scale: float | str | None = None,
    ) -> None:
        _check_sizes(latent_dim, hidden_dims)
        super().__init__(latent_dim, likelihood, gaussian_scale)
        self.encoder = nn.Sequential(nn.Flatten(), mlp([NUM_PIXELS, *hidden_dims, 2 * latent_dim]))
        self.decoder = nn.Sequential(
            mlp([latent_dim, *reversed(hidden_dims), NUM_PIXELS]),
            nn.Unflatten(-1, IMAGE_SHAPE),  # (N, 784) => (N, 1, 28, 28)
        )


class ConvVAE(LatentVariableModel):
    """A small convolutional VAE: two stride-2 convolutions down, two transposed convolutions up."""

    def __init__(self, latent_dim: int = 20, likelihood: str = "bernoulli", gaussian_scale: float | str | None = None) -> None:
        _check_sizes(latent_dim, ())
        super().__init__(latent_dim, likelihood, gaussian_scale)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=4, stride=2, padding=1),  # 1x28x28 => 32x14x14
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2, padding=1),  # 32x14x14 => 64x7x7
            nn.ReLU(),
            nn.Flatten(),  # 64x7x7 => 3136
            nn.Linear(64 * 7 * 7, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 64 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(-1, (64, 7, 7)),  # 3136 => 64x7x7
            nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1),  # 64x7x7 => 32x14x14
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, kernel_size=4, stride=2, padding=1),  # 32x14x14 => 1x28x28
        )


class CVAE(LatentVariableModel):
    r"""The conditional VAE (Sohn et al. 2015; Kingma et al. 2014's M2 with every label known): MLPs that
    also read the label :math:`y` as a one-hot vector (notebook 10).

    .. math::

        q(z \mid x, y) = \mathcal{N}(\mu(x, y), \mathrm{diag}\,\sigma(x, y)^2), \quad
        p(x \mid z, y), \quad p(z) = \mathcal{N}(0, I), \qquad
        \log p(x \mid y) \ge \mathbb{E}_q[\log p(x \mid z, y)] - \mathrm{KL}(q(z \mid x, y) \,\|\, p(z)).

    ``encode(x, y)`` and ``decode(z, y)`` take the labels (B,) as integers, or one int for all images.
    ``given(y)`` fixes the labels and returns a model with the plain protocol (``encode(x)``,
    ``decode(z)``, ``prior``), so every objective of ``vae_course.objectives`` applies to it unchanged:
    ``log_likelihood(cvae.given(y), x)`` estimates :math:`\log p(x \mid y)`. ``fit`` trains it from an
    ``ImageData``, whose labels it passes along.
    """

    def __init__(self, latent_dim: int = 20, hidden_dims: Sequence[int] = (400,), num_classes: int = 10,
                 likelihood: str = "bernoulli") -> None:
        _check_sizes(latent_dim, hidden_dims)
        positive_int("num_classes", num_classes, minimum=2)
        super().__init__(latent_dim, likelihood)
        self.num_classes = num_classes
        self.encoder = mlp([NUM_PIXELS + num_classes, *hidden_dims, 2 * latent_dim])
        self.decoder = nn.Sequential(
            mlp([latent_dim + num_classes, *reversed(hidden_dims), NUM_PIXELS]),
            nn.Unflatten(-1, IMAGE_SHAPE),  # (N, 784) => (N, 1, 28, 28)
        )

    def one_hot(self, y: torch.Tensor | int, batch_shape: torch.Size) -> torch.Tensor:
        """The labels as one-hot rows broadcast to ``batch_shape``: shape ``(*batch_shape, num_classes)``."""
        y = check_labels(y, self.num_classes, like=self.prior_loc)
        return nn.functional.one_hot(y, self.num_classes).to(self.prior_loc.dtype).expand(*batch_shape, -1)

    def encode(self, x: torch.Tensor, y: torch.Tensor | int) -> Distribution:
        r""":math:`q(z \mid x, y)`, batch shape (B,), event shape (latent_dim,)."""
        check_images(x, unit_interval=self.likelihood != "gaussian", like=self.prior_loc)
        x_and_y = torch.cat([x.flatten(start_dim=1), self.one_hot(y, x.shape[:1])], dim=-1)  # (B, 784 + C)
        return self._posterior(self.encoder(x_and_y))

    def decode(self, z: torch.Tensor, y: torch.Tensor | int) -> Distribution:
        r""":math:`p(x \mid z, y)`, event shape (1, 28, 28); ``z`` (..., latent_dim) and ``y`` broadcast to (...)."""
        check_code(self, z)
        z_and_y = torch.cat([z, self.one_hot(y, z.shape[:-1])], dim=-1)  # (..., latent_dim + C)
        return self._likelihood(z_and_y)

    def given(self, y: torch.Tensor | int) -> Conditioned:
        """This model with the labels fixed to ``y``: ``encode(x)``, ``decode(z)``, ``prior``, ``latent_dim``."""
        return Conditioned(self, y)

    @torch.no_grad()
    def label_log_posterior(self, x: torch.Tensor, num_samples: int = 100,
                            log_prior: torch.Tensor | None = None) -> torch.Tensor:
        r"""The CVAE as a classifier, by Bayes' rule (notebook 02): :math:`\log p(y \mid x)` for every label,
        shape (B, num_classes),

        .. math::

            \log p(y \mid x) = \log p(x \mid y) + \log p(y) - \log \sum_{y'} p(x \mid y')\, p(y'),

        with each :math:`\log p(x \mid y)` importance-sampled (``objectives.log_likelihood``, ``num_samples``
        samples). ``log_prior``: :math:`\log p(y)`, shape (num_classes,); uniform when None.
        """
        if log_prior is None:
            log_prior = torch.full((self.num_classes,), -math.log(self.num_classes), device=x.device, dtype=x.dtype)
        joint = torch.stack([log_likelihood(self.given(label), x, num_samples) for label in range(self.num_classes)],
                            dim=-1) + log_prior  # (B, num_classes)
        return joint - torch.logsumexp(joint, dim=-1, keepdim=True)

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | int) -> torch.Tensor:
        r"""The mean image of :math:`p(x \mid z, y)` at the mean of :math:`q(z \mid x, y)`."""
        return self.decode(self.encode(x, y).mean, y).mean

    def sample(self, num_images: int, y: torch.Tensor | int) -> torch.Tensor:
        r"""Mean images of :math:`p(x \mid z, y)` for :math:`z \sim p(z)`: (num_images, 1, 28, 28)."""
        return self.decode(self.prior.sample((num_images,)), y).mean

    def forward(self, x: torch.Tensor, y: torch.Tensor | int) -> tuple[Distribution, Distribution]:
        posterior = self.encode(x, y)
        return posterior, self.decode(posterior.rsample(), y)


class Conditioned(nn.Module):
    """A ``CVAE`` with its labels fixed (``CVAE.given``): the plain model protocol of the objectives."""

    def __init__(self, model: CVAE, y: torch.Tensor | int) -> None:
        super().__init__()
        self.model, self.y = model, y
        self.latent_dim = model.latent_dim

    @property
    def prior(self) -> Distribution:
        return self.model.prior

    def encode(self, x: torch.Tensor) -> Distribution:
        return self.model.encode(x, self.y)

    def decode(self, z: torch.Tensor) -> Distribution:
        return self.model.decode(z, self.y)


MODELS: dict[str, type[nn.Module]] = {cls.__name__: cls for cls in (Autoencoder, VAE, ConvVAE, CVAE)}


def _check_sizes(latent_dim: int, hidden_dims: Sequence[int]) -> None:
    positive_int("latent_dim", latent_dim)
    for size in hidden_dims:
        positive_int("each of hidden_dims", size)
