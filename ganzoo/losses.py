"""Adversarial losses as small pure functions on discriminator logits.

Notation: ``D(x)`` is the discriminator's logit, ``sigma`` the logistic sigmoid, and
``softplus(t) = log(1 + exp(t))``, so that ``-log sigma(t) = softplus(-t)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

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


def d_least_squares(real_out: Tensor, fake_out: Tensor) -> Tensor:
    """The least-squares discriminator loss (Mao et al. 2017, LSGAN, with targets 1 for real and 0 for fake), halved
    as CycleGAN trains it: ``L_D = (E[(D(x) - 1)^2] + E[D(G(z))^2]) / 2``."""
    return 0.5 * ((real_out - 1).square().mean() + fake_out.square().mean())


def g_least_squares(fake_out: Tensor) -> Tensor:
    """The least-squares generator loss: ``L_G = E[(D(G(z)) - 1)^2]``."""
    return (fake_out - 1).square().mean()


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """The R1 penalty (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?"):

    ``R1 = E_x ||grad_x D(x)||^2`` over real images ``x`` (which must require grad); the caller weights it by
    ``gamma / 2``. Differentiable, so it can be minimised.
    """
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().sum(dim=tuple(range(1, grad.ndim))).mean()


def path_length_penalty(
    fake: Tensor,
    ws: Tensor,
    pl_mean: Tensor,
    decay: float = 0.01,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """StyleGAN2's path length regularisation (Karras et al. 2020, section 3.2):

    ``E_{w,y} (||J_w^T y||_2 - a)^2`` with ``y ~ N(0, I) / sqrt(H W)`` and ``a`` a running mean of the lengths,
    here ``pl_mean``, updated in place to ``a + decay (mean(lengths) - a)``. ``J_w^T y`` is the gradient of
    ``sum(fake * y)`` with respect to the styles ``ws`` ``[N, num_ws, w_dim]``; its length is averaged over the
    styles.

    Args:
        reduce: under data parallelism, the mean over processes of the batch's mean length, applied before the
            update so that every process holds the same ``pl_mean``; the gradient still flows through this
            process's own lengths.

    Returns:
        the penalty (a scalar to minimise) and the lengths ``[N]``.
    """
    noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
    (grad,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    batch_mean = lengths.mean().to(pl_mean.dtype)  # fp32 even when the lengths came out of fp16 autocast
    if reduce is not None:
        local = batch_mean.detach()
        batch_mean = batch_mean + (reduce(local.clone()) - local)
    mean = pl_mean.lerp(batch_mean, decay)
    pl_mean.copy_(mean.detach())
    return (lengths - mean).square().mean(), lengths


def d_wasserstein(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """The WGAN critic's loss (Arjovsky et al. 2017): ``L_D = E[D(G(z))] - E[D(x)]``, minus the Wasserstein-1
    estimate ``E[D(x)] - E[D(G(z))]``, which is tight when ``D`` is the optimal 1-Lipschitz critic."""
    return fake_scores.mean() - real_scores.mean()


def g_wasserstein(fake_scores: Tensor) -> Tensor:
    """The WGAN generator's loss ``L_G = -E[D(G(z))]``; also the generator's loss of the hinge GAN (Miyato et al.
    2018), with which it coincides."""
    return -fake_scores.mean()


def d_hinge(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The hinge loss of the discriminator (Lim and Ye 2017; Miyato et al. 2018, "Spectral Normalization"):

    ``L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``; the generator's is :func:`g_wasserstein`.
    """
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor | None = None
) -> Tensor:
    """WGAN-GP's two-sided penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", eq. 3):

    ``GP = E_xhat (||grad_xhat D(xhat)||_2 - 1)^2`` with ``xhat = eps x + (1 - eps) G(z)``, ``eps ~ U[0, 1]`` drawn
    per sample (or given, ``[N]``). The optimal critic has unit gradient norm on the lines between the two
    distributions, so the penalty is taken there; the caller weights it by lambda (10 in the paper). ``fake`` is
    detached; the result is differentiable with respect to the critic's parameters.
    """
    if eps is None:
        eps = torch.rand(len(real), device=real.device, dtype=real.dtype)
    eps = eps.view(-1, *[1] * (real.ndim - 1))
    xhat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(xhat).sum(), xhat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()
