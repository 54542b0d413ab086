"""Independent references for the exercise checks that judge a VAE's rate and distortion (notebooks 06, 08
and 09): NumPy on the raw outputs of the model's two networks, the closed-form KL and the Bernoulli
log-probability written out, so that a test never compares ``vae_course`` with itself."""

from __future__ import annotations

import numpy as np
import torch


def encoder_kl(model: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mu, logvar, KL(q(z_d|x) || N(0, 1))), each (N, latent_dim) in float64, from the encoder's raw output
    (the means, then the log-variances)."""
    with torch.no_grad():
        out = model.encoder(x).double().numpy()  # (N, 2 latent_dim)
    mu, logvar = np.split(out, 2, axis=1)
    return mu, logvar, 0.5 * (mu**2 + np.exp(logvar) - 1 - logvar)


def bernoulli_distortion(model: torch.nn.Module, x: torch.Tensor, mu: np.ndarray, logvar: np.ndarray,
                         samples: int = 100, seed: int = 2) -> float:
    """-E_q[log p(x|z)] of binary images ``x``, summed over the pixels and averaged over the images and over
    ``samples`` draws z = mu + sigma eps per image, from the decoder's raw logits."""
    num_images = len(mu)
    eps = np.random.default_rng(seed).standard_normal((samples, *mu.shape))
    with torch.no_grad():
        z = torch.from_numpy(mu + np.exp(0.5 * logvar) * eps).float()  # (samples, N, latent_dim)
        logits = model.decoder(z).double().numpy().reshape(samples, num_images, -1)  # (samples, N, pixels)
    pixels = x.numpy().reshape(1, num_images, -1)
    log_p = pixels * -np.logaddexp(0, -logits) + (1 - pixels) * -np.logaddexp(0, logits)  # log sigmoid(+-logit)
    return -log_p.sum(axis=2).mean()
