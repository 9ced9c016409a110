"""Data-parallel GAN training: every network in its own DistributedDataParallel.

Lightning's ``ddp`` wraps the whole LightningModule in one ``DistributedDataParallel``. A GAN step
runs the networks in separate phases (the discriminator's loss never reaches the generator's
parameters, and the other way round), so one wrapper sees unused parameters and needs
``find_unused_parameters=True``: a slower reducer that also mis-synchronises the phases. NVlabs'
StyleGAN2-ADA, rosinality and StudioGAN instead wrap each network on its own; so does this strategy.
Each phase then runs exactly one backward through the DDP wrappers it used, and gradients are
all-reduced per network.

Use it with ``Trainer(strategy="gan_ddp", devices=N)``; ``ganzoo fit`` picks it whenever more than
one device is asked for. Multi-node runs start it as usual for Lightning (``torchrun`` or SLURM).
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from torch.nn.parallel import DistributedDataParallel


class GANDDPStrategy(DDPStrategy):
    """DDP that wraps each of ``gan.ddp_networks`` (``generator``, ``discriminator``, ...) separately.

    The LightningModule itself stays unwrapped: ``training_step`` calls ``self.net("generator")`` to get
    the DDP wrapper of a network. Buffers that training changes (batch-norm statistics, StyleGAN2's ``w_avg``)
    are broadcast from rank 0 after every batch, in one coalesced call, rather than before every forward, so all
    ranks hold identical networks at every checkpoint; constant ones (a variant's ``constant_buffers``: FIR
    filters, fixed noise maps) are never sent again.
    """

    strategy_name = "gan_ddp"

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("find_unused_parameters"):
            raise ValueError("gan_ddp wraps each network on its own: find_unused_parameters is never needed")
        kwargs.setdefault("broadcast_buffers", False)
        super().__init__(**kwargs)
        self._synced_buffers: list = []

    def configure_ddp(self) -> None:
        gan = self.lightning_module
        device_ids = self.determine_ddp_device_ids()
        gan._ddp = {
            name: DistributedDataParallel(getattr(gan, name), device_ids=device_ids, **self._ddp_kwargs)
            for name in gan.ddp_networks
        }
        constant = set(gan.constant_buffers)
        self._synced_buffers = [
            b
            for name in gan.ddp_networks
            for key, b in getattr(gan, name).named_buffers()
            if key.rsplit(".", 1)[-1] not in constant
        ]
        # DDP has broadcast rank 0's parameters into the wrapped networks; the EMA copies start from them too.
        for name in gan.ema_networks:
            ema = getattr(gan, f"{name}_ema")
            for t in (*ema.parameters(), *ema.buffers()):
                dist.broadcast(t.data, src=0)

    def broadcast_buffers(self) -> None:
        """Copy rank 0's changing buffers (e.g. batch-norm running statistics) of every wrapped network to all ranks,
        coalesced into as few collectives as their dtypes need."""
        if self._synced_buffers:
            dist._broadcast_coalesced(dist.group.WORLD, self._synced_buffers, 64 << 20, 0)

    def teardown(self) -> None:
        if self.lightning_module is not None:
            self.lightning_module._ddp = {}
        super().teardown()

    @classmethod
    def register_strategies(cls, strategy_registry: Any) -> None:
        strategy_registry.register(cls.strategy_name, cls, description="DDP with one wrapper per GAN network")


if GANDDPStrategy.strategy_name not in StrategyRegistry:
    GANDDPStrategy.register_strategies(StrategyRegistry)
