"""Callbacks that run on the GAN's own clock (batches and images seen), not ``trainer.global_step``.

Under manual optimisation ``trainer.global_step`` counts every optimizer step, two or more per batch, so
Lightning's ``every_n_train_steps``, ``max_steps`` and step-named files mean something else for a GAN. These
callbacks count what a GAN paper counts: batches (generator updates) and thousands of images (kimg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

from ganzoo.gan import GAN, make_grid, save_grid


def _due(gan: GAN, batch: Any, every_n_kimg: float | None, every_n_batches: int | None) -> bool:
    """Whether ``batch``, just done, crossed a multiple of ``every_n_kimg`` or ``every_n_batches``."""
    if every_n_batches and gan.batches_seen % every_n_batches == 0:
        return True
    if every_n_kimg:
        step = every_n_kimg * 1000
        images_before = gan.images_seen - gan.batch_size(batch) * gan.trainer.world_size
        return int(gan.images_seen // step) > int(images_before // step)
    return False


class GANCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` triggered every ``every_n_kimg`` thousand images or ``every_n_batches`` batches, and at the
    end of training, however it ended.

    Files are named by the module's clock (``kimg=0012.800-batch=100.ckpt``); ``save_last`` keeps ``last.ckpt``
    for ``ganzoo fit --ckpt_path last``. Lightning writes checkpoints atomically (a temporary file renamed
    into place) and only on rank 0.
    """

    def __init__(
        self,
        dirpath: str | None = None,
        filename: str | None = None,
        every_n_kimg: float | None = None,
        every_n_batches: int | None = None,
        save_last: bool = True,
        save_top_k: int = -1,
        **kwargs: Any,
    ) -> None:
        # The module's clock replaces Lightning's epoch trigger: a save at the end of an epoch that StopAt cut short
        # records that epoch as finished, and a run resumed from it would not continue exactly.
        # (LightningCLI passes every_n_epochs=None explicitly; None would mean "every epoch".)
        if not kwargs.get("every_n_epochs"):
            kwargs["every_n_epochs"] = 0
        # last.ckpt is the run's newest state, overwritten in place (atomically): never a last-v1.ckpt beside it.
        kwargs.setdefault("enable_version_counter", False)
        super().__init__(
            dirpath=dirpath,
            filename=filename or "{kimg:08.3f}-{batch}",
            save_last=save_last,
            save_top_k=save_top_k,
            **kwargs,
        )
        self.every_n_kimg, self.every_n_batches = every_n_kimg, every_n_batches
        self._saved_at = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GAN, outputs: Any, batch: Any, *args: Any) -> None:
        pl_module.end_batch(batch)
        # A stop asked for during this batch (StopAt, a signal) is saved here, inside the epoch: saved after the loop
        # ends, the cut-short epoch would count as finished and a resumed run would start the next one.
        if trainer.should_stop or _due(pl_module, batch, self.every_n_kimg, self.every_n_batches):
            self._save(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: GAN) -> None:
        # The end of a run is always kept, whether max_epochs, StopAt or a signal ended it.
        if pl_module.batches_seen != self._saved_at:
            self._save(trainer, pl_module)

    def _save(self, trainer: L.Trainer, pl_module: GAN) -> None:
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
        self._saved_at = pl_module.batches_seen

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, torch.Tensor]:
        candidates = super()._monitor_candidates(trainer)
        gan = trainer.lightning_module
        candidates["kimg"] = torch.tensor(gan.images_seen / 1000.0)
        candidates["batch"] = torch.tensor(gan.batches_seen)
        return candidates


class InitFrom(Callback):
    """Start a fit from another model's networks: SRGAN from an SRResNet's generator, as the paper initialises it.

    Before the first batch of a fresh run, each network of ``parts`` is loaded (strictly: the same architecture)
    from ``source``, a name, alias, model folder, ``.ckpt`` or Hub repo id as :func:`ganzoo.load` takes; an EMA copy
    of it starts from the same weights. The source's training record (images seen, wall time, hardware, and what it
    started from in turn) is kept as ``gan.started_from``, saved with checkpoints and exported, and the model card
    counts it. A resumed run (images already seen) has its own weights and record in its checkpoint and loads
    nothing.

    Args:
        source: the model to start from, e.g. ``srresnet-x4``.
        parts: the networks to copy (state-dict prefixes), by default ``["generator"]``.
    """

    def __init__(self, source: str, parts: list[str] | None = None) -> None:
        self.source, self.parts = source, list(parts or ["generator"])

    def on_fit_start(self, trainer: L.Trainer, gan: GAN) -> None:
        if gan.images_seen:
            return
        from ganzoo.hub import load

        source = load(self.source)
        state = source.state_dict()
        for part in self.parts:
            weights = {k[len(part) + 1 :]: v for k, v in state.items() if k.startswith(f"{part}.")}
            if not weights or not isinstance(getattr(gan, part, None), torch.nn.Module):
                raise ValueError(f"InitFrom({self.source!r}): cannot copy {part!r}; the source holds "
                                 f"{sorted({k.split('.')[0] for k in state})}")  # fmt: skip
            for net in (getattr(gan, part), getattr(gan, f"{part}_ema", None)):
                if net is not None:
                    try:
                        net.load_state_dict(weights)
                    except RuntimeError as e:
                        raise ValueError(f"InitFrom({self.source!r}): its {part} does not fit this model's: "
                                         f"{str(e).splitlines()[1].strip()}") from None  # fmt: skip
        record = {k: v for k, v in source.training_state().items() if k != "training_config"}
        gan.started_from = {"source": str(self.source), "parts": self.parts, **record}


class StopAt(Callback):
    """Stop training after ``kimg`` thousand images or ``batches`` batches, whichever comes first."""

    def __init__(self, kimg: float | None = None, batches: int | None = None) -> None:
        if kimg is None and batches is None:
            raise ValueError("StopAt needs kimg or batches")
        self.kimg, self.batches = kimg, batches

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GAN, outputs: Any, batch: Any, *args: Any) -> None:
        pl_module.end_batch(batch)
        if (self.batches is not None and pl_module.batches_seen >= self.batches) or (
            self.kimg is not None and pl_module.images_seen >= self.kimg * 1000
        ):
            trainer.should_stop = True


class SampleGrid(Callback):
    """Write a fixed-seed sample grid every ``every_n_kimg`` thousand images (rank 0 only), and show it in the
    run's loggers.

    The grid is :meth:`~ganzoo.gan.GAN.preview`: samples of the EMA generator on fixed seeds, or a translator's fixed
    input | output pairs (the first validation inputs, else the first training inputs). Files go to
    ``<log_dir>/samples/kimg=0012.800.png``; the same ``seed`` makes the grids comparable. The same image goes to
    TensorBoard as ``samples`` (and to any logger with a ``log_image`` method, such as Weights & Biases), on the
    batch axis of the scalars.
    """

    def __init__(self, every_n_kimg: float = 10.0, num: int = 64, seed: int = 0) -> None:
        self.every_n_kimg, self.num, self.seed = every_n_kimg, num, seed

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GAN, outputs: Any, batch: Any, *args: Any) -> None:
        pl_module.end_batch(batch)
        if _due(pl_module, batch, self.every_n_kimg, None):
            self._write(trainer, pl_module)

    @rank_zero_only
    def _write(self, trainer: L.Trainer, pl_module: GAN) -> None:
        from lightning.pytorch.loggers import TensorBoardLogger

        folder = Path(trainer.log_dir or trainer.default_root_dir) / "samples"
        images, nrow = pl_module.preview(self.num, seed=self.seed)
        grid = make_grid(images, nrow)
        save_grid(grid, folder / f"kimg={pl_module.images_seen / 1000:08.3f}.png")
        step = trainer.fit_loop.epoch_loop._batches_that_stepped  # the axis of the scalars (GAN.log_now)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("samples", np.asarray(grid), step, dataformats="HWC")
            elif callable(getattr(logger, "log_image", None)):
                logger.log_image(key="samples", images=[grid], step=step)


class SampleQuality(Callback):
    """FID and KID of the sampling generator every ``every_n_kimg`` thousand images: ``metric/fid``, ``metric/kid``.

    What is compared is the model's :meth:`~ganzoo.gan.GAN.quality_sets`: for a generator of noise ``num_samples``
    generated images (a fixed seed, so successive values differ by the model only) against as many training images
    (drawn once with the same seed; their features are cached on disk); for a translator the translations of the
    first ``num_samples`` validation inputs against their targets. The budget is
    small, so FID is biased upwards compared with FID-50k: the values track one run's progress and pick its
    checkpoints; the leaderboard measures the result. Under DDP every process generates its share, the features
    are gathered, and every process computes the same numbers.

    Args:
        every_n_kimg: how often, in thousands of images seen.
        num_samples: generated and real images per measurement (a multiple of the number of processes; a
            translator's are at most its validation pairs).
        feature_net: ``"inception"`` (the FID network) or any :class:`~ganzoo.metrics.FeatureNetwork`.
        seed: of the latents and of the real subset.
        batch_size: evaluation batch size.
    """

    def __init__(
        self,
        every_n_kimg: float = 50.0,
        num_samples: int = 1000,
        feature_net: Any = "inception",
        seed: int = 0,
        batch_size: int = 50,
    ) -> None:
        self.every_n_kimg, self.num_samples, self.seed, self.batch_size = every_n_kimg, num_samples, seed, batch_size
        self.feature_net = feature_net
        self._net = self._real = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GAN, outputs: Any, batch: Any, *args: Any) -> None:
        pl_module.end_batch(batch)
        if _due(pl_module, batch, self.every_n_kimg, None):
            values = {f"metric/{k}": v for k, v in self.measure(trainer, pl_module).items()}
            trainer.callback_metrics.update({k: torch.tensor(v) for k, v in values.items()})
            pl_module.log_now({**values, "kimg": pl_module.images_seen / 1000})

    @torch.no_grad()
    def measure(self, trainer: L.Trainer, pl_module: GAN) -> dict[str, float]:
        """FID and KID now; leaves the global RNG and the generator's mode as they were (exact resume holds)."""
        from ganzoo import metrics

        world, rank = trainer.world_size, trainer.global_rank
        device = pl_module.device
        if self._net is None:
            self._net = metrics.feature_network(self.feature_net)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            real, batches = pl_module.quality_sets(
                trainer.datamodule, self.num_samples, self.seed, rank, world, self.batch_size
            )
            if self._real is None:
                real = metrics.ImageSet.from_tensor(real, "reference images")
                self._real = metrics.cached_features(real, self._net, batch_size=self.batch_size, device=device)
            fake, _ = metrics.extract(self._net, batches, device=device)
        if world > 1:
            fake = pl_module.all_gather(fake.to(device)).reshape(-1, fake.shape[1]).cpu()
        return {
            "fid": metrics.frechet_distance(self._real, fake),
            "kid": metrics.kernel_distance(self._real, fake, seed=self.seed)[0],
        }


class TrainingOptions(Callback):
    """Speed and safety options of a run, kept out of the model's architecture config.

    Args:
        grad_clip: maximum gradient norm per network, e.g. ``{"discriminator": 10.0}`` (Lightning's
            ``gradient_clip_val`` does not apply under manual optimisation).
        on_nonfinite: ``"stop"`` (save a checkpoint and stop with the batch, phase and loss) or ``"skip"``
            (skip the step and count it in ``progress/skipped_steps``).
        check_finite_every: batches between checks for non-finite losses; by default 1 on the CPU, where it is
            free, and 50 on an accelerator, where each check makes the host wait for the device. Between checks a
            non-finite step's gradients are zeroed (it moves no weight) and counted on the device.
        train_fresh_parts: fit a model whose discriminator was built fresh rather than loaded (an upstream
            generator-only release); refused otherwise, since a random discriminator would wreck a trained generator.
        channels_last: convert the networks to the channels-last memory format (faster convolutions on
            tensor-core GPUs).
        compile: ``torch.compile`` each network in place (state-dict keys stay as they are).
    """

    def __init__(
        self,
        grad_clip: dict[str, float] | None = None,
        on_nonfinite: str = "stop",
        check_finite_every: int | None = None,
        train_fresh_parts: bool = False,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        if on_nonfinite not in ("stop", "skip"):
            raise ValueError(f"on_nonfinite must be 'stop' or 'skip', got {on_nonfinite!r}")
        if check_finite_every is not None and check_finite_every < 1:
            raise ValueError(f"check_finite_every must be a number of batches >= 1, got {check_finite_every}")
        self.grad_clip, self.on_nonfinite = dict(grad_clip or {}), on_nonfinite
        self.check_finite_every, self.train_fresh_parts = check_finite_every, train_fresh_parts
        self.channels_last, self.compile = channels_last, compile

    def setup(self, trainer: L.Trainer, pl_module: GAN, stage: str) -> None:
        unknown = set(self.grad_clip) - set(pl_module.ddp_networks)
        if unknown:
            raise ValueError(f"grad_clip names {sorted(unknown)}; {pl_module.variant} has {pl_module.ddp_networks}")
        pl_module.grad_clip, pl_module.on_nonfinite = self.grad_clip, self.on_nonfinite
        pl_module.check_finite_every, pl_module.train_fresh_parts = self.check_finite_every, self.train_fresh_parts
        # Before the strategy wraps the networks in DDP (Lightning calls setup hooks first).
        for name in pl_module.ddp_networks:
            net = getattr(pl_module, name)
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
            if self.compile and stage == "fit":
                net.compile()


class StopOnSignal(Callback):
    """Stop a run cleanly on SIGINT (Ctrl-C), SIGTERM (a scheduler's pre-emption) or, under SLURM with Lightning's
    auto-requeue (``SLURMEnvironment``, on by default), its requeue signal (SIGUSR1 unless set otherwise): finish
    the batch in progress, save a checkpoint there (exactly resumable, like every ganzoo checkpoint) and end the
    fit; after the requeue signal rank 0 also runs ``scontrol requeue`` for the job. ``ganzoo fit`` adds it to
    every run, prints where the checkpoint is and how to resume, and exits with ``128 + signal`` (130, 143, 138).
    Lightning's own requeue handler, which saves in the middle of a batch, is replaced.

    The checkpoint is written by the run's :class:`GANCheckpoint` (its ``last.ckpt``), or, without one, to
    ``<default_root_dir>/checkpoints/last.ckpt``. Under ``gan_ddp`` the processes agree after every batch whether
    any of them was signalled, so all stop at the same batch and rank 0 writes. Further signals while stopping are
    ignored: the save is atomic, and a forced kill (SIGKILL) still leaves the previous checkpoint intact.

    Attributes:
        signal: the signal that stopped the run (``signal.Signals``), or ``None``.
        checkpoint: the path of the checkpoint saved at the stop.
        batch: the module's ``batches_seen`` at the stop.
        requeued: the SLURM job id requeued after the requeue signal, or ``None``.
    """

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.signal: Any = None
        self.checkpoint: str | None = None
        self.batch: int | None = None
        self.requeued: str | None = None
        self._requeue_signal: Any = None
        self._received: Any = None
        self._previous: dict[Any, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: GAN) -> None:
        # After Lightning installed its own SIGTERM handler (whose exception would end the fit mid-way): replaced.
        import signal
        import threading

        from lightning.fabric.plugins.environments import SLURMEnvironment

        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be installed from the main thread
        signals = [getattr(signal, name) for name in self.SIGNALS]
        environment = trainer._accelerator_connector.cluster_environment
        if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
            self._requeue_signal = signal.Signals(environment.requeue_signal or signal.SIGUSR1)
            signals.append(self._requeue_signal)
        for signum in signals:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        self._trainer = trainer

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self._received is not None:
            return
        self._received = signal.Signals(signum)
        launcher = getattr(self._trainer.strategy, "launcher", None)
        if launcher is not None and hasattr(launcher, "kill"):  # the other processes Lightning started on this node
            launcher.kill(signum)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GAN, outputs: Any, batch: Any, *args: Any) -> None:
        pl_module.end_batch(batch)
        received = self._received
        if trainer.world_size > 1:  # any process signalled: every process stops at this batch
            flag = torch.tensor(float(received.value) if received is not None else 0.0, device=pl_module.device)
            flag = trainer.strategy.reduce(flag, reduce_op="max")
            if received is None and flag > 0:
                import signal

                received = signal.Signals(int(flag))
        if received is None:
            return
        self.signal, self.batch = received, pl_module.batches_seen
        trainer.should_stop = True
        checkpoints = [c for c in trainer.checkpoint_callbacks if isinstance(c, GANCheckpoint)]
        if checkpoints:  # it saves at this batch (checkpoint callbacks run after the others), last.ckpt included
            c = checkpoints[0]
            self.checkpoint = str(Path(c.dirpath) / f"{c.CHECKPOINT_NAME_LAST}{c.FILE_EXTENSION}")
        else:
            self.checkpoint = str(Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt")
            trainer.save_checkpoint(self.checkpoint, weights_only=False)

    def on_fit_end(self, trainer: L.Trainer, pl_module: GAN) -> None:
        self._restore()
        if self.signal is not None and self.signal == self._requeue_signal and trainer.is_global_zero:
            self.requeued = _slurm_requeue()

    def on_exception(self, trainer: L.Trainer, pl_module: GAN, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        import signal

        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def _slurm_requeue() -> str | None:
    """``scontrol requeue`` this SLURM job (an array job's own task); returns the job id, or ``None`` (with a
    warning saying why) when it could not be requeued."""
    import os
    import subprocess

    from lightning.pytorch.utilities import rank_zero_warn

    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID')}" if array else os.environ.get("SLURM_JOB_ID")
    try:
        subprocess.run(["scontrol", "requeue", str(job)], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        rank_zero_warn(f"could not requeue SLURM job {job}: {getattr(e, 'stderr', None) or e}")
        return None
    return job
