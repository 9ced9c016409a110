"""Blocks that several variants use identically; a variant's own blocks stay in its model file."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation layer named ``norm``.

    ``"batch"``: affine, with running statistics (DCGAN, pix2pix). ``"instance"``: no affine and no running
    statistics, as junyanz' CycleGAN/pix2pix. ``"layer"``: over channels and pixels with a per-channel scale and
    shift (``GroupNorm(1, C)``; WGAN-GP's replacement for batch norm in a critic). ``"none"``: identity.
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance', 'layer' or 'none', got {norm!r}")


class MinibatchStdLayer(nn.Module):
    """Appends the standard deviation of features over groups of ``group_size`` samples (Karras et al. 2018):
    samples ``i, i + N/G, i + 2N/G, ...`` form a group (``None``: the whole minibatch); the std is averaged over
    channels (in ``num_channels`` slices) and pixels, and broadcast as extra channels."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size else n
        if n % g:
            raise ValueError(f"minibatch std: batch {n} is not a multiple of the group size {g}")
        f = self.num_channels
        # In fp32 whatever the input: in fp16 the 1e-8 underflows, and sqrt'(0) makes R1's double backward infinite.
        y = x.float().reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # std over each group
        y = y.mean(dim=(2, 3, 4)).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)
