"""Probes: how much a code says about a label, measured by a classifier trained on the codes.

Introduced in notebook 10 (the conditional VAE): a VAE's code holds the digit, a CVAE's code need
not, because the CVAE is given the digit. A *linear probe* (multinomial logistic regression on the
codes) measures that: its test accuracy is far above chance when the code holds the label, near
chance when it does not.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import finite_number, positive_int

__all__ = ["accuracy", "fit_linear_probe"]


def fit_linear_probe(codes: torch.Tensor, labels: torch.Tensor, num_classes: int | None = None, *,
                     weight_decay: float = 1e-3, max_iter: int = 200) -> nn.Linear:
    r"""Multinomial logistic regression of ``labels`` (N,) on ``codes`` (N, d): the ``nn.Linear`` (d to
    ``num_classes`` logits) that minimises the mean cross-entropy plus an L2 penalty on its weights (not
    its biases),

    .. math::

        \min_{W, b} \; -\frac{1}{N} \sum_{n=1}^N \log \operatorname{softmax}(W z_n + b)_{y_n}
        + \frac{\lambda}{2} \lVert W \rVert^2,

    with :math:`\lambda` = ``weight_decay``: a smooth convex problem, solved full-batch with L-BFGS (at most ``max_iter`` iterations). It is
    scikit-learn's ``LogisticRegression(C=1 / (N * weight_decay))``. ``num_classes`` defaults to
    ``labels.max() + 1``. Introduced in notebook 10.
    """
    if codes.dim() != 2 or labels.shape != codes.shape[:1]:
        raise ValueError(f"codes should be (N, d) and labels (N,), got {tuple(codes.shape)} and {tuple(labels.shape)}")
    finite_number("weight_decay", weight_decay)
    positive_int("max_iter", max_iter)
    codes = codes.detach()
    labels = labels.detach().to(codes.device).long()
    num_classes = int(labels.max()) + 1 if num_classes is None else positive_int("num_classes", num_classes, minimum=2)
    probe = nn.Linear(codes.shape[1], num_classes).to(codes)
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)  # a convex problem: the start only changes how long L-BFGS takes
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=max_iter, tolerance_grad=1e-9,
                                  tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(probe(codes), labels) + 0.5 * weight_decay * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return probe.requires_grad_(False)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    r"""The share :math:`\hat a` of ``predictions`` equal to ``labels`` (both (N,)) and its standard error
    :math:`\sqrt{\hat a (1 - \hat a) / N}` (a binomial proportion). Introduced in notebook 10."""
    if predictions.shape != labels.shape or predictions.dim() != 1:
        raise ValueError(f"predictions and labels should both be (N,), got {tuple(predictions.shape)} "
                         f"and {tuple(labels.shape)}")
    share = (predictions.cpu() == labels.cpu()).double().mean().item()
    return share, math.sqrt(share * (1 - share) / len(labels))
