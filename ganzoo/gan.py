"""The base LightningModule of every GAN in the zoo.

What Lightning's defaults get wrong for GANs is handled once, here:

- manual optimisation (``automatic_optimization = False``): each variant writes its discriminator and
  generator phases explicitly and calls :meth:`GAN.update` once per optimizer;
- its own clock: ``trainer.global_step`` counts every optimizer step (two or more per batch), so the
  module counts batches and images seen itself and saves them with the checkpoint;
- an exponential moving average of the generator only (Karras et al. 2018, "Progressive Growing of
  GANs"), with NVlabs' half-life parametrisation: after ``ema_kimg`` thousand images an old weight has
  half its influence, i.e. ``beta = 0.5 ** (batch / (1000 * ema_kimg))`` per step;
- sampling that gives the same images for the same seed on every device.
"""

from __future__ import annotations

import copy
import math
import platform
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
import torchvision.utils
from PIL import Image
from torch import Tensor, nn


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message names the batch, the phase and the loss."""


class GAN(L.LightningModule):
    """Base class of every GAN: the training mechanics, whatever the generator takes. Subclasses build their networks
    (``ddp_networks``: ``generator`` and ``discriminator`` by default) in ``__init__``, then call :meth:`init_ema`,
    and implement ``training_step``, ``configure_optimizers`` and :meth:`preview`. :class:`LatentGAN` is the base of
    the GANs whose generator maps noise to images.

    Attributes:
        variant: registry name, set by :func:`ganzoo.registry.register_gan`.
        task: the variant's task, set by the same decorator.
        images_seen: real images the discriminator has seen, over all processes.
        batches_seen: training batches done.
    """

    variant: ClassVar[str] = ""
    task: ClassVar[str] = "generation"
    ddp_networks: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
    # Names of buffers that training never changes (FIR filters, fixed noise maps): not re-broadcast under DDP.
    constant_buffers: ClassVar[tuple[str, ...]] = ()
    # The format of the variant's official weights (a reader of ganzoo.convert), read for its ``upstream_weights``.
    upstream_format: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator_ema: nn.Module | None = None
        self.ema_networks: tuple[str, ...] = ()  # networks with an EMA copy, ``<name>_ema``
        self.ema_kimg: float | None = None
        self.images_seen = 0
        self.batches_seen = 0
        self.skipped_steps = 0
        # Wall time and hardware of the training so far, for the model card.
        self.train_seconds = 0.0
        self.hardware: list[str] = []
        self.training_config: str | None = None
        # The record of the model a fit started from (ganzoo.callbacks.InitFrom): its source, the networks copied and
        # its own training record, so the card counts the training behind the weights, not only this run's.
        self.started_from: dict[str, Any] | None = None
        # Networks exported as the mean of a run's checkpoints (ganzoo.hub.average_checkpoints): parts and kimg.
        self.averaged: dict[str, Any] | None = None
        # Networks (state-dict prefixes, e.g. "discriminator") that were built fresh, not loaded: an upstream release
        # without a discriminator. They are not saved as parts of a model folder, and fitting refuses to start
        # with an untrained discriminator unless asked (TrainingOptions(train_fresh_parts=True)).
        self.untrained_parts: set[str] = set()
        # Training options, set by ganzoo.callbacks.TrainingOptions: what to do with a non-finite loss
        # ("stop" or "skip") and the gradient-norm limit per network.
        self.on_nonfinite = "stop"
        self.check_finite_every: int | None = None
        self.grad_clip: dict[str, float] = {}
        self.train_fresh_parts = False
        self._ddp: dict[str, nn.Module] = {}
        # One GradScaler per optimizer under 16-mixed, keyed by the id of the optimizer itself (training_step holds
        # Lightning's wrappers, which are other objects).
        self._scalers: dict[int, torch.amp.GradScaler] = {}
        # Non-finite losses seen since the last check, per network, and the first batch they occurred in: kept on
        # the device so that a step never waits for the host (see update).
        self._nonfinite_counts: dict[str, Tensor] = {}
        self._nonfinite_first: Tensor | None = None
        self._sparse_logs: dict[str, tuple[Tensor, int]] = {}
        self._scaler_states: list[dict[str, Any]] = []
        self._network_names: dict[int, str] = {}
        self._latent_rng: torch.Generator | None = None
        self._rng_to_restore: list[dict[str, Any]] | None = None
        self._batch_started: float | None = None
        self._batch_ended = True

    # ----------------------------------------------------------------------------------------------
    # Subclass hooks

    @classmethod
    def upstream_weights(cls, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The hparams and state dict (``"<network>.<key>"``, only the networks the data holds) of official weights
        read as plain data by the reader of ``upstream_format``; :func:`ganzoo.hub.from_upstream` builds the model
        and loads the state strictly."""
        raise NotImplementedError(f"{cls.__name__} has no converter for upstream weights")

    @property
    def objective(self) -> str | None:
        """What the networks were trained to minimise, in words, where a recipe chooses it (a trained model's card
        states it); ``None`` where the variant has one objective, its paper's."""
        return None

    def data_schedule(self, images_seen: int) -> tuple[int | None, int | None] | None:
        """What the training data should serve once ``images_seen`` images (all processes) have been seen:
        ``(batch size per process, image side)``, ``None`` in either for the data module's own; or ``None`` for a
        model without a schedule (all but ProGAN, whose batch size and resolution follow its stage).
        :class:`ganzoo.data.ImageDataModule` serves it (see :class:`ganzoo.data.ScheduledBatchSampler`)."""
        return None

    def adapt_to_state(self, state: dict[str, Tensor]) -> None:
        """Reshape the model to fit ``state`` before it loads (a checkpoint's or a model folder's): a no-op unless
        the networks change size in training (ProGAN grows to the state's stage)."""

    def preview(self, n: int = 64, seed: int = 0) -> tuple[Tensor, int | None]:
        """What the model makes, as images ``[N, C, H, W]`` in [-1, 1] and the grid's images per row (``None``: a
        near-square grid), the same for the same ``seed``: the sample grid of ``save_pretrained``, the card and
        :class:`~ganzoo.callbacks.SampleGrid`. A generator of noise shows ``n`` samples."""
        raise NotImplementedError

    def quality_sets(
        self, datamodule: Any, n: int, seed: int = 0, rank: int = 0, world: int = 1, batch_size: int = 50
    ) -> tuple[Tensor, Iterator[Tensor]]:
        """What :class:`~ganzoo.callbacks.SampleQuality` compares: up to ``n`` real uint8 images ``[M, C, H, W]``
        from ``datamodule`` (the same for the same ``seed``), and this process's share (``rank`` of ``world``) of as
        many of the model's images as uint8 batches, drawn lazily (the caller forks the RNG around them)."""
        raise NotImplementedError

    def check_data(self) -> None:
        """Check the training data against the model at fit start (a conditional model's classes); a no-op here."""

    @property
    def num_classes(self) -> int:
        """Classes of a class-conditional model; 0 for an unconditional one."""
        return int(self.hparams.get("num_classes") or 0)

    @property
    def class_names(self) -> list[str]:
        """The classes' names (``hparams.class_names``, filled in from the data at fit time), else their ids."""
        return list(self.hparams.get("class_names") or [str(i) for i in range(self.num_classes)])

    # ----------------------------------------------------------------------------------------------
    # Training helpers

    def init_ema(
        self, ema_kimg: float | None, ema_rampup: float | None = None, networks: Sequence[str] = ("generator",)
    ) -> None:
        """Create ``<name>_ema``, a frozen copy, for each of ``networks`` (``generator_ema``; a two-way translator
        averages both generators); ``None`` or 0 turns the EMA off.

        ``ema_rampup`` (NVIDIA's StyleGAN2-ADA option, 0.05 in its ``auto`` and ``cifar`` configurations) shortens the
        half-life early in training to ``min(ema_kimg, ema_rampup * kimg seen)``, so the average does not hold on to
        the random initialisation for the first ``ema_kimg`` thousand images.
        """
        self.ema_kimg = ema_kimg or None
        self.ema_rampup = ema_rampup or None
        self.ema_networks = tuple(networks) if self.ema_kimg is not None else ()
        for name in networks:
            ema = copy.deepcopy(getattr(self, name)).requires_grad_(False) if self.ema_kimg is not None else None
            setattr(self, f"{name}_ema", ema)

    @torch.no_grad()
    def update_ema(self, batch_size: int) -> None:
        """One EMA step of each of ``ema_networks`` after a generator step on ``batch_size`` images (all processes
        together): ``ema = lerp(ema, net, 1 - beta)`` with ``beta = 0.5 ** (batch_size / half_life)``, the
        half-life ``1000 * ema_kimg`` images, or ``min(that, ema_rampup * images_seen)`` with a ramp-up.

        Buffers are copied, not averaged, as NVIDIA does: for a generator with batch norm the EMA generator then
        normalises with the running statistics of the live generator's activations, not of its own. With a long
        half-life and a slowly moving generator the two are close; :meth:`recompute_ema_batchnorm` measures the EMA
        generator's own statistics when they matter.
        """
        if not self.ema_networks:
            return
        half_life = 1000.0 * self.ema_kimg
        if self.ema_rampup is not None:
            half_life = min(half_life, max(self.images_seen - batch_size, 0) * self.ema_rampup)  # images before
        beta = 0.5 ** (batch_size / max(half_life, 1e-8))
        for name in self.ema_networks:
            ema, net = getattr(self, f"{name}_ema"), getattr(self, name)
            for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                p_ema.lerp_(p.detach(), 1.0 - beta)
            for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
                b_ema.copy_(b)

    def net(self, name: str) -> nn.Module:
        """The network ``name`` as ``training_step`` must call it: its own DDP wrapper under ``gan_ddp``."""
        return self._ddp[name] if name in self._ddp else getattr(self, name)

    def update(self, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
        """One optimizer step on ``loss``: zero the gradients, backpropagate, clip, step.

        A non-finite loss (on any process) stops the run after saving a checkpoint, or, with
        ``on_nonfinite="skip"``, skips this step and counts it. On the CPU the loss is checked at once (reading it
        costs nothing there); on an accelerator reading it would make the host wait for the device on every step,
        so the check runs every ``check_finite_every`` batches (``TrainingOptions``) on counts kept on the
        device, and a non-finite step's gradients are zeroed in the meantime. Under 16-bit mixed precision each
        optimizer has its own gradient scaler, so an overflow in one network never rescales the other.
        """
        name = self._network_of(optimizer)
        deferred = self._check_every() > 1
        if deferred:
            self._count_nonfinite(name, loss)
        elif not self._all_finite(loss):
            self._nonfinite(name, loss)
            return
        optimizer.zero_grad(set_to_none=True)
        scaler = self._scalers.get(id(getattr(optimizer, "optimizer", optimizer)))
        self.manual_backward(scaler.scale(loss) if scaler is not None else loss)
        if scaler is not None:
            scaler.unscale_(optimizer)
        if deferred:
            # The loss is read only every few batches: a non-finite one reaches no weight, its gradients are zeroed
            # (NVIDIA's nan_to_num), and the next check reports it.
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        torch.nan_to_num_(p.grad, nan=0.0, posinf=0.0, neginf=0.0)
        if name in self.grad_clip:  # the optimizer's own parameters (one optimizer may hold several networks)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip[name])
            self.log(f"grad_norm/{name}", norm, on_step=True, on_epoch=False)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()

    def log_sparse(self, metrics: dict[str, Tensor]) -> None:
        """Log values that not every batch computes (WGAN's generator loss, every ``n_critic`` batches): kept on the
        device, and written at Lightning's logging cadence (every ``log_every_n_steps`` batches) as the mean over
        the batches of that window that produced them, on the axis ``self.log`` uses. ``self.log`` would repeat the
        last value on the batches between; writing each value at once would read it back every time. Every
        process must call it at the same batches."""
        for k, v in metrics.items():
            total, count = self._sparse_logs.get(k, (0.0, 0))
            self._sparse_logs[k] = (v.detach().float().mean() + total, count + 1)

    def _flush_sparse_logs(self) -> None:
        if self._sparse_logs and self.trainer._logger_connector.should_update_logs:
            self.log_now({k: total / count for k, (total, count) in self._sparse_logs.items()})
            self._sparse_logs = {}

    def log_now(self, metrics: dict[str, Tensor | float]) -> None:
        """Write ``metrics`` (averaged over processes) to the loggers for this batch only, on the axis ``self.log``
        uses (one step per batch). For values not computed on every batch, such as WGAN's generator loss or a FID
        every few kimg: ``self.log`` would repeat the last value on the batches between, or drop one that falls
        between ``log_every_n_steps``. It reads the values back to the host: for rare values such as a FID, not
        per-batch losses (see :meth:`log_sparse`). Every process must call it."""
        values = {
            k: v.detach().float().mean() if isinstance(v, Tensor) else torch.tensor(v, dtype=torch.float64)
            for k, v in metrics.items()
        }
        if self.trainer.world_size > 1:
            values = {k: self.trainer.strategy.reduce(v.to(self.device), reduce_op="mean") for k, v in values.items()}
        step = self.trainer.fit_loop.epoch_loop._batches_that_stepped  # what Lightning's own logging uses
        for logger in self.trainer.loggers:
            logger.log_metrics({k: float(v) for k, v in values.items()}, step=step)

    def _network_of(self, optimizer: torch.optim.Optimizer) -> str:
        """The network whose parameters ``optimizer`` updates (by its first parameter), looked up once."""
        key = id(optimizer)
        if key not in self._network_names:
            first = optimizer.param_groups[0]["params"][0]
            names = [n for n in self.ddp_networks if any(p is first for p in getattr(self, n).parameters())]
            self._network_names[key] = names[0] if names else "optimizer"
        return self._network_names[key]

    def _check_every(self) -> int:
        """Batches between reads of the non-finite counts: ``check_finite_every``, else 1 on the CPU (free there)
        and 50 on an accelerator."""
        if self.check_finite_every:
            return self.check_finite_every
        return 1 if self.device.type == "cpu" else 50

    def _all_finite(self, loss: Tensor) -> bool:
        finite = torch.isfinite(loss.detach()).all().float()
        if self.trainer.world_size > 1:
            finite = self.trainer.strategy.reduce(finite, reduce_op="min")
        return bool(finite)

    def _count_nonfinite(self, name: str, loss: Tensor) -> None:
        bad = ~torch.isfinite(loss.detach()).all()
        if name not in self._nonfinite_counts:
            self._nonfinite_counts[name] = torch.zeros((), dtype=torch.long, device=loss.device)
        self._nonfinite_counts[name] += bad
        if self._nonfinite_first is None:
            self._nonfinite_first = torch.full((), -1, dtype=torch.long, device=loss.device)
        first = self._nonfinite_first
        self._nonfinite_first = torch.where(bad & (first < 0), self.batches_seen, first)

    def check_nonfinite(self) -> None:
        """Read the non-finite counts kept on the device since the last check (all processes together) and act on
        them: stop with a checkpoint, or count the skipped steps. Every process must call it at the same batch."""
        if not self._nonfinite_counts:
            return
        names = sorted(self._nonfinite_counts)
        counts = torch.stack([self._nonfinite_counts[n] for n in names] + [self._nonfinite_first])
        self._nonfinite_counts, self._nonfinite_first = {}, None
        if self.trainer.world_size > 1:
            first = self.trainer.strategy.reduce(torch.where(counts[-1] < 0, 1 << 62, counts[-1]), reduce_op="min")
            counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
            counts[-1] = first
        counts = counts.tolist()
        bad = {n: c for n, c in zip(names, counts, strict=False) if c}
        if not bad:
            return
        phases = ", ".join(f"{n} phase ({c} step{'s' * (c > 1)})" for n, c in bad.items())
        first = int(counts[-1])
        if self.on_nonfinite == "skip":
            self.skipped_steps += sum(bad.values())
            self.log("progress/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
            return
        self._stop_nonfinite(
            f"non-finite loss from batch {first} on, {phases}, found by the check at batch {self.batches_seen} "
            f"({self.images_seen / 1000:.1f} kimg); the gradients of those steps were zeroed",
            "the state now",
        )

    def _nonfinite(self, name: str, loss: Tensor) -> None:
        where = f"batch {self.batches_seen} ({self.images_seen / 1000:.1f} kimg), {name} phase, loss {loss.item()}"
        if self.on_nonfinite == "skip":
            self.skipped_steps += 1
            self.log("progress/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
            return
        self._stop_nonfinite(f"non-finite loss at {where}", "the state before this step")

    def _stop_nonfinite(self, what: str, state: str) -> None:
        path = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "checkpoints" / "nonfinite.ckpt"
        self.trainer.save_checkpoint(path)
        raise NonFiniteLossError(
            f"{what}. Saved {state} to {path}. Lower the learning rate, clip gradients "
            f"(TrainingOptions(grad_clip=...)), or skip such steps (TrainingOptions(on_nonfinite='skip'))."
        )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._rng_to_restore is not None:
            # Restored here, not at load time: data loading draws from the RNGs between the two.
            states = self._rng_to_restore
            _set_rng_states(states[min(self.trainer.global_rank, len(states) - 1)])
            self._rng_to_restore = None
        self._batch_started = time.perf_counter()
        self._batch_ended = False

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.end_batch(batch)

    def end_batch(self, batch: Any) -> None:
        """The bookkeeping after a batch's optimizer steps: counters, buffer sync, EMA, schedules. Runs once per
        batch, from whichever comes first: this module's ``on_train_batch_end`` or a ganzoo callback that
        needs the clock (Lightning calls callbacks' ``on_train_batch_end`` before the module's)."""
        if self._batch_ended:
            return
        self._batch_ended = True
        images = self.batch_size(batch) * self.trainer.world_size
        generator_steps = self.generator_steps
        self.images_seen += images
        self.batches_seen += 1
        if hasattr(self.trainer.strategy, "broadcast_buffers"):
            self.trainer.strategy.broadcast_buffers()
        # The EMA follows the generator: one step per generator update (WGAN's come every n_critic batches), its
        # half-life counted in the images of those updates.
        if self.generator_steps > generator_steps:
            self.update_ema(images)
        if self._check_every() > 1 and self.batches_seen % self._check_every() == 0:
            self.check_nonfinite()
        self._flush_sparse_logs()
        # Learning-rate schedules step once per batch (Lightning steps none under manual optimisation).
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()
        if self._batch_started is not None:
            self.train_seconds += time.perf_counter() - self._batch_started
        self.log("progress/kimg", self.images_seen / 1000.0, prog_bar=True, on_step=True, on_epoch=False)
        if self.trainer._logger_connector.should_update_logs:
            optimizers = self.optimizers()
            for optimizer in optimizers if isinstance(optimizers, list) else [optimizers]:
                name = self._network_of(getattr(optimizer, "optimizer", optimizer))
                lr = optimizer.param_groups[0]["lr"]
                self.log(f"lr/{name}", float(lr), on_step=True, on_epoch=False)

    def batch_size(self, batch: Any) -> int:
        """Real images in this process's share of ``batch`` (``(images, labels)`` for every variant so far)."""
        return len(batch[0])

    def on_train_end(self) -> None:
        if self._check_every() > 1:
            self.check_nonfinite()

    def on_fit_start(self) -> None:
        from lightning.pytorch.strategies import DDPStrategy

        from ganzoo.strategy import GANDDPStrategy

        strategy = self.trainer.strategy
        if isinstance(strategy, DDPStrategy) and not isinstance(strategy, GANDDPStrategy):
            raise RuntimeError(
                f"{type(strategy).__name__} wraps G and D in one DistributedDataParallel, which breaks GAN steps; "
                "train with Trainer(strategy='gan_ddp') (ganzoo fit picks it for you)"
            )
        if str(self.trainer.precision) == "16-mixed":
            # One scaler per optimizer instead of Lightning's single shared one.
            plugin = self.trainer.precision_plugin
            if getattr(plugin, "scaler", None) is not None:
                plugin.scaler = None
            self._scalers = {}
            for i, opt in enumerate(self.trainer.optimizers):
                scaler = torch.amp.GradScaler(self.device.type)
                if i < len(self._scaler_states):
                    scaler.load_state_dict(self._scaler_states[i])
                self._scalers[id(opt)] = scaler
            self._scaler_states = []
        fresh = sorted(p for p in self.untrained_parts if p in self.ddp_networks)
        if fresh and not self.train_fresh_parts:
            raise RuntimeError(
                f"this {type(self).__name__}'s {' and '.join(fresh)} {'was' if len(fresh) == 1 else 'were'} never "
                "trained (its upstream release has none): "
                "fine-tuning against a random network starts from a broken game. Train it anyway with "
                "TrainingOptions(train_fresh_parts=True) (--trainer.callbacks+=ganzoo.callbacks.TrainingOptions "
                "--trainer.callbacks.train_fresh_parts=true), or load weights that include every network."
            )
        self.untrained_parts = set()  # trained from here on
        self.check_data()
        self._seed_per_rank()
        device = self.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
        desc = f"{self.trainer.world_size} x {name}"
        if not self.hardware or self.hardware[-1] != desc:
            self.hardware.append(desc)

    def _seed_per_rank(self) -> None:
        """The latent stream is shared by all processes (each keeps its slice, see :meth:`training_latents`); every
        other random draw (noise inputs, augmentation, penalty interpolates, dropout) comes from the global RNGs,
        which ``seed_everything`` seeded alike on every process. Offset those by rank, so N processes draw N
        different sets; rank 0 keeps the run's seed, so a 1-process run is unchanged. A resumed run restores every
        rank's own states at its first batch instead."""
        import random

        import numpy as np

        seed = torch.initial_seed()
        if self.trainer.world_size > 1:  # without seed_everything each process has its own: take rank 0's
            seed = self.trainer.strategy.broadcast(seed, src=0)
        if self._latent_rng is None:
            self._latent_rng = torch.Generator().manual_seed(seed + 1)
        rank = self.trainer.global_rank
        if rank == 0 or self._rng_to_restore is not None:
            return
        seed = (seed + 1_000_003 * rank) % 2**63
        torch.manual_seed(seed)  # CUDA generators too
        np.random.seed(seed % 2**32)
        random.seed(seed)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = {"variant": self.variant, **self.training_state()}
        if self.trainer is not None and self.trainer.training:
            # Every process's RNG states (a collective: all ranks take part in saving), the latent stream
            # and the gradient scalers, so a resumed run continues exactly.
            states = [_collect_rng_states()]
            if self.trainer.world_size > 1:
                states = [None] * self.trainer.world_size
                torch.distributed.all_gather_object(states, _collect_rng_states())
            state["rng"] = states
            if self._latent_rng is not None:
                state["latent_rng"] = self._latent_rng.get_state()
            state["scalers"] = [s.state_dict() for s in self._scalers.values()] if self._scalers else []
        checkpoint["ganzoo"] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.adapt_to_state(checkpoint.get("state_dict", {}))
        state = checkpoint.get("ganzoo", {})
        self.load_training_state(state)
        self._rng_to_restore = state.get("rng")
        if "latent_rng" in state:
            self._latent_rng = torch.Generator()
            self._latent_rng.set_state(state["latent_rng"])
        self._scaler_states = state.get("scalers", [])  # turned into GradScalers in on_fit_start

    @property
    def generator_steps(self) -> int:
        """Generator updates done: one per batch unless a variant says otherwise (WGAN's ``n_critic``)."""
        return self.batches_seen

    def training_state(self) -> dict[str, Any]:
        """The module's clock and training record, saved with checkpoints and written to model cards."""
        return {
            "images_seen": self.images_seen,
            "batches_seen": self.batches_seen,
            "skipped_steps": self.skipped_steps,
            "train_seconds": self.train_seconds,
            "hardware": list(self.hardware),
            "training_config": self.training_config,
            **({"started_from": self.started_from} if self.started_from else {}),
            **({"averaged": self.averaged} if self.averaged else {}),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.images_seen = int(state.get("images_seen", 0))
        self.batches_seen = int(state.get("batches_seen", 0))
        self.skipped_steps = int(state.get("skipped_steps", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.hardware = list(state.get("hardware", []))
        self.started_from = state.get("started_from")
        self.averaged = state.get("averaged")
        # A resumed run keeps the recipe it runs (set by ganzoo fit): the checkpoint's is the earlier run's.
        self.training_config = self.training_config or state.get("training_config")


class LatentGAN(GAN):
    """A GAN whose generator maps noise (and, for a conditional model, a class) to images: DCGAN, cGAN, WGAN,
    StyleGAN2. Adds the latent inputs, class labels and sampling to :class:`GAN`; subclasses implement
    :meth:`latents` (and :meth:`generate` when their generator is not called as ``G(z)`` or ``G(z, c)``)."""

    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` generator inputs, drawn on the CPU from ``generator`` (so a seed means the same on every device)."""
        raise NotImplementedError

    def generate(self, net: nn.Module, z: Tensor, **kwargs: Any) -> Tensor:
        """Run generator ``net`` on inputs from :meth:`latents`; images ``[N, C, H, W]`` in [-1, 1]. A conditional
        generator is called as ``net(z, c)`` (see :meth:`with_labels`). Variants with sampling options (StyleGAN2's
        truncation) take them as ``kwargs``."""
        if kwargs:
            raise TypeError(f"{type(self).__name__} has no sampling options; got {sorted(kwargs)}")
        if self.num_classes:
            return net(z[:, : -self.num_classes], z[:, -self.num_classes :])
        return net(z)

    # ----------------------------------------------------------------------------------------------
    # Class conditioning. A conditional variant has ``hparams.num_classes > 0``; its networks take the class as
    # NVIDIA's do, a one-hot ``c [N, num_classes]`` (``G(z, c)``, ``D(images, c)``), and its latents carry ``c``
    # as their last ``num_classes`` columns.

    def one_hot(self, labels: Tensor | Sequence[int | str] | int, n: int) -> Tensor:
        """``labels`` as the ``c`` the networks take: one-hot ``[n, num_classes]`` on the module's device.

        ``labels`` are ``n`` class ids (a list or a 1-D integer tensor), ``n`` class names, or one id (an int) or
        one name for all ``n``.
        Anything else (out of range, a float or one-hot tensor, the wrong length) is refused with a ValueError
        that says what was expected.
        """
        k, name = self.num_classes, type(self).__name__
        if not k:
            raise ValueError(f"this {name} is unconditional: it takes no labels (leave labels out)")
        expected = f"{n} class ids in [0, {k}) (a list or a 1-D integer tensor), class names, or one id for all"
        if isinstance(labels, str) or (isinstance(labels, Sequence) and labels and isinstance(labels[0], str)):
            names = self.class_names
            names_given = [labels] if isinstance(labels, str) else list(labels)
            unknown = sorted({x for x in names_given if x not in names})
            if unknown:
                raise ValueError(f"unknown class names {unknown}: this {name}'s classes are {names}")
            ids = [names.index(x) for x in names_given]
            labels = ids[0] if isinstance(labels, str) else ids
        labels = torch.as_tensor(labels)
        if labels.ndim > 1 and labels.shape[0] == n and labels.shape[-1] == k:
            raise ValueError(f"labels of shape {list(labels.shape)} look one-hot; give class ids ({expected}), "
                             "e.g. labels.argmax(1)")  # fmt: skip
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer class ids, got a {labels.dtype} tensor; expected {expected}")
        if labels.ndim == 0:
            labels = labels.expand(n)
        if labels.ndim != 1 or len(labels) != n:
            raise ValueError(f"labels of shape {list(labels.shape)} for {n} images; expected {expected}")
        if labels.min() < 0 or labels.max() >= k:
            bad = sorted({int(x) for x in labels if not 0 <= x < k})
            raise ValueError(f"class ids {bad} out of range: this {name} has {k} classes, ids 0 to {k - 1}")
        return torch.nn.functional.one_hot(labels.long().to(self.device), k).float()

    def batch_labels(self, labels: Tensor) -> Tensor:
        """A training batch's class ids ``[N]`` as one-hot ``c [N, num_classes]``, without :meth:`one_hot`'s checks:
        those read the ids back to the host, which would stall a GPU on every step. The data modules check their
        labels once, and :meth:`_check_classes` checks the class count at fit time."""
        return torch.nn.functional.one_hot(labels.long(), self.num_classes).to(self.dtype)

    def with_labels(self, z: Tensor, labels: Tensor | Sequence[int | str] | int) -> Tensor:
        """Latents ``z`` (with or without class columns) with their class set to ``labels`` (see :meth:`one_hot`)."""
        c = self.one_hot(labels, len(z)).to(z.device)
        dim = z.shape[1] - self.num_classes if z.shape[1] > self.hparams.latent_dim else z.shape[1]
        return torch.cat([z[:, :dim], c], dim=1)

    @torch.no_grad()
    def recompute_ema_batchnorm(self, num_images: int = 4096, batch_size: int = 256, seed: int = 0) -> None:
        """Replace the batch-norm running statistics of ``generator_ema`` by those of its own activations: the
        averages of the batch means and variances over ``num_images`` generated images (fixed ``seed``), as SWA's
        ``update_bn`` does for averaged weights. A no-op for generators without batch norm."""
        net = self.generator_ema
        norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if net else []
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over all batches
        was_training = net.training
        net.train()
        try:
            z = self.sample_latents(num_images, seed)
            for zb in z.split(batch_size):
                self.generate(net, zb.to(self.device))
        finally:
            net.train(was_training)
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum

    def training_latents(self, n: int) -> Tensor:
        """``n`` generator inputs for this process's share of a training batch, on the module's device.

        Every process draws the whole batch's latents (``n * world_size``) from one generator with the same
        seed and keeps its own slice: a 2-process run with batch ``b`` sees exactly the latents of a
        1-process run with batch ``2b``, and resuming restores the stream exactly.
        """
        world, rank = self.trainer.world_size, self.trainer.global_rank
        z = self.latents(n * world, generator=self._latent_rng)  # seeded at fit start (see _seed_per_rank)
        return z[rank * n : (rank + 1) * n].to(self.device, non_blocking=True)

    def check_data(self) -> None:
        """A conditional model takes its class names from the training data, which must have as many classes."""
        datamodule = self.trainer.datamodule
        classes = tuple(getattr(datamodule, "classes", None) or ()) if self.num_classes else ()
        if not classes:
            if self.num_classes and hasattr(datamodule, "classes"):
                raise ValueError(
                    f"this {type(self).__name__} is class-conditional (num_classes={self.num_classes}) but the data "
                    f"has no classes: train it on labelled data (e.g. ImageFolder with labels=True)"
                )
            return
        if len(classes) != self.num_classes:
            raise ValueError(
                f"the model has num_classes={self.num_classes} but the data has {len(classes)} classes "
                f"({', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''}): set num_classes={len(classes)}"
            )
        if not self.hparams.get("class_names"):
            self.hparams.class_names = list(classes)

    # ----------------------------------------------------------------------------------------------
    # Inference

    def preview(self, n: int = 64, seed: int = 0) -> tuple[Tensor, int | None]:
        """``n`` samples of ``seed``; a conditional model's classes cycle along each row, one column per class."""
        return self.sample(n, seed=seed), self.num_classes or None

    def quality_sets(
        self, datamodule: Any, n: int, seed: int = 0, rank: int = 0, world: int = 1, batch_size: int = 50
    ) -> tuple[Tensor, Iterator[Tensor]]:
        """``n`` training images drawn with ``seed``, and ``sample(n, seed)``'s images ``rank::world``."""
        if n % world:
            raise ValueError(f"{n} images do not split evenly over {world} processes: use a multiple of {world}")
        images = datamodule.dataset("train").images
        real = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]]
        z = self.sample_latents(n, seed)[rank::world]
        return real, (to_uint8(x) for x in self.generate_batches(z, batch_size=batch_size))

    @property
    def sampling_generator(self) -> nn.Module:
        """The EMA generator when there is one, else the trained generator."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @torch.no_grad()
    def sample(
        self,
        n: int,
        seed: int | None = None,
        *,
        labels: Tensor | Sequence[int | str] | int | None = None,
        batch_size: int = 256,
        progress: bool = False,
        **kwargs: Any,
    ) -> Tensor:
        """``n`` generated images ``[n, C, H, W]``, float in [-1, 1], on the module's device.

        The same ``seed`` gives the same images (latents are drawn on the CPU); ``seed=None`` draws from
        torch's global generator. The generator runs in eval mode and is put back as it was. ``labels`` (class ids
        or names, see :meth:`one_hot`) choose the classes of a conditional model, which otherwise cycles through
        its classes ``0, 1, 2, ...``. ``kwargs`` go to :meth:`generate`.
        """
        batches = self.iter_samples(n, seed, labels=labels, batch_size=batch_size, progress=progress, **kwargs)
        return torch.cat(list(batches))

    def iter_samples(
        self,
        n: int,
        seed: int | None = None,
        *,
        labels: Tensor | Sequence[int | str] | int | None = None,
        batch_size: int = 256,
        progress: bool = False,
        **kwargs: Any,
    ) -> Iterator[Tensor]:
        """:meth:`sample` in batches of ``batch_size``, so that ``n`` may exceed memory (evaluation at 50k).

        The latents are drawn up front, so the images equal ``sample(n, seed)``'s whatever the batch size.
        """
        z = self.sample_latents(n, seed)
        if labels is not None:
            z = self.with_labels(z, labels)
        return self.generate_batches(z, batch_size=batch_size, progress=progress, **kwargs)

    def sample_latents(self, n: int, seed: int | None = None) -> Tensor:
        """The latents :meth:`sample` uses for ``seed``: :meth:`latents` from a CPU generator seeded with it, with
        the classes of a conditional model cycling ``0, 1, 2, ...`` (so that ``n`` samples spread evenly)."""
        z = self.latents(n, generator=torch.Generator().manual_seed(seed) if seed is not None else None)
        return self.with_labels(z, torch.arange(n) % self.num_classes) if self.num_classes else z

    @torch.no_grad()
    def interpolate(
        self,
        seeds: Sequence[int],
        frames: int = 30,
        *,
        labels: int | str | None = None,
        batch_size: int = 64,
        **kwargs: Any,
    ) -> Tensor:
        """A latent walk that loops: images ``[len(seeds) * frames + 1, C, H, W]`` in [-1, 1] passing through each
        seed's sample (``sample(1, seed=s, labels=labels)``) in turn, ``frames`` steps from one to the next, and
        back to the first, so that the first and the last frame are the same image.

        Between two seeds the walk follows :meth:`walk_codes`' codes: for noise inputs the great circle between
        the two ``z`` (spherical interpolation, ``slerp(a, b; t) = sin((1 - t) w) / sin(w) a + sin(t w) / sin(w) b``
        with ``cos w = <a, b> / (|a| |b|)``, which keeps the norm a Gaussian ``z`` concentrates at, where a straight
        line would pass through the atypical region near the origin; White 2016, arXiv 1609.04468); StyleGAN2
        walks straight lines in W. A conditional model walks within one class, ``labels`` (default 0). ``kwargs``
        are sampling options (StyleGAN2's ``truncation_psi``)."""
        if len(seeds) < 2 or frames < 1:
            raise ValueError(f"a walk needs at least two seeds and one frame per step, got {len(seeds)} seeds and "
                             f"{frames} frames")  # fmt: skip
        z = torch.cat([self.sample_latents(1, int(s)) for s in seeds])
        if self.num_classes:
            z = self.with_labels(z, 0 if labels is None else labels)
        elif labels is not None:
            raise ValueError(f"this {type(self).__name__} is unconditional: it takes no labels (leave labels out)")
        codes = self.walk_codes(z, **kwargs)
        t = torch.arange(frames, dtype=torch.float64) / frames
        n = len(codes)
        path = torch.cat([self.walk_step(codes[i], codes[(i + 1) % n], t) for i in range(n)])
        images = torch.cat([self.render_walk(c, **kwargs) for c in path.split(batch_size)])
        return torch.cat([images, images[:1]])  # the first image again, bit for bit, closes the loop

    def walk_codes(self, z: Tensor, **kwargs: Any) -> Tensor:
        """The codes a walk interpolates between for latents ``z``: ``z`` itself (StyleGAN2: ``w``)."""
        return z

    def walk_step(self, a: Tensor, b: Tensor, t: Tensor) -> Tensor:
        """Codes at fractions ``t [T]`` of the way from ``a`` to ``b``: slerp of the noise, the class kept."""
        k = self.num_classes
        noise_a, noise_b = (v[: len(v) - k].double() for v in (a, b))
        cos = torch.dot(noise_a, noise_b) / (noise_a.norm() * noise_b.norm())
        omega = torch.arccos(cos.clamp(-1.0, 1.0))
        if omega.abs() < 1e-6:  # the same direction: the straight line is the arc
            noise = torch.lerp(noise_a, noise_b, t[:, None])
        else:
            noise = torch.sin((1 - t) * omega)[:, None] * noise_a + torch.sin(t * omega)[:, None] * noise_b
            noise = noise / torch.sin(omega)
        return torch.cat([noise.to(a.dtype), a[len(a) - k :].expand(len(t), k)], dim=1)

    def render_walk(self, codes: Tensor, **kwargs: Any) -> Tensor:
        """Images of the sampling generator for codes of :meth:`walk_step`."""
        return torch.cat(list(self.generate_batches(codes, batch_size=len(codes), **kwargs))).cpu()

    @torch.no_grad()
    def generate_batches(
        self, z: Tensor, *, batch_size: int = 256, progress: bool = False, **kwargs: Any
    ) -> Iterator[Tensor]:
        """Images of the sampling generator for latents ``z``, ``batch_size`` at a time, clamped to [-1, 1]; the
        generator runs in eval mode and is put back as it was."""
        net = self.sampling_generator
        was_training = net.training
        net.eval()
        try:
            for zb in _progress(z.split(batch_size), progress, desc="sampling", unit="batch"):
                yield self.generate(net, zb.to(self.device), **kwargs).float().clamp_(-1.0, 1.0)
        finally:
            net.train(was_training)


class ImageToImageGAN(GAN):
    """A GAN whose generator maps an image to an image: translation (Pix2Pix, CycleGAN) and super-resolution.

    Subclasses name their generators per direction in ``directions`` (``{"a2b": "generator"}``; a two-way
    translator adds ``"b2a"``) and the side multiple their generators need (:attr:`size_multiple`: ``2 ** d`` for a
    U-Net of ``d`` downsamplings). :meth:`translate` runs the EMA copy when there is one. Training batches are
    ``(A, B)`` pairs of images in [-1, 1] (two independent draws for unpaired data).
    """

    directions: ClassVar[dict[str, str]] = {"a2b": "generator"}

    def __init__(self) -> None:
        super().__init__()
        # What preview() translates, kept in checkpoints: the first 8 validation inputs (centre crops of the training
        # size), else the first 8 training inputs (this process's); for super-resolution also their targets (HR),
        # which the preview shows beside the output.
        self.preview_inputs: Tensor | None = None
        self.preview_targets: Tensor | None = None

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this for the generators (1: any size)."""
        return 1

    def channels(self, direction: str) -> int:
        """Channels of the images that ``direction`` takes."""
        return int(self.hparams.get("input_channels", 3))

    @property
    def output_scale(self) -> int:
        """Output side over input side (super-resolution: the upscaling factor)."""
        return 1

    def direction_network(self, direction: str) -> nn.Module:
        """The network that translates ``direction`` (its EMA copy when there is one)."""
        if direction not in self.directions:
            raise ValueError(f"direction {direction!r}: this {type(self).__name__} translates "
                             f"{', '.join(self.directions)}")  # fmt: skip
        name = self.directions[direction]
        net = getattr(self, f"{name}_ema", None)
        net = getattr(self, name, None) if net is None else net
        if net is None or name in self.untrained_parts:
            other = ", ".join(d for d in self.directions if d != direction)
            raise ValueError(f"this {type(self).__name__} has no trained {direction} generator (its weights hold "
                             f"only {other}): translate with direction={other!r}")  # fmt: skip
        return net

    @torch.no_grad()
    def translate(
        self,
        images: Tensor | Image.Image | Sequence[Image.Image],
        direction: str = "a2b",
        *,
        batch_size: int = 16,
        pad: bool = True,
        tile: int | None = None,
        tile_overlap: int = 32,
        train_mode: bool = False,
        progress: bool = False,
    ) -> Tensor | Image.Image | list[Image.Image]:
        """Translate ``images`` in ``direction``, returning the same kind: ``[N, C, H, W]`` float in [-1, 1] or uint8
        in [0, 255], one PIL image or a list of them (of any sizes).

        Sides that the generator cannot take (a U-Net of ``d`` downsamplings needs multiples of ``2 ** d``) are
        reflect-padded and the output cropped back; with ``pad=False`` they are an error naming the nearest valid
        sizes. ``tile`` bounds the memory of large images: see :meth:`run`. The network runs in eval mode (batch
        norm on its running statistics, no dropout: deterministic); ``train_mode=True`` runs it as junyanz'
        ``test.py`` does without ``--eval`` (batch statistics, dropout on).
        """
        options = dict(pad=pad, tile=tile, tile_overlap=tile_overlap, train_mode=train_mode)
        if isinstance(images, Image.Image):
            return self.translate([images], direction, **options)[0]
        if not isinstance(images, Tensor):  # PIL images, one at a time (their sizes may differ)
            outs = []
            for im in _progress(list(images), progress, desc="translating", unit="image"):
                x = _from_pil(im, self.channels(direction))
                outs.append(to_pil(self.translate(x, direction, **options))[0])
            return outs
        if images.ndim != 4:
            raise ValueError(f"expected images [N, C, H, W], got shape {list(images.shape)}")
        uint8 = images.dtype == torch.uint8
        x = images.float() / 127.5 - 1.0 if uint8 else images.float()
        expected = self.channels(direction)
        if x.shape[1] != expected:
            raise ValueError(f"{x.shape[1]}-channel images: this {type(self).__name__} takes {expected} channels")
        net = self.direction_network(direction)
        was_training = net.training
        net.train(train_mode)
        try:
            batches = _progress(x.split(batch_size), progress, desc="translating", unit="batch")
            y = torch.cat([self.run(net, xb, pad=pad, tile=tile, tile_overlap=tile_overlap) for xb in batches])
        finally:
            net.train(was_training)
        return to_uint8(y) if uint8 else y

    @torch.no_grad()
    def upscale(
        self,
        images: Tensor | Image.Image | Sequence[Image.Image],
        *,
        tile: int | str | None = "auto",
        overlap: int = 16,
        batch_size: int = 4,
        dtype: torch.dtype | None = None,
        progress: bool = False,
    ) -> Tensor | Image.Image | list[Image.Image]:
        """Super-resolve ``images`` by :attr:`output_scale`, returning the same kind: ``[N, C, H, W]`` float in
        [-1, 1] or uint8, one PIL image or a list of them (of any sizes and aspects).

        Large images run in overlapping tiles blended without seams (see :meth:`run`), so peak memory follows the
        tile, not the image: ``tile="auto"`` runs images of up to 512x512 input pixels whole and larger ones in
        256-pixel tiles; ``tile=None`` always whole. ``dtype=torch.bfloat16`` runs the network under autocast.
        Grayscale images are upscaled as RGB and returned grayscale (the mean of the channels for a tensor, PIL's
        luma for an image); an alpha channel (RGBA, LA, a palette's transparency, or a 4-channel tensor) is upscaled
        on its own with MATLAB's bicubic and put back. 16-bit gray images are upscaled at their own precision and
        returned as 16-bit; 32-bit float images are refused (their range is unknown).
        """
        if self.output_scale == 1:
            raise ValueError(f"this {type(self).__name__} translates, it does not upscale: use translate(images)")
        options = dict(tile=tile, overlap=overlap, batch_size=batch_size, dtype=dtype)
        if isinstance(images, Image.Image):
            return self.upscale([images], **options)[0]
        if not isinstance(images, Tensor):
            outs = []
            for im in _progress(list(images), progress, desc="upscaling", unit="image"):
                if im.mode == "F":
                    raise ValueError("a 32-bit float image: its range is unknown; convert it to 8 or 16 bits first")
                if im.mode.startswith("I"):  # 16-bit gray (PIL's I;16 or I): PIL's RGB would clip it at 255
                    gray = torch.from_numpy(np.asarray(im).astype(np.float32))[None, None] / 32767.5 - 1.0
                    up = self.upscale(gray.clamp(-1.0, 1.0), **options)[0, 0]
                    outs.append(Image.fromarray(((up + 1.0) * 32767.5).round().numpy().astype(np.uint16)))
                    continue
                rgb = _from_pil(im.convert("RGB"), 3)
                up = to_pil(self.upscale(rgb, **options))[0]
                alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
                if alpha:
                    up.putalpha(to_pil(self._upscale_alpha(_from_pil(im.convert("RGBA").getchannel("A"), 1)))[0])
                outs.append(up.convert("LA" if alpha else "L") if im.mode in ("L", "LA", "1") else up)
            return outs
        if images.ndim != 4 or images.shape[1] not in (1, 3, 4):
            raise ValueError(f"expected images [N, 1, 3 or 4 channels, H, W], got shape {list(images.shape)}")
        uint8 = images.dtype == torch.uint8
        x = images.float() / 127.5 - 1.0 if uint8 else images.float()
        c = x.shape[1]
        rgb = x[:, :3] if c >= 3 else x.expand(-1, 3, -1, -1)
        if tile == "auto":
            tile = None if max(x.shape[-2:]) <= 512 else 256
        net = self.direction_network("a2b")
        was_training = net.training
        net.eval()
        try:
            with torch.autocast(self.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                y = torch.cat([self.run(net, xb, tile=tile, tile_overlap=overlap) for xb in rgb.split(batch_size)])
        finally:
            net.train(was_training)
        y = y.float()
        if c == 1:
            y = y.mean(1, keepdim=True)
        elif c == 4:
            y = torch.cat([y, self._upscale_alpha(x[:, 3:])], 1)
        return to_uint8(y) if uint8 else y

    def _upscale_alpha(self, alpha: Tensor) -> Tensor:
        """An alpha channel in [-1, 1] enlarged by :attr:`output_scale` with MATLAB's bicubic, clamped."""
        from ganzoo.data import bicubic_resize

        return bicubic_resize(alpha, self.output_scale).clamp(-1.0, 1.0)

    def run(
        self, net: nn.Module, x: Tensor, *, pad: bool = True, tile: int | None = None, tile_overlap: int = 32
    ) -> Tensor:
        """``net(x)`` for inputs of any size, on the CPU, clamped to [-1, 1]: reflect-padded to
        :attr:`size_multiple` and cropped back.

        With ``tile`` the image is cut into ``tile x tile`` squares, each run with ``tile_overlap`` pixels of its
        surroundings on every side (both rounded up to :attr:`size_multiple`, so that every tile sits on the
        generator's downsampling grid): the memory of one tile, whatever the image. Each tile keeps its square and
        a band of ``tile_overlap / 4`` beyond it, and neighbouring tiles cross-fade linearly over the ``tile_overlap
        / 2`` wide band around their common edge (weights summing to one), so that no seam shows even where a
        network sees further than its context. For a network whose receptive field reaches no further than ``3/4
        tile_overlap`` (the ResNet generators, in eval mode) every tile agrees with the untiled run where it is kept,
        so the result equals it; a U-Net sees the whole image at its bottleneck, so tiling it changes the output
        (use a large tile, or none).
        """
        if tile is None or (x.shape[-2] <= tile and x.shape[-1] <= tile):
            return self._run_whole(net, x.to(self.device), pad=pad).cpu()
        m, s = self.size_multiple, self.output_scale
        tile, margin = -(-tile // m) * m, -(-tile_overlap // m) * m
        if tile <= 0 or margin < 0:
            raise ValueError(f"tile must be positive and tile_overlap non-negative, got {tile} and {tile_overlap}")
        (n, _, h, w), band = x.shape, margin // 4
        out: Tensor | None = None
        weight_sum = torch.zeros(h * s, w * s)
        for top in range(0, h, tile):
            for left in range(0, w, tile):
                t, l = max(top - margin, 0), max(left - margin, 0)  # noqa: E741
                b, r = min(top + tile + margin, h), min(left + tile + margin, w)
                y = self._run_whole(net, x[..., t:b, l:r].to(self.device), pad=pad).cpu()
                if out is None:
                    out = y.new_zeros(n, y.shape[1], h * s, w * s)
                rows, wr = _crossfade(top, min(top + tile, h), h, band, s)
                cols, wc = _crossfade(left, min(left + tile, w), w, band, s)
                weight = wr[:, None] * wc[None, :]
                out[..., rows, cols] += weight * y[..., rows.start - t * s : rows.stop - t * s,
                                                   cols.start - l * s : cols.stop - l * s]  # fmt: skip
                weight_sum[rows, cols] += weight
        return out / weight_sum

    def _run_whole(self, net: nn.Module, x: Tensor, *, pad: bool = True) -> Tensor:
        m, (h, w) = self.size_multiple, x.shape[-2:]
        ph, pw = -h % m, -w % m
        if (ph or pw) and not pad:
            near = sorted({max(m, v // m * m) for v in (h, w)} | {(v // m + 1) * m for v in (h, w)})
            sizes = ", ".join(map(str, near))
            raise ValueError(f"a {h}x{w} input: this {type(self).__name__}'s generator needs sides that are "
                             f"multiples of {m} (nearest: {sizes}); pad=True pads and crops back")  # fmt: skip
        if ph or pw:  # reflection needs the pad smaller than the side; tiny inputs replicate their border instead
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
        s = self.output_scale
        return net(x)[..., : h * s, : w * s].float().clamp_(-1.0, 1.0)

    def example_inputs(self, n: int, seed: int = 0) -> Tensor:
        """``n`` inputs for previews when no training inputs are known: smooth random images (seeded), of the
        size whose output is ``image_size``."""
        size = int(self.hparams.get("image_size", 64)) // self.output_scale
        g = torch.Generator().manual_seed(seed)
        coarse = torch.rand(n, self.channels("a2b"), 4, 4, generator=g) * 2 - 1
        return nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)

    def preview(self, n: int = 8, seed: int = 0) -> tuple[Tensor, int | None]:
        """Up to 8 input | output pairs, two per row: the fixed inputs kept at fit start (the first validation
        inputs, else the first training inputs), else :meth:`example_inputs` of ``seed``. Super-resolution shows one
        input a row: LR (enlarged, nearest) | bicubic | output | HR (the target; absent for example inputs)."""
        n = min(n, 8)
        x = self.preview_inputs[:n] if self.preview_inputs is not None else self.example_inputs(n, seed)
        y = self.translate(x)
        if x.shape[1] != y.shape[1]:  # gray beside colour: show both in colour
            x, y = (t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t for t in (x, y))
        if self.output_scale == 1:
            return torch.stack([x, y], 1).flatten(0, 1), 4
        from ganzoo.data import bicubic_resize

        columns = [nn.functional.interpolate(x, size=y.shape[-2:], mode="nearest"),
                   bicubic_resize(x, self.output_scale).clamp(-1, 1), y]  # fmt: skip
        if self.preview_targets is not None and self.preview_inputs is not None:
            columns.append(self.preview_targets[:n])
        return torch.stack(columns, 1).flatten(0, 1), len(columns)

    def quality_sets(
        self, datamodule: Any, n: int, seed: int = 0, rank: int = 0, world: int = 1, batch_size: int = 50
    ) -> tuple[Tensor, Iterator[Tensor]]:
        """The targets of the first ``n`` validation pairs (training pairs where the data has no validation split;
        ``n`` rounded down to a multiple of ``world``), and the ``a2b`` translations of their inputs ``rank::world``.
        ``seed`` is unused: the pairs are the data's first, the translation deterministic."""
        try:
            pairs = datamodule.dataset("val")
        except FileNotFoundError:  # DataNotFoundError: no validation split
            pairs = datamodule.dataset("train")
        n = min(n, len(pairs)) // world * world
        if n < 2:
            raise ValueError(f"{len(pairs)} pairs for {world} processes: too few to measure")
        inputs, targets = (torch.stack(t) for t in zip(*(pairs[i] for i in range(n)), strict=True))
        batches = inputs[rank::world].split(batch_size)
        return to_uint8(targets), (to_uint8(self.translate(x, batch_size=batch_size)) for x in batches)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.preview_inputs is None:
            self.keep_validation_previews(getattr(self.trainer, "datamodule", None))

    def keep_validation_previews(self, datamodule: Any) -> None:
        """Keep the first 8 pairs of ``datamodule``'s validation split that hold an ``image_size`` output as the
        preview's fixed inputs (and an SR model's targets), centre-cropped to the training size (on the SR scale's
        grid); a datamodule without a validation split leaves the first training inputs to be kept instead."""
        if datamodule is None or not hasattr(datamodule, "dataset"):  # dataloaders passed to fit, or a foreign module
            return
        try:
            pairs = datamodule.dataset("val")
        except FileNotFoundError:  # no validation split (DataNotFoundError)
            return
        scale = self.output_scale
        side = int(self.hparams.get("image_size", 64)) // scale
        inputs, targets = [], []
        for i in range(len(pairs)):
            x, y = pairs[i]
            h, w = x.shape[-2:]
            if h < side or w < side:
                continue
            top, left = (h - side) // 2, (w - side) // 2
            inputs.append(x[..., top : top + side, left : left + side])
            targets.append(y[..., top * scale : (top + side) * scale, left * scale : (left + side) * scale])
            if len(inputs) == 8:
                break
        if inputs:
            self.preview_inputs = torch.stack(inputs).float()
            self.preview_targets = torch.stack(targets).float() if scale > 1 else None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_start(batch, batch_idx)
        kept = self.preview_inputs
        if kept is None or len(kept) < 8:  # the first batches, until 8 (one a batch at batch size 1)
            take = 8 - (0 if kept is None else len(kept))
            new = batch[0][:take].detach().float().cpu().clone()
            self.preview_inputs = new if kept is None else torch.cat([kept, new])
            if self.output_scale > 1:
                new = batch[1][:take].detach().float().cpu().clone()
                targets = self.preview_targets
                self.preview_targets = new if targets is None else torch.cat([targets, new])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.preview_inputs is not None:
            checkpoint["ganzoo"]["preview_inputs"] = self.preview_inputs
        if self.preview_targets is not None:
            checkpoint["ganzoo"]["preview_targets"] = self.preview_targets

    def load_training_state(self, state: dict[str, Any]) -> None:
        super().load_training_state(state)
        if isinstance(state.get("preview_inputs"), Tensor):
            self.preview_inputs = state["preview_inputs"]
        if isinstance(state.get("preview_targets"), Tensor):
            self.preview_targets = state["preview_targets"]


def _crossfade(start: int, stop: int, size: int, band: int, scale: int) -> tuple[slice, Tensor]:
    """The output rows (or columns) a tile whose core is ``[start, stop)`` of ``size`` keeps, and their weights: the
    core widened by ``band`` on each side that has a neighbour, the weight rising linearly across ``[start - band,
    start + band)`` and falling across ``[stop - band, stop + band)``, so that neighbours' weights sum to one.
    Everything in output pixels (``scale`` times the input's)."""
    lo = (start - band if start > 0 else 0) * scale
    hi = (stop + band if stop < size else size) * scale
    i = torch.arange(lo, hi, dtype=torch.float32) + 0.5
    weight = torch.ones(hi - lo)
    if band and start > 0:
        weight = torch.minimum(weight, (i - lo) / (2 * band * scale))
    if band and stop < size:
        weight = torch.minimum(weight, (hi - i) / (2 * band * scale))
    return slice(lo, hi), weight


def _from_pil(image: Image.Image, channels: int) -> Tensor:
    """A PIL image as ``[1, C, H, W]`` in [-1, 1] with ``channels`` channels."""
    im = image.convert("L" if channels == 1 else "RGB")
    t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(im.height, im.width, channels)
    return t.permute(2, 0, 1)[None].float() / 127.5 - 1.0


def to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] to uint8 in [0, 255], rounding to nearest: ``round(127.5 * x + 127.5)``."""
    return (images.detach().float() * 127.5 + 127.5).round_().clamp_(0, 255).to(torch.uint8).cpu()


def to_pil(images: Tensor) -> list[Image.Image]:
    """``[N, C, H, W]`` images in [-1, 1] to a list of PIL images (mode ``L`` or ``RGB``)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images [N, 1 or 3, H, W], got shape {list(images.shape)}")
    arrays = to_uint8(images).permute(0, 2, 3, 1).numpy()
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]


def make_grid(images: Tensor, nrow: int | None = None, padding: int = 2) -> Image.Image:
    """One PIL image tiling ``images`` ([-1, 1]); ``nrow`` images per row (default: a near-square grid)."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = torchvision.utils.make_grid(to_uint8(images), nrow=nrow, padding=padding, pad_value=0)
    return Image.fromarray(grid.permute(1, 2, 0).numpy())


def save_grid(images: Tensor | Image.Image, path: str | Path, nrow: int | None = None) -> Path:
    """Write ``images`` as a grid (or a grid :func:`make_grid` already made) in the format the path's extension names
    (PNG, JPEG, WebP, ...), atomically (an interrupted write leaves no half file); returns the path."""
    path = Path(path)
    image_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    grid = images if isinstance(images, Image.Image) else make_grid(images, nrow)
    try:
        grid.save(tmp, format=image_format(path))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def image_format(path: str | Path) -> str:
    """The Pillow format that ``path``'s extension names; a ``ValueError`` saying what to write otherwise."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"{path} is not an image file name: end it in .png (or .jpg, .webp)")
    return fmt


def _collect_rng_states() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states, as plain data that ``weights_only`` loading accepts."""
    import random

    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"torch": torch.get_rng_state(), "numpy": [kind, keys.tolist(), pos, has_gauss, cached]}
    states["python"] = random.getstate()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["torch.cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "torch.cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["torch.cuda"])


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({_cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} CPU ({_cpu_count()} cores)"


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _progress(iterable, enabled: bool, **kwargs):
    """A progress bar on a terminal; none when stderr is a file or a pipe (a log gets no redrawn lines)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None, **kwargs)
