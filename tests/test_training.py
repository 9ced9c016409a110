"""Training correctness: exact resume, crash recovery, mixed precision, bad states, the module's own clock."""

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch

import ganzoo
from ganzoo import registry
from ganzoo.callbacks import GANCheckpoint, SampleGrid, StopAt, TrainingOptions
from ganzoo.data import Synthetic
from ganzoo.gan import NonFiniteLossError
from tests.conftest import REPO, VARIANTS, assert_same_optimizer_states

TINY = dict(latent_dim=8, image_size=8, image_channels=1, base_channels=4, ema_kimg=0.01, lr=1e-3)


def make(**overrides):
    L.seed_everything(0, verbose=False)
    return ganzoo.create("dcgan", **{**TINY, **overrides})


def trainer(tmp_path, callbacks, **kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu", max_epochs=20, logger=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path, callbacks=callbacks, **kwargs,
    )  # fmt: skip


def data() -> Synthetic:
    return Synthetic(num_images=64, image_size=8, batch_size=8)  # 8 batches an epoch


def snapshot(gan, tr) -> dict:
    return {
        "state": {k: v.clone() for k, v in gan.state_dict().items()},
        "optimizers": [o.state_dict() for o in tr.optimizers],
        "clock": (gan.images_seen, gan.batches_seen),
        "latent_rng": gan._latent_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def assert_same(a, b):
    assert a["clock"] == b["clock"]
    for k, v in a["state"].items():
        torch.testing.assert_close(b["state"][k], v, rtol=0, atol=0, msg=k)
    assert_same_optimizer_states(a["optimizers"], b["optimizers"])
    assert torch.equal(a["latent_rng"], b["latent_rng"]) and torch.equal(a["torch_rng"], b["torch_rng"])


def test_resume_mid_epoch_is_exact(tmp_path):
    """5 batches, save, resume for 8 more == 13 batches straight (the stop falls mid-epoch)."""
    gan = make()
    tr = trainer(tmp_path / "straight", [StopAt(batches=13)])
    tr.fit(gan, data())
    straight = snapshot(gan, tr)

    ckpt = GANCheckpoint(dirpath=tmp_path / "ckpt", every_n_batches=5, save_last=True)
    first = make()
    trainer(tmp_path / "resumed", [StopAt(batches=5), ckpt]).fit(first, data())
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["kimg=0000.040-batch=5.ckpt", "last.ckpt"]
    resumed = make(lr=0.5)  # hparams and weights come from the checkpoint's state, not from here
    resumed.load_state_dict(first.state_dict())
    tr = trainer(tmp_path / "resumed", [StopAt(batches=13), GANCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)])
    tr.fit(resumed, data(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert_same(straight, snapshot(resumed, tr))


def test_resume_from_the_last_batch_of_an_epoch_is_exact(tmp_path):
    """A checkpoint written at an epoch's last batch (8 of 8): the next epoch's DataLoader iterator, which the
    resumed run creates before its RNG states are restored and the straight run after, must not draw from them."""
    gan = make()
    tr = trainer(tmp_path / "straight", [StopAt(batches=11)])
    tr.fit(gan, data())
    straight = snapshot(gan, tr)
    first = make()
    trainer(tmp_path / "first", [StopAt(batches=8), GANCheckpoint(dirpath=tmp_path / "ckpt")]).fit(first, data())
    resumed = make()
    tr = trainer(tmp_path / "resumed", [StopAt(batches=11)])
    tr.fit(resumed, data(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert_same(straight, snapshot(resumed, tr))


def test_last_ckpt_is_always_the_newest_state_of_its_folder(tmp_path):
    """Two fresh runs into one checkpoint folder (a recipe with a fixed dirpath): last.ckpt is the second run's, with
    no last-v1.ckpt beside it for `--ckpt_path last` or an export to pick up instead."""
    for batches in (3, 2):
        trainer(tmp_path / f"run{batches}", [StopAt(batches=batches), GANCheckpoint(dirpath=tmp_path / "ckpt")]).fit(
            make(), data()
        )
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("last*")) == ["last.ckpt"]
    assert ganzoo.hub.load_lightning_checkpoint(tmp_path / "ckpt" / "last.ckpt").batches_seen == 2


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_resumes_exactly_with_its_regularisers_on(variant, tmp_path):
    """4 batches, save, resume to 9 == 9 straight, for each variant with its lazy intervals, style mixing,
    augmentation, penalties and critic rounds on (the stop falls inside a round of each)."""
    from ganzoo import registry
    from tests.test_distributed import REGULARISED

    hparams = {**registry.get_variant(variant).tiny, **REGULARISED[variant]}
    if variant == "stylegan2":
        hparams |= {"d_reg_interval": 3, "g_reg_interval": 2}

    def build():
        L.seed_everything(0, verbose=False)
        return registry.create(variant, **hparams)

    def dm():
        return Synthetic.matching(build(), num_images=40, batch_size=8)

    gan = build()
    tr = trainer(tmp_path / "straight", [StopAt(batches=9)])
    tr.fit(gan, dm())
    straight = snapshot(gan, tr)
    first = build()
    trainer(tmp_path / "first", [StopAt(batches=4), GANCheckpoint(dirpath=tmp_path / "ckpt")]).fit(first, dm())
    resumed = build()
    tr = trainer(tmp_path / "resumed", [StopAt(batches=9)])
    tr.fit(resumed, dm(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert_same(straight, snapshot(resumed, tr))


def test_killed_run_resumes_from_last_checkpoint(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"""
seed_everything: 0
model:
  class_path: ganzoo.models.dcgan.DCGAN
  init_args: {{latent_dim: 8, image_size: 8, image_channels: 1, base_channels: 4}}
data:
  class_path: ganzoo.data.Synthetic
  init_args: {{num_images: 512, image_size: 8, batch_size: 8}}
trainer:
  accelerator: cpu
  max_epochs: 1000
  logger: false
  enable_progress_bar: false
  callbacks:
    - class_path: ganzoo.callbacks.GANCheckpoint
      init_args: {{dirpath: {tmp_path / "ckpt"}, every_n_batches: 20, save_last: true}}
    - class_path: ganzoo.callbacks.StopAt
      init_args: {{batches: 2000}}
""")
    cmd = [sys.executable, "-m", "ganzoo.cli", "fit", "--config", str(config)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((tmp_path / "ckpt").glob("kimg=*-batch=40.ckpt")) and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    last = ganzoo.hub.load_lightning_checkpoint(tmp_path / "ckpt" / "last.ckpt")  # intact after the kill
    # A whole checkpoint of a save point (the kill may land before last.ckpt caught up with kimg=...-batch=40.ckpt).
    assert last.batches_seen >= 20 and last.batches_seen % 20 == 0
    out = subprocess.run(
        [*cmd, "--ckpt_path", "last", "--trainer.callbacks+=ganzoo.callbacks.StopAt",
         f"--trainer.callbacks.batches={last.batches_seen + 20}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    done = ganzoo.hub.load_lightning_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert done.batches_seen == last.batches_seen + 20


def data_for(gan) -> Synthetic:
    """The synthetic data a model trains on: ``data()`` for the small latent models, pairs for a translator."""
    return Synthetic.matching(gan, num_images=32, batch_size=8) if gan.task in registry.IMAGE_TASKS else data()


@pytest.mark.parametrize("variant", ["dcgan", "pix2pix", "cyclegan"])
def test_bf16_mixed_steps_on_cpu(variant, tmp_path):
    from ganzoo import registry

    L.seed_everything(0, verbose=False)
    gan = make() if variant == "dcgan" else registry.create(variant, **registry.get_variant(variant).tiny)
    before = {k: v.clone() for k, v in gan.state_dict().items()}
    trainer(tmp_path, [StopAt(batches=3)], precision="bf16-mixed").fit(gan, data_for(gan))
    assert gan.batches_seen == 3
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in gan.parameters())
    assert all(not torch.equal(before[k], v) for k, v in gan.state_dict().items() if k.endswith("weight"))


def fp16_trainer(tmp_path, callbacks) -> L.Trainer:
    # Lightning turns precision="16-mixed" into bf16 on a CPU; the plugin itself runs fp16 autocast there.
    from lightning.pytorch.plugins import MixedPrecision

    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))
    return trainer(tmp_path, callbacks, plugins=[plugin])


@pytest.mark.parametrize("variant", ["dcgan", "stylegan2", "pix2pix", "cyclegan"])
def test_fp16_mixed_steps_every_optimizer_through_its_own_scaler(variant, tmp_path, monkeypatch):
    from ganzoo import registry

    steps = []  # (scaler, optimizer) of every scaled step
    real_step = torch.amp.GradScaler.step

    def counted(scaler, optimizer, *args, **kwargs):
        steps.append((id(scaler), id(optimizer.optimizer)))
        return real_step(scaler, optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp.GradScaler, "step", counted)
    hp = dict(registry.get_variant(variant).tiny)
    if variant == "stylegan2":
        hp |= {"d_reg_interval": 2, "g_reg_interval": 3, "image_channels": 1}
    L.seed_everything(0, verbose=False)
    gan = registry.create(variant, **hp)
    ckpt = GANCheckpoint(dirpath=tmp_path / "ckpt", every_n_batches=4, save_last=True)
    tr = fp16_trainer(tmp_path, [StopAt(batches=4), ckpt])
    tr.fit(gan, data_for(gan))
    assert tr.precision_plugin.scaler is None  # Lightning's one shared scaler is off
    opt_g, opt_d = (id(o) for o in tr.optimizers)
    scalers = {o: s for s, o in steps}
    assert len(scalers) == 2 and len(set(scalers.values())) == 2, "each optimizer has its own scaler"
    assert all(scalers[o] == s for s, o in steps), "an optimizer stepped through another's scaler"
    # Every update went through its scaler: one per network per batch, plus StyleGAN2's lazy regularisation
    # steps (G at batches 0 and 3, D at batches 0 and 2).
    extra_g, extra_d = (2, 2) if variant == "stylegan2" else (0, 0)
    assert [o for _, o in steps].count(opt_g) == 4 + extra_g
    assert [o for _, o in steps].count(opt_d) == 4 + extra_d
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["ganzoo"]["scalers"]
    assert [s["scale"] for s in saved] == [gan._scalers[o].get_scale() for o in (opt_g, opt_d)]


def test_fp16_overflow_in_one_network_lowers_only_its_scale(tmp_path):
    seen = {}

    class Overflow(L.Callback):
        """At batch 2, a loss scale so large that the discriminator's fp16 gradients overflow."""

        def on_train_batch_start(self, trainer, gan, batch, batch_idx):
            if gan.batches_seen == 2:
                seen["scales"] = [gan._scalers[id(o)].get_scale() for o in trainer.optimizers]
                gan._scalers[id(trainer.optimizers[1])].update(2.0**100)
                seen["before"] = {k: v.clone() for k, v in gan.state_dict().items()}

        def on_train_batch_end(self, trainer, gan, *args):
            if gan.batches_seen == 2:  # batch 2's steps are done (the module's clock moves after callbacks)
                seen["after"] = {k: v.clone() for k, v in gan.state_dict().items()}

    gan = make()
    tr = fp16_trainer(tmp_path, [Overflow(), StopAt(batches=3)])
    tr.fit(gan, data())
    g_scale, d_scale = (gan._scalers[id(o)].get_scale() for o in tr.optimizers)
    assert d_scale == 2.0**99  # the overflow halved D's scale ...
    assert g_scale == seen["scales"][0]  # ... and left G's alone
    before, after = seen["before"], seen["after"]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("discriminator.") and "running" not in k
               and "num_batches" not in k), "the overflowing step was applied"  # fmt: skip
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("generator."))


class InjectNaN(L.Callback):
    def __init__(self, at_batch: int) -> None:
        self.at_batch = at_batch

    def on_train_batch_start(self, trainer, gan, batch, batch_idx):
        if gan.batches_seen == self.at_batch:
            with torch.no_grad():
                gan.discriminator.net[-1].weight.fill_(math.nan)


def test_nan_stops_with_a_clear_message_and_a_usable_checkpoint(tmp_path):
    gan = make()
    with pytest.raises(NonFiniteLossError, match=r"batch 2 .*discriminator phase, loss nan") as e:
        trainer(tmp_path, [InjectNaN(at_batch=2)]).fit(gan, data())
    path = tmp_path / "checkpoints" / "nonfinite.ckpt"
    assert str(path) in str(e.value)
    saved = ganzoo.hub.load_lightning_checkpoint(path)
    assert saved.batches_seen == 2


def test_nan_can_be_skipped_and_counted(tmp_path):
    gan = make()
    before = None

    class Remember(L.Callback):
        def on_train_batch_end(self, trainer, gan, *args):
            nonlocal before
            if gan.batches_seen == 2:
                before = gan.generator.net[0].weight.clone()

    tr = trainer(tmp_path, [Remember(), InjectNaN(at_batch=2), TrainingOptions(on_nonfinite="skip"), StopAt(batches=4)])
    tr.fit(gan, data())
    assert gan.skipped_steps == 4  # D and G, two batches
    assert torch.equal(gan.generator.net[0].weight, before)  # the NaN never reached the generator


class NaNImages(L.Callback):
    """Real images of NaN at one batch: that batch's discriminator loss is non-finite, nothing else is."""

    def __init__(self, at_batch: int) -> None:
        self.at_batch = at_batch

    def on_train_batch_start(self, trainer, gan, batch, batch_idx):
        if gan.batches_seen == self.at_batch:
            batch[0].fill_(math.nan)


def test_deferred_nonfinite_check_names_the_batch_and_keeps_the_weights_finite(tmp_path):
    """With check_finite_every=3 (an accelerator's way: no host sync per step), a NaN loss at batch 2 moves no
    weight and the check after batch 3 stops the run naming batch 2 and the phase."""
    gan = make()
    options = TrainingOptions(check_finite_every=3)
    with pytest.raises(NonFiniteLossError, match=r"from batch 2 on, discriminator phase \(1 step\), found by the "
                                                 r"check at batch 3") as e:  # fmt: skip
        trainer(tmp_path, [NaNImages(at_batch=2), options]).fit(gan, data())
    saved = ganzoo.hub.load_lightning_checkpoint(tmp_path / "checkpoints" / "nonfinite.ckpt")
    assert saved.batches_seen == 3 and str(tmp_path / "checkpoints" / "nonfinite.ckpt") in str(e.value)
    assert all(torch.isfinite(v).all() for v in saved.state_dict().values())

    gan = make()
    skip = TrainingOptions(check_finite_every=3, on_nonfinite="skip")
    trainer(tmp_path / "skip", [NaNImages(at_batch=2), skip, StopAt(batches=7)]).fit(gan, data())
    assert gan.skipped_steps == 1 and gan.batches_seen == 7
    assert all(torch.isfinite(v).all() for v in gan.state_dict().values())


def test_gradient_clipping_per_network(tmp_path):
    gan = make(lr=1.0)
    seen = []

    class Norms(L.Callback):
        def on_before_optimizer_step(self, trainer, gan, optimizer):
            name = gan._network_of(optimizer)
            norm = torch.nn.utils.get_total_norm(
                [p.grad for p in getattr(gan, name).parameters() if p.grad is not None]
            )
            seen.append((name, float(norm)))

    tr = trainer(tmp_path, [TrainingOptions(grad_clip={"discriminator": 1e-3}), Norms(), StopAt(batches=2)])
    tr.fit(gan, data())
    d_norms = [n for name, n in seen if name == "discriminator"]
    assert d_norms and max(d_norms) <= 1e-3 * 1.001
    assert max(n for name, n in seen if name == "generator") > 1e-3
    with pytest.raises(ValueError, match="grad_clip names"):
        trainer(tmp_path, [TrainingOptions(grad_clip={"critic": 1.0})]).fit(make(), data())


def test_clock_callbacks_count_batches_and_kimg(tmp_path):
    gan = make()
    tr = trainer(tmp_path, [StopAt(kimg=0.1), SampleGrid(every_n_kimg=0.032, num=4)])
    tr.fit(gan, data())
    assert gan.images_seen == 104 and gan.batches_seen == 13  # the first batch at or past 100 images
    assert tr.global_step == 2 * 13  # what Lightning counts: one per optimizer step
    grids = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert grids == ["kimg=0000.032.png", "kimg=0000.064.png", "kimg=0000.096.png"]


def test_plain_ddp_is_refused(tmp_path):
    from lightning.pytorch.strategies import DDPStrategy

    class Refuse(DDPStrategy):  # a one-process DDP, to reach on_fit_start without spawning
        def setup_distributed(self):
            pass

        def configure_ddp(self):
            pass

    with pytest.raises(RuntimeError, match="gan_ddp"):
        trainer(tmp_path, [], strategy=Refuse(), devices=1).fit(make(), data())


@pytest.mark.slow
def test_cli_picks_gan_ddp_for_two_devices(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "ganzoo.cli", "fit", "--config", str(REPO / "recipes" / "dcgan-mnist.yaml"),
         "--data=ganzoo.data.Synthetic", "--data.image_size=32", "--data.batch_size=8", "--data.num_images=64",
         "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.max_epochs=1",
         "--trainer.limit_train_batches=2", "--trainer.enable_progress_bar=false",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    # Saved at the end of the run (the recipe saves every 100 kimg) by rank 0, with both ranks' images counted, in
    # the one run folder both processes agreed on.
    assert [p.name for p in (tmp_path / "runs" / "dcgan-mnist").iterdir()] == ["run-0"]
    run = tmp_path / "runs" / "dcgan-mnist" / "run-0"
    ckpt = ganzoo.hub.load_lightning_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt.images_seen == 2 * 2 * 8 and ckpt.hardware[0].startswith("2 x ")
    config = (run / "logs" / "version_0" / "config.yaml").read_text()
    assert "strategy: gan_ddp" in config


def test_learning_rate_schedules_step_once_per_batch(tmp_path):
    class Scheduled(type(make())):
        def configure_optimizers(self):
            opts = super().configure_optimizers()
            return opts, [torch.optim.lr_scheduler.LambdaLR(o, lambda batch: 0.5**batch) for o in opts]

    gan = Scheduled(**TINY)
    tr = trainer(tmp_path, [StopAt(batches=3)])
    tr.fit(gan, data())
    assert [c.scheduler.last_epoch for c in tr.lr_scheduler_configs] == [3, 3]
    assert tr.optimizers[0].param_groups[0]["lr"] == pytest.approx(TINY["lr"] * 0.5**3)


@pytest.mark.slow
def test_speed_options_keep_the_checkpoint_layout(tmp_path):
    gan = make()
    keys = set(gan.state_dict())
    trainer(tmp_path, [StopAt(batches=2), TrainingOptions(channels_last=True, compile=True)]).fit(gan, data())
    assert gan.batches_seen == 2 and set(gan.state_dict()) == keys
    assert gan.generator.net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_a_save_that_dies_half_way_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    """Lightning writes checkpoints through an fsspec transaction (a temporary file renamed into place)."""
    from fsspec.implementations.local import LocalFileOpener

    ckpt = GANCheckpoint(dirpath=tmp_path / "ckpt", every_n_batches=2)
    trainer(tmp_path, [StopAt(batches=2), ckpt]).fit(make(), data())
    last = tmp_path / "ckpt" / "last.ckpt"
    before = last.read_bytes()

    def die_half_way(self, data):
        LocalFileOpener.__dict__["_real_write"](self, data[: len(data) // 2])
        raise OSError("the process died while saving")

    monkeypatch.setattr(LocalFileOpener, "_real_write", LocalFileOpener.write, raising=False)
    monkeypatch.setattr(LocalFileOpener, "write", die_half_way)
    gan = ganzoo.hub.load_lightning_checkpoint(last).train()
    with pytest.raises(OSError, match="died while saving"):
        trainer(tmp_path, [StopAt(batches=4), ckpt]).fit(gan, data(), ckpt_path=last)
    monkeypatch.undo()
    assert last.read_bytes() == before
    assert ganzoo.hub.load_lightning_checkpoint(last).batches_seen == 2


def test_sample_quality_logs_fid_and_kid_without_changing_training(tmp_path):
    """metric/fid and metric/kid every 0.128 kimg; the run's weights and RNG are those of a run without it."""
    from lightning.pytorch.loggers import CSVLogger

    from ganzoo.callbacks import SampleQuality
    from tests.test_metrics import TinyFeatures

    quality = SampleQuality(every_n_kimg=0.128, num_samples=32, feature_net=TinyFeatures())
    gan = make()
    tr = trainer(tmp_path / "with", [StopAt(batches=32), quality])
    tr.loggers = [CSVLogger(tmp_path / "logs", name="run")]
    tr.fit(gan, data())
    with_metrics = snapshot(gan, tr)

    import csv

    with open(next((tmp_path / "logs").rglob("metrics.csv"))) as f:
        rows = list(csv.DictReader(f))
    fids = [float(r["metric/fid"]) for r in rows if r.get("metric/fid")]
    kids = [float(r["metric/kid"]) for r in rows if r.get("metric/kid")]
    assert len(fids) == len(kids) == 2  # at 128 and 256 images
    assert all(math.isfinite(v) for v in fids + kids) and fids[0] > 0
    # The values are FID/KID of the EMA generator's seeded samples against 32 training images.
    assert fids[-1] == pytest.approx(quality.measure(tr, gan)["fid"], rel=1e-9)

    gan = make()
    tr = trainer(tmp_path / "without", [StopAt(batches=32)])
    tr.fit(gan, data())
    assert_same(snapshot(gan, tr), with_metrics)


def test_a_resumed_run_keeps_the_recipe_it_runs():
    """ganzoo fit sets the recipe being run; resuming must not replace it with the checkpoint's earlier one."""
    gan = make()
    gan.training_config = "stop at 600 kimg"
    gan.on_load_checkpoint({"ganzoo": {"training_config": "stop at 1000 kimg", "images_seen": 64}})
    assert gan.training_config == "stop at 600 kimg" and gan.images_seen == 64
    fresh = make()  # loading a model folder or a checkpoint outside ganzoo fit: the checkpoint's recipe
    fresh.on_load_checkpoint({"ganzoo": {"training_config": "stop at 1000 kimg"}})
    assert fresh.training_config == "stop at 1000 kimg"


@pytest.mark.gpu
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_training_step_never_waits_for_the_gpu(variant, tmp_path, monkeypatch):
    """On CUDA with the default options, each variant's training_step and the module's end-of-batch bookkeeping run
    under torch's sync debug mode "error": any host sync (a .item(), a bool() of a device tensor) raises."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device (a lent GPU machine; CI has none)")
    from ganzoo import registry
    from tests.test_distributed import REGULARISED

    L.seed_everything(0, verbose=False)
    gan = registry.create(variant, **{**registry.get_variant(variant).tiny, **REGULARISED[variant]})
    for hook in ("training_step", "end_batch"):
        real = getattr(gan, hook)

        def strict(*args, _real=real, **kwargs):
            torch.cuda.set_sync_debug_mode("error")
            try:
                return _real(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")

        monkeypatch.setattr(gan, hook, strict)
    dm = Synthetic.matching(gan, num_images=64, batch_size=8)
    L.Trainer(accelerator="gpu", devices=1, max_epochs=1, limit_train_batches=6, logger=False,
              enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
              default_root_dir=tmp_path).fit(gan, dm)  # fmt: skip
    assert gan.batches_seen == 6


def _signal_config(path, ckpt_dir, stop_at: int, devices: int = 1):
    path.write_text(f"""
seed_everything: 0
model:
  class_path: ganzoo.models.dcgan.DCGAN
  init_args: {{latent_dim: 8, image_size: 8, image_channels: 1, base_channels: 4, ema_kimg: 0.01}}
data:
  class_path: ganzoo.data.Synthetic
  init_args: {{num_images: 512, image_size: 8, batch_size: 8}}
trainer:
  accelerator: cpu
  devices: {devices}
  max_epochs: 1000
  logger: false
  enable_progress_bar: false
  callbacks:
    - class_path: ganzoo.callbacks.GANCheckpoint
      init_args: {{dirpath: {ckpt_dir}, every_n_batches: 10, save_last: true}}
    - class_path: ganzoo.callbacks.StopAt
      init_args: {{batches: {stop_at}}}
""")
    return [sys.executable, "-m", "ganzoo.cli", "fit", "--config", str(path)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "devices"),
    [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2), (signal.SIGTERM, -2), (signal.SIGUSR1, 1)],
    ids=["SIGTERM", "SIGINT", "SIGTERM-2-processes", "SIGTERM-to-rank-1-only", "SIGUSR1-SLURM-requeue"],
)
def test_a_signalled_fit_saves_the_batch_it_is_in_and_resumes_exactly(sig, devices, tmp_path):
    """SIGTERM (a scheduler's pre-emption) or SIGINT (Ctrl-C) to a running `ganzoo fit`: a checkpoint at the
    current batch, one line saying how to resume, exit status 128 + signal; resuming ends bit-identical to a run
    that was never stopped. With 2 processes the signal goes to rank 0 (which passes it on), or to rank 1 alone:
    the ranks agree after every batch, so both stop at the same one. Under SLURM (its environment variables and
    an `scontrol` on the PATH that records its arguments) the requeue signal, SIGUSR1, also requeues the job,
    and the requeued job's command, with --ckpt_path last-or-new, resumes it."""
    to_rank_1, devices = devices < 0, abs(devices)
    cmd = _signal_config(tmp_path / "run.yaml", tmp_path / "ckpt", stop_at=100_000, devices=devices)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if sig == signal.SIGUSR1:
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
        (tmp_path / "bin" / "scontrol").chmod(0o755)
        env.update(PATH=f"{tmp_path / 'bin'}:{env['PATH']}", SLURM_NTASKS="1", SLURM_JOB_NAME="train",
                   SLURM_JOB_ID="4242", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0",
                   SLURM_NODELIST="localhost")  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 180
        while not list((tmp_path / "ckpt").glob("kimg=*-batch=20.ckpt")) and time.time() < deadline:
            time.sleep(0.1)
        target = proc.pid
        if to_rank_1:  # the process Lightning started for rank 1
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            assert len(children) == 1
            target = int(children[0])
        os.kill(target, sig)
        stderr = proc.communicate(timeout=180)[1]
    finally:  # a run that does not stop must not outlive the test, nor its rank-1 process
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + sig.value, stderr[-3000:]
    assert "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("ganzoo fit: stopped by")]
    assert f"stopped by {sig.name} at batch " in line and "--ckpt_path " + str(tmp_path / "ckpt" / "last.ckpt") in line
    stopped = ganzoo.hub.load_lightning_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    assert stopped.batches_seen >= 20 and f"at batch {stopped.batches_seen} " in line
    end = stopped.batches_seen + 7
    ckpt_path = str(tmp_path / "ckpt" / "last.ckpt")
    if sig == signal.SIGUSR1:
        assert "; requeued SLURM job 4242." in line
        assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
        ckpt_path = "last-or-new"

    resume = _signal_config(tmp_path / "run.yaml", tmp_path / "ckpt", stop_at=end, devices=devices)
    out = subprocess.run([*resume, "--ckpt_path", ckpt_path], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    if sig == signal.SIGUSR1:  # it says which checkpoint it resumes
        assert f"from {tmp_path / 'ckpt' / 'last.ckpt'} (saved " in out.stderr
    straight = _signal_config(tmp_path / "straight.yaml", tmp_path / "straight", stop_at=end, devices=devices)
    out = subprocess.run(straight, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = (torch.load(tmp_path / d / "last.ckpt", weights_only=True) for d in ("ckpt", "straight"))
    assert a["ganzoo"]["batches_seen"] == b["ganzoo"]["batches_seen"] == end
    for key, value in b["state_dict"].items():
        torch.testing.assert_close(a["state_dict"][key], value, rtol=0, atol=0, msg=key)
    assert_same_optimizer_states(a["optimizer_states"], b["optimizer_states"])
