"""Adversarial losses as small pure functions on discriminator logits.

Notation: ``D(x)`` is the discriminator's logit, ``sigma`` the logistic sigmoid, and
``softplus(t) = log(1 + exp(t))``, so that ``-log sigma(t) = softplus(-t)``.
"""

from __future__ import annotations

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
