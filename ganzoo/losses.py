"""Adversarial losses as small pure functions on discriminator logits.

Notation: ``D(x)`` is the discriminator's logit, ``sigma`` the logistic sigmoid, and
``softplus(t) = log(1 + exp(t))``, so that ``-log sigma(t) = softplus(-t)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def d_logistic(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's cross-entropy loss (Goodfellow et al. 2014):

    ``L_D = E[softplus(-D(x))] + E[softplus(D(G(z)))] = -E[log sigma(D(x))] - E[log(1 - sigma(D(G(z))))]``.
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating(fake_logits: Tensor) -> Tensor:
    """The generator's non-saturating loss (Goodfellow et al. 2014, section 3):

    ``L_G = E[softplus(-D(G(z)))] = -E[log sigma(D(G(z)))]``, which has strong gradients early in training
    where the minimax ``E[log(1 - sigma(D(G(z))))]`` saturates.
    """
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """The R1 penalty (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?"):

    ``R1 = E_x ||grad_x D(x)||^2`` over real images ``x`` (which must require grad); the caller weights it by
    ``gamma / 2``. Differentiable, so it can be minimised.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().sum(dim=tuple(range(1, grad.ndim))).mean()


def path_length_penalty(fake: Tensor, ws: Tensor, pl_mean: Tensor, decay: float = 0.01) -> tuple[Tensor, Tensor]:
    """StyleGAN2's path length regularisation (Karras et al. 2020, section 3.2):

    ``E_{w,y} (||J_w^T y||_2 - a)^2`` with ``y ~ N(0, I) / sqrt(H W)`` and ``a`` a running mean of the lengths,
    here ``pl_mean`` (updated in place with ``decay``). ``J_w^T y`` is the gradient of ``sum(fake * y)`` with respect
    to the styles ``ws`` ``[N, num_ws, w_dim]``; its length is averaged over the styles.

    Returns:
        the penalty (a scalar to minimise) and the lengths ``[N]``.
    """
    noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
    (grad,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    mean = pl_mean.lerp(lengths.mean(), decay)
    pl_mean.copy_(mean.detach())
    return (lengths - mean).square().mean(), lengths
