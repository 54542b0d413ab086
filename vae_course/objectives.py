r"""The ELBO family, written once against the model protocol (see ``vae_course.models``).

Introduced in notebook 04 (the ELBO) and notebook 05 (reparameterization); used to train and
evaluate every VAE.

Conventions, the same for every function here:

- values are *per example*, shape (B,), in nats (natural logarithms);
- they are *summed* over pixels and over latent dimensions, never averaged: :math:`\log p(x \mid z)` of a 28x28
  image is a sum of 784 per-pixel terms. Averaging over pixels would shrink the reconstruction term
  784-fold against the KL term and change the model being fitted (notebook 04 shows how);
- a scalar loss, when one is needed, is the mean over the batch, taken by the caller.

Any module with ``encode(x) -> q(z|x)``, ``decode(z) -> p(x|z)`` and a ``prior`` works, in any
floating dtype: nothing here depends on the package's own models or on the shape of :math:`x`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, Independent, Normal, kl_divergence

from ._checks import positive_int


class GenerativeModel(Protocol):
    """The protocol the objectives rely on."""

    latent_dim: int

    @property
    def prior(self) -> Distribution: ...

    def encode(self, x: torch.Tensor) -> Distribution: ...

    def decode(self, z: torch.Tensor) -> Distribution: ...


class ELBOTerms(NamedTuple):
    r"""The two terms of the ELBO, per example (B,):

    .. math::

        \mathrm{ELBO}(x) = \mathbb{E}_q[\log p(x \mid z)] - \mathrm{KL}(q(z \mid x) \,\|\, p(z))
                         = \text{reconstruction} - \text{kl}.

    In the rate-distortion reading (Alemi et al. 2018), distortion = -reconstruction and rate = kl.
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor

    @property
    def distortion(self) -> torch.Tensor:
        r""":math:`D = -\mathbb{E}_q[\log p(x \mid z)]`, nats per example."""
        return -self.reconstruction

    @property
    def rate(self) -> torch.Tensor:
        r""":math:`R = \mathrm{KL}(q(z \mid x) \,\|\, p(z))`, nats per example."""
        return self.kl

    @property
    def elbo(self) -> torch.Tensor:
        r""":math:`\mathrm{ELBO} = -(D + R)`, nats per example."""
        return self.reconstruction - self.kl


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{KL}(\mathcal{N}(\mu, \mathrm{diag}(e^{\text{logvar}})) \,\|\, \mathcal{N}(0, I))` in closed form,
    summed over the last dimension:

    .. math::

        \mathrm{KL} = \frac{1}{2} \sum_j \left(\mu_j^2 + e^{\text{logvar}_j} - 1 - \text{logvar}_j\right).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def kl_to_prior(posterior: Distribution, prior: Distribution, z: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`\mathrm{KL}(q \,\|\, p)`: analytic when torch.distributions knows the pair, else the
    one-sample Monte Carlo estimate :math:`\log q(z) - \log p(z)` at ``z`` :math:`\sim q` (drawn here if
    not given)."""
    try:
        return kl_divergence(posterior, prior)
    except NotImplementedError:
        if z is None:
            z = posterior.rsample()
        return posterior.log_prob(z) - prior.log_prob(z)


def diagonal_normal(distribution: Distribution) -> Normal:
    """The per-dimension Normal inside an Independent(Normal) q(z|x) or p(z)."""
    base = distribution.base_dist if isinstance(distribution, Independent) else distribution
    if not isinstance(base, Normal):
        raise TypeError(f"expected a diagonal Gaussian (Independent(Normal)), got {type(distribution).__name__}")
    return base


def free_bits_rate(posterior: Distribution, prior: Distribution, floor: float) -> torch.Tensor:
    r"""The rate with a floor of ``floor`` nats on each latent dimension (free bits, Kingma et al. 2016),
    per example (B,), for diagonal Gaussians :math:`q(z \mid x)` and :math:`p(z)`:

    .. math::

        \frac{1}{B} \sum_b \tilde R_b = \sum_d \max\left(\lambda, \frac{1}{B} \sum_b \mathrm{KL}_{bd}\right),
        \qquad \mathrm{KL}_{bd} = \mathrm{KL}(q(z_d \mid x_b) \,\|\, p(z_d)).

    Kingma et al. floor groups of dimensions; here each dimension is its own group.
    A dimension whose KL, averaged over the mini-batch, is below :math:`\lambda` costs the constant
    :math:`\lambda` and gets no gradient pushing it further towards the prior: the first :math:`\lambda`
    nats of each dimension are free. Its batch mean is the free-bits rate; above the floor it is the rate.
    Introduced in notebook 09 (rate-distortion and posterior collapse).
    """
    kl = kl_divergence(diagonal_normal(posterior), diagonal_normal(prior))  # (B, latent_dim)
    below_floor = kl.mean(dim=0) < floor  # (latent_dim,), decided on the device: no host synchronisation
    return torch.where(below_floor, torch.full_like(kl, floor), kl).sum(dim=-1)


def bits_per_dim(log_density: torch.Tensor, num_dims: int = 784, levels: int = 256) -> torch.Tensor:
    r"""Bits per dimension of 8-bit data from the log-density :math:`\log p(x)` (nats) of its dequantized
    version :math:`x = (k + u) / \text{levels}`, :math:`u \sim U[0, 1)^D`, per example:

    .. math::

        \log P(k) = \log \int_{[0,1)^D} p\!\left(\tfrac{k + u}{L}\right) L^{-D} \, du
        \ \ge\ \mathbb{E}_u\!\left[\log p\!\left(\tfrac{k + u}{L}\right)\right] - D \log L,
        \qquad \text{bits/dim} = \frac{-\log P(k)}{D \log 2} \le \frac{D \log L - \log p(x)}{D \log 2}

    (Jensen's inequality; Theis et al. 2016). The mean of the result over images and draws of :math:`u`
    is an upper bound on the bits per dimension of the discrete data, the number the literature reports.
    Introduced in notebook 08 (likelihoods).
    """
    positive_int("num_dims", num_dims)
    positive_int("levels", levels, minimum=2)
    return (num_dims * math.log(levels) - log_density) / (num_dims * math.log(2))


def elbo_terms(model: GenerativeModel, x: torch.Tensor, posterior: Distribution | None = None,
               num_samples: int = 1) -> ELBOTerms:
    r"""Reconstruction :math:`\mathbb{E}_q[\log p(x \mid z)]`, averaged over ``num_samples`` reparameterised
    samples :math:`z_s = \mu + \sigma \epsilon_s` (one for training), and the KL-to-prior (analytic where the
    distributions allow it), per example (B,):

    .. math::

        \mathrm{ELBO}(x) \approx \frac{1}{S} \sum_{s=1}^{S} \log p(x \mid z_s) - \mathrm{KL}(q(z \mid x) \,\|\, p(z)).

    The analytic KL has less variance than the Monte Carlo ELBO of ``elbo``: this is the form used
    for training (Kingma & Welling 2014, eq. 10). ``posterior``: the :math:`q` to evaluate, when it is not
    the model's own :math:`q(z \mid x)` of ``x`` (e.g. a per-image optimum, ``gaps.optimize_posterior``) or the
    caller has already encoded ``x``.
    """
    positive_int("num_samples", num_samples)
    if posterior is None:
        posterior = model.encode(x)
    z = posterior.rsample((num_samples,))  # (S, B, latent_dim), differentiable in the encoder's parameters
    reconstruction = model.decode(z).log_prob(x).mean(dim=0)  # (S, B) => (B,)
    kl = kl_to_prior(posterior, model.prior, z)
    # (S, B) Monte Carlo estimates where torch has no closed form for the pair: their mean.
    return ELBOTerms(reconstruction, kl if kl.shape == reconstruction.shape else kl.mean(dim=0))


def _log_weights(model: GenerativeModel, posterior: Distribution, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    """log w_k = log p(x|z_k) + log p(z_k) - log q(z_k|x) for z_k ~ q(z|x): shape (K, B)."""
    return _log_weights_and_reconstructions(model, posterior, x, num_samples)[0]


def _log_weights_and_reconstructions(model: GenerativeModel, posterior: Distribution, x: torch.Tensor,
                                     num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(log w_k, log p(x|z_k)) for z_k ~ q(z|x), each of shape (K, B)."""
    z = posterior.rsample((num_samples,))  # (K, B, latent_dim)
    reconstructions = model.decode(z).log_prob(x)
    return reconstructions + model.prior.log_prob(z) - posterior.log_prob(z), reconstructions


def elbo(model: GenerativeModel, x: torch.Tensor, num_samples: int = 1) -> torch.Tensor:
    r"""Monte Carlo ELBO with reparameterised samples :math:`z_k = \mu + \sigma \epsilon_k`, per example (B,):

    .. math::

        \mathrm{ELBO}(x) \approx \frac{1}{K} \sum_k \left[\log p(x \mid z_k) + \log p(z_k) - \log q(z_k \mid x)\right],
        \quad z_k \sim q(z \mid x).

    Unbiased for the ELBO for every :math:`K`; a larger :math:`K` only lowers its variance.
    """
    positive_int("num_samples", num_samples)
    return _log_weights(model, model.encode(x), x, num_samples).mean(dim=0)


def iwae_bound(model: GenerativeModel, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    r"""Importance-weighted bound of Burda et al. (2015), per example (B,):

    .. math::

        \mathcal{L}_K(x) = \mathbb{E}\left[\log \frac{1}{K} \sum_k w_k\right], \quad
        w_k = \frac{p(x, z_k)}{q(z_k \mid x)}, \quad z_k \sim q(z \mid x).

    :math:`\mathcal{L}_1` is the ELBO; :math:`\mathcal{L}_K \le \mathcal{L}_{K+1} \le \log p(x)` in
    expectation, and :math:`\mathcal{L}_K \to \log p(x)` as :math:`K` grows.
    """
    positive_int("num_samples", num_samples)
    log_w = _log_weights(model, model.encode(x), x, num_samples)
    return torch.logsumexp(log_w, dim=0) - math.log(num_samples)


def iwae_terms(model: GenerativeModel, x: torch.Tensor, num_samples: int) -> tuple[torch.Tensor, ELBOTerms]:
    r"""The importance-weighted bound :math:`\mathcal{L}_K` (as ``iwae_bound``) and, from the same
    :math:`K` samples, the ELBO's terms: the reconstruction :math:`\frac{1}{K} \sum_k \log p(x \mid z_k)` and
    the analytic KL. All per example (B,). What ``fit(loss="iwae")`` trains with and records
    (notebook 11).
    """
    positive_int("num_samples", num_samples)
    posterior = model.encode(x)
    log_w, reconstructions = _log_weights_and_reconstructions(model, posterior, x, num_samples)
    bound = torch.logsumexp(log_w, dim=0) - math.log(num_samples)
    return bound, ELBOTerms(reconstructions.mean(dim=0), kl_to_prior(posterior, model.prior))


@torch.no_grad()
def log_likelihood(
    model: GenerativeModel, x: torch.Tensor, num_samples: int = 1000, max_batch_elements: int = 2**14,
    proposal: Distribution | None = None,
) -> torch.Tensor:
    r"""Importance-sampled estimate of :math:`\log p(x)`, per example (B,), with :math:`q(z \mid x)` as
    the proposal:

    .. math::

        \log p(x) \approx \log \frac{1}{K} \sum_k \frac{p(x, z_k)}{q(z_k \mid x)}, \quad z_k \sim q(z \mid x),

    i.e. ``iwae_bound`` with large :math:`K` (Burda et al. use :math:`K = 5000`). ``proposal``: another
    :math:`q` (batch shape (B,)) to sample from instead of the encoder's, e.g. a per-image optimum
    (notebook 11); any :math:`q` gives an estimate whose expectation is a lower bound, a better one a tighter
    bound. Samples are drawn in chunks of at most ``max_batch_elements`` decoded images and combined with a
    running log-sum-exp, so memory stays bounded whatever ``num_samples`` is.
    """
    positive_int("num_samples", num_samples)
    posterior = model.encode(x) if proposal is None else proposal

    def log_weights(start: int, stop: int) -> torch.Tensor:
        return _log_weights(model, posterior, x, stop - start)  # (k, B)

    chunk = max(1, max_batch_elements // x.shape[0])
    return logsumexp_in_chunks(log_weights, num_samples, chunk) - math.log(num_samples)


def logsumexp_in_chunks(
    log_terms: Callable[[int, int], torch.Tensor], num_terms: int, chunk: int
) -> torch.Tensor:
    r""":math:`\log \sum_k \exp(a_k)` over ``num_terms`` terms that ``log_terms(start, stop)`` yields as a
    (stop - start, B) tensor, ``chunk`` terms at a time, combined with a running log-sum-exp: memory
    stays bounded by one chunk however many terms there are. Shared by every estimator that sums
    many likelihoods (``log_likelihood``, ``naive_log_likelihood``, ``toy.nonlinear.grid_log_evidence``).
    """
    total = None
    for start in range(0, num_terms, chunk):
        part = torch.logsumexp(log_terms(start, min(start + chunk, num_terms)), dim=0)  # (k, B) => (B,)
        total = part if total is None else torch.logaddexp(total, part)
    return total


def reconstruction_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""The autoencoder's loss, per example (B,): binary cross-entropy summed over pixels,

    .. math::

        \mathrm{BCE}(x, \hat x) = -\sum_i \left[x_i \log \hat x_i + (1 - x_i) \log(1 - \hat x_i)\right],
        \quad \hat x = \sigma(t), \quad t = \text{decode}(\text{encode}(x)).

    Computed from the logits :math:`t` with :math:`\log \hat x = -\mathrm{softplus}(-t)` and
    :math:`\log(1 - \hat x) = -\mathrm{softplus}(t)`, which stay exact where :math:`\hat x` rounds to 0
    or 1 (``binary_cross_entropy`` on :math:`\hat x` clamps :math:`\log 0` to -100 there and its gradient
    vanishes). For binary :math:`x` it is the Bernoulli :math:`-\log p(x \mid z)` of a VAE, in the same nats.
    """
    logits = model.decode(model.encode(x))
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(start_dim=1).sum(dim=1)


@torch.no_grad()
def naive_log_likelihood(
    model: GenerativeModel, x: torch.Tensor, num_samples: int = 1000, max_batch_elements: int = 2**14
) -> torch.Tensor:
    r"""Naive Monte Carlo estimate of :math:`\log p(x)`, per example (B,), with the prior as the proposal:

    .. math::

        \log p(x) \approx \log \frac{1}{K} \sum_k p(x \mid z_k), \quad z_k \sim p(z),

    computed as :math:`\operatorname{logsumexp}_k \log p(x \mid z_k) - \log K`. The mean of
    :math:`p(x \mid z_k)` is unbiased for :math:`p(x)`, but when :math:`p(z \mid x)` is much narrower than
    :math:`p(z)` (a real image and a 20-d latent) almost no :math:`z_k` lands where :math:`p(x \mid z)` is
    large: the estimate sits far below :math:`\log p(x)` and varies wildly from run to run.
    The prior does not depend on :math:`x`, so one set of :math:`K` samples serves the whole batch.
    Samples are drawn in chunks of at most ``max_batch_elements`` (sample, example) pairs and
    combined with a running log-sum-exp, as in ``log_likelihood``.

    Introduced in notebook 02 (latent variables and Bayes' rule).
    """
    positive_int("num_samples", num_samples)

    def log_likelihoods(start: int, stop: int) -> torch.Tensor:
        z = model.prior.sample((stop - start, 1))  # (k, 1, latent_dim): shared by the whole batch
        return model.decode(z).log_prob(x)  # (k, B)

    chunk = max(1, max_batch_elements // x.shape[0])
    return logsumexp_in_chunks(log_likelihoods, num_samples, chunk) - math.log(num_samples)


def effective_sample_size(log_weights: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r"""Kish's effective sample size of importance weights given as logs, reduced over ``dim``:

    .. math::

        \mathrm{ESS} = \frac{\left(\sum_k w_k\right)^2}{\sum_k w_k^2},

    computed as :math:`\exp(2 \operatorname{logsumexp}(\log w) - \operatorname{logsumexp}(2 \log w))`
    so that weights of :math:`e^{-500}` do not underflow. It lies between 1 (one weight dominates) and
    :math:`K` (all weights equal).

    Introduced in notebook 02 (latent variables and Bayes' rule).
    """
    return torch.exp(2 * torch.logsumexp(log_weights, dim=dim) - torch.logsumexp(2 * log_weights, dim=dim))
