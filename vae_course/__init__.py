r"""vae_course: the support package of the notebook course on Variational Autoencoders.

One module per idea, named for what a learner looks for:

- ``vae_course.data``        real MNIST / Fashion-MNIST as tensors, online and offline; mini-batches
- ``vae_course.models``      Autoencoder, VAE, ConvVAE, CVAE: encode -> :math:`q(z \mid x)`, decode -> :math:`p(x \mid z)`,
  prior :math:`p(z)`
- ``vae_course.objectives``  the ELBO family: elbo, elbo_terms, iwae_bound, log_likelihood, gaussian_kl,
  free_bits_rate, bits_per_dim
- ``vae_course.training``    fit (one loop for every model), History, get_device
- ``vae_course.gaps``        how far the ELBO is from :math:`\log p(x)`: the approximation and amortization gaps
- ``vae_course.latent``      which latent dimensions are used; grids, sweeps, traversals, interpolations
- ``vae_course.plotting``    image grids, latent scatters, curves, the decoded manifold, traversals
- ``vae_course.widgets``     latent sliders (ipywidgets) to explore a trained model by hand
- ``vae_course.probes``      a linear probe: how much a code says about a label
- ``vae_course.figures``     regenerates figures/ (``python -m vae_course figures``)
- ``vae_course.checkpoint``  save / load, atomic and safe
- ``vae_course.toy``         tractable models with exact evidence, for checking the theory
"""

from .checkpoint import load, save
from .data import ImageData, batches, load_dataset
from .models import CVAE, VAE, Autoencoder, ConvVAE
from .objectives import elbo, elbo_terms, gaussian_kl, iwae_bound, log_likelihood
from .training import History, fit, get_device

__version__ = "0.1.0"

__all__ = [
    "CVAE", "VAE", "Autoencoder", "ConvVAE", "History", "ImageData", "batches", "elbo", "elbo_terms", "fit",
    "gaussian_kl", "get_device", "iwae_bound", "load", "load_dataset", "log_likelihood", "save",
]
