r"""Tractable models for the theory notebooks: small enough that the exact answer is computable, so
every approximation can be checked against it. One module per notebook topic:

- ``vae_course.toy.linear_gaussian``: :math:`p(z) = \mathcal{N}(0, I)`,
  :math:`p(x \mid z) = \mathcal{N}(Wz + b, \sigma^2 I)` (notebook 04).
- ``vae_course.toy.nonlinear``: a 1-d latent through a curved decoder; :math:`p(x)` and :math:`p(z \mid x)`
  on a grid (notebook 02).
- ``vae_course.toy.mixture``: a bimodal 1-d Gaussian mixture, fitted by forward and reverse KL (notebook 03).
"""

from .linear_gaussian import LinearGaussian, VariationalGaussian, analytic_elbo, expected_log_likelihood

__all__ = ["LinearGaussian", "VariationalGaussian", "analytic_elbo", "expected_log_likelihood"]
