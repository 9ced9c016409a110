"""ProGAN: parity with pytorch_GAN_zoo's files (../shared/fixtures), the safe reader, and growing inside Lightning:
new layers in the optimizers and the EMA, frozen unused layers, exact resume mid-fade and across a stage boundary."""

import os
import pickle
import sys
import types

import lightning as L
import pytest
import torch

import ganzoo
from ganzoo import convert, registry
from ganzoo.callbacks import GANCheckpoint, StopAt
from ganzoo.data import Synthetic
from tests.conftest import accept_stand_in, fixture_path
from tests.test_training import assert_same, snapshot, trainer

HUB_FILE = "progan_32px_hub.pth"


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(fixture_path("progan_32px.pt"), weights_only=True)


def zoo_config_class() -> type:
    """A class named as pytorch_GAN_zoo's ``models.utils.config.BaseConfig``, to write files in its layout."""
    module = types.ModuleType("models.utils.config")
    cls = type("BaseConfig", (), {"__module__": "models.utils.config"})
    module.BaseConfig = cls
    return module, cls


def write_zoo_file(path, data: dict, *, legacy: bool = False) -> os.PathLike:
    """``torch.save`` of ``data`` with its ``config`` dict as the zoo's config object (zip or legacy format)."""
    module, cls = zoo_config_class()
    names = ("models", "models.utils", "models.utils.config")
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update({"models": types.ModuleType("models"), "models.utils": types.ModuleType("models.utils"),
                        "models.utils.config": module})  # fmt: skip
    try:
        config = cls()
        config.__dict__.update(data["config"])
        torch.save({**data, "config": config}, path, _use_new_zipfile_serialization=not legacy)
    finally:
        for n, m in saved.items():
            sys.modules.pop(n) if m is None else sys.modules.__setitem__(n, m)
    return path


def assert_matches_zoo(gan, ref) -> None:
    with torch.no_grad():
        torch.testing.assert_close(gan.generator_ema(ref["z"]), ref["img"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gan.discriminator(ref["img"]), ref["d_out"], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(gan.generator(ref["z"]), ref["img"], atol=1e-2)  # netG is the raw one


def test_a_zoo_hub_file_loads_exactly_with_avg_g_as_the_ema_generator(reference):
    gan = ganzoo.from_upstream(fixture_path(HUB_FILE), variant="progan")
    hp = gan.hparams
    assert (hp.latent_dim, hp.image_size, hp.channels, hp.mbstd, hp.output_activation) == (
        32,
        32,
        [32, 32, 16, 16],
        True,
        None,
    )
    assert gan.stage == 3 and float(gan.alpha) == 1.0 and gan.untrained_parts == set()
    assert_matches_zoo(gan, reference)
    # sample() uses the EMA generator: the zoo's test(z, getAvG=True).
    torch.testing.assert_close(
        gan.generate(gan.sampling_generator, reference["z"]), reference["img"], rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-serialisation"])
@pytest.mark.parametrize("layout", ["module-segment", "older-keys"])
def test_zoo_files_in_both_serialisations_and_both_key_layouts_load_exactly(reference, tmp_path, legacy, layout):
    data = convert.read(fixture_path(HUB_FILE), "pytorch-gan-zoo")
    if layout == "older-keys":  # files from before the equalized layers wrapped a .module
        data = {
            k: {n.replace(".module.", "."): t for n, t in v.items()} if k != "config" else v for k, v in data.items()
        }
    path = write_zoo_file(tmp_path / "zoo.pth", data, legacy=legacy)
    assert_matches_zoo(ganzoo.from_upstream(path, variant="progan"), reference)


def test_a_converted_zoo_model_fine_tunes_at_its_final_resolution(tmp_path):
    """Its growing is over (its schedule starts at the last stage): the data come at 32x32 and every layer that
    stage uses trains; a model whose schedule lags its stage is refused with what to set."""
    gan = ganzoo.from_upstream(fixture_path(HUB_FILE), variant="progan")
    before = {k: v.clone() for k, v in gan.generator.state_dict().items()}
    trainer(tmp_path, [StopAt(batches=1)]).fit(
        gan, Synthetic(num_images=16, image_size=32, image_channels=3, batch_size=8)
    )
    assert gan.stage == 3 and not torch.equal(before["blocks.2.1.weight"], gan.generator.blocks[2][1].weight)
    lagging = build()
    lagging.grow()
    with pytest.raises(RuntimeError, match="at stage 1 .*schedule puts 0 images seen at stage 0"):
        trainer(tmp_path, [StopAt(batches=1)]).fit(lagging, data())


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.parametrize("hostile", ["reduce-payload", "extra-global"])
def test_a_hostile_zoo_file_is_refused_and_its_payload_never_runs(tmp_path, hostile, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = convert.read(fixture_path(HUB_FILE), "pytorch-gan-zoo")
    data["extra"] = Payload() if hostile == "reduce-payload" else types.SimpleNamespace(a=1)
    path = write_zoo_file(tmp_path / "hostile.pth", data)
    with pytest.raises(convert.UnsafePickleError, match="names code"):
        ganzoo.from_upstream(path, variant="progan")
    assert not (tmp_path / "PWNED").exists()


def test_a_zoo_file_of_another_model_is_refused_by_name(tmp_path):
    data = convert.read(fixture_path(HUB_FILE), "pytorch-gan-zoo")
    data["config"] = {**data["config"], "categoryVectorDim": 4}
    with pytest.raises(ValueError, match="conditional"):
        ganzoo.from_upstream(write_zoo_file(tmp_path / "c.pth", data), variant="progan")


def test_an_official_entry_offline_names_the_url_then_converts_the_placed_file(tmp_path, monkeypatch, reference):
    """progan-celebahq-256 offline with nothing cached fails in one line naming the zoo's URL and where to put the
    file; with a zoo file placed there (the fixture standing in for the 264 MB release) it converts and samples
    from avgG, and its card names the licence and source."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    with pytest.raises(ganzoo.hub.HubError) as error:
        ganzoo.load("progan-celebahq-256")
    message = str(error.value)
    url = "https://dl.fbaipublicfiles.com/gan_zoo/PGAN/celebaHQ_s6_i80000-6196db68.pth"
    assert "\n" not in message and url in message
    target = tmp_path / "upstream" / "progan-celebahq-256.pth"
    assert f"put it at {target}" in message
    target.write_bytes(fixture_path(HUB_FILE).read_bytes())
    accept_stand_in(monkeypatch, "progan-celebahq-256", target)  # refused first: the name's sha256 head differs
    gan = ganzoo.load("progan-celebahq-256")
    assert gan.sample(8, seed=0).shape == (8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gan.generator_ema(reference["z"]), reference["img"], rtol=1e-5, atol=1e-5)
    info = ganzoo.hub.info("progan-celebahq-256")
    assert info["license"] == "bsd-3-clause" and "pytorch_GAN_zoo" in info["source"]


# Growing --------------------------------------------------------------------------------------------------------

TINY = registry.get_variant("progan").tiny  # 16x16: stage 0 for 8 images, then fades of 16 and stable phases of 8


def build(**overrides):
    L.seed_everything(0, verbose=False)
    return ganzoo.create("progan", **{**TINY, **overrides})


def data():
    return Synthetic(num_images=40, image_size=16, image_channels=3, batch_size=8)


def test_the_schedule_runs_stage_by_stage_on_the_images_seen():
    gan = build()
    assert [gan.schedule(n) for n in (0, 7, 8, 16, 23, 24, 31, 32, 40, 48, 10_000)] == [
        (0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 0.9375), (1, 1.0), (1, 1.0), (2, 0.0), (2, 0.5), (2, 1.0), (2, 1.0)
    ]  # fmt: skip
    assert [(r["resolution"], r["fade_from_kimg"], r["stable_from_kimg"]) for r in gan.stage_table()] == [
        (4, 0.0, 0.0), (8, 0.008, 0.024), (16, 0.032, 0.048)
    ]  # fmt: skip


def test_growing_at_alpha_0_changes_neither_network_and_the_reals_fade_alike():
    """The fade starts where the last stage ended: right after growing, at alpha 0, G's output is the previous
    stage's upsampled (nearest) and D scores an image as the previous D scores it downsampled (2x2 mean); the reals
    are the data box-filtered to the stage's size and faded the same way."""
    import torch.nn.functional as F

    gan = build()
    gan.grow()
    gan.set_alpha(1.0)
    z, x = torch.randn(4, 8), torch.rand(4, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        before_g, before_d = gan.generator(z), gan.discriminator(F.interpolate(x, size=8, mode="area"))
        gan.grow()
        gan.set_alpha(0.0)
        torch.testing.assert_close(gan.generator(z), F.interpolate(before_g, scale_factor=2, mode="nearest"))
        torch.testing.assert_close(gan.discriminator(x), before_d)
        gan.set_alpha(0.25)
        assert not torch.allclose(gan.generator(z), F.interpolate(before_g, scale_factor=2, mode="nearest"))
    gan = build()
    gan.grow()
    gan.set_alpha(0.25)
    low = F.interpolate(F.interpolate(x, size=4, mode="area"), size=8, mode="nearest")
    expected = 0.25 * F.interpolate(x, size=8, mode="area") + 0.75 * low
    torch.testing.assert_close(gan.reals_at_stage(x), expected)


def test_fitting_grows_twice_and_trains_every_layer_the_stage_uses():
    gan = build()
    seen = []
    grads = {}

    class Probe(L.Callback):
        def on_before_optimizer_step(self, trainer, module, optimizer):
            for name, p in module.named_parameters():
                if p.grad is not None and p.grad.abs().sum() > 0:
                    grads.setdefault(module.stage, set()).add(name)

        def on_train_batch_end(self, trainer, module, *args):
            seen.append((module.stage, module._alpha, tuple(module.sample(2, seed=0).shape)))

    tr = trainer(None, [StopAt(batches=7), Probe()])
    tr.fit(gan, data())
    assert [s[:2] for s in seen] == [(0, 1.0), (1, 0.0), (1, 0.5), (1, 1.0), (2, 0.0), (2, 0.5), (2, 1.0)]
    assert [s[2][-1] for s in seen] == [4, 8, 8, 8, 16, 16, 16]  # sample() at the current resolution
    # Every parameter of the grown networks that the last stage uses has had a gradient there; the others are the
    # to_rgb/from_rgb of earlier resolutions, frozen.
    trainable = {n for n, p in gan.named_parameters() if p.requires_grad}
    assert trainable and trainable <= grads[2]
    frozen = {n for n, p in gan.named_parameters() if not p.requires_grad and not n.startswith("generator_ema.")}
    assert frozen == {f"{net}.{rgb}.{i}.{w}" for net, rgb in (("generator", "to_rgb"), ("discriminator", "from_rgb"))
                      for i in (0, 1) for w in ("weight", "bias")}  # fmt: skip
    # Each growth appended a parameter group and kept the Adam state of the old parameters (their step counts run on
    # from the first batch; the new ones' from their stage's).
    opt_g, opt_d = tr.optimizers
    assert len(opt_g.param_groups) == len(opt_d.param_groups) == 3
    steps = [float(opt_g.state[g["params"][0]]["step"]) for g in opt_g.param_groups]
    assert steps == [7.0, 6.0, 3.0]
    # The EMA generator grew with the generator and follows it.
    assert [k for k, _ in gan.generator_ema.named_parameters()] == [k for k, _ in gan.generator.named_parameters()]
    assert not torch.equal(gan.generator_ema.blocks[1][0].weight, gan.generator.blocks[1][0].weight)


@pytest.mark.parametrize("stop", [3, 5], ids=["mid-fade", "mid-fade-after-a-stage-boundary"])
def test_a_run_stopped_mid_fade_resumes_exactly(tmp_path, stop):
    """Stop in the middle of a fade (alpha 0.5 at batch 3 of stage 1, or at batch 5, the first of stage 2's fade) and
    resume to the end of stage 2's fade and into its stable phase: networks, alpha, optimizers with their added
    groups, EMA, clock and RNG equal an uninterrupted run bit for bit."""
    straight = build()
    tr = trainer(tmp_path / "straight", [StopAt(batches=8)])
    tr.fit(straight, data())
    expected = snapshot(straight, tr)
    first = build()
    trainer(tmp_path / "first", [StopAt(batches=stop), GANCheckpoint(dirpath=tmp_path / "ckpt")]).fit(first, data())
    assert first._alpha < 1
    resumed = build()
    tr = trainer(tmp_path / "resumed", [StopAt(batches=8)])
    tr.fit(resumed, data(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert resumed.stage == 2 and float(resumed.alpha) == 1.0
    assert_same(expected, snapshot(resumed, tr))
    assert set(expected["state"]) == set(resumed.state_dict())


def test_a_partly_trained_model_saves_and_loads_at_its_stage_and_alpha(tmp_path):
    gan = build()
    trainer(tmp_path, [StopAt(batches=3)]).fit(gan, data())
    assert (gan.stage, gan._alpha) == (1, 0.5)
    folder = ganzoo.save_pretrained(gan, tmp_path / "model")
    training = ganzoo.hub.info(str(folder))["training"]  # what `ganzoo info` shows of where the growth is
    assert (training["stage"], training["resolution"], training["alpha"]) == (1, 8, 0.5)
    loaded = ganzoo.load(folder)
    assert (loaded.stage, loaded._alpha) == (1, 0.5)
    torch.testing.assert_close(loaded.sample(4, seed=1), gan.sample(4, seed=1), rtol=0, atol=0)
    assert loaded.sample(1).shape[-1] == 8 and loaded.preview(2)[0].shape[-1] == 16  # preview at the final size


def test_the_zoo_reader_allows_only_its_config_class(tmp_path):
    # The stand-in is allow-listed under the zoo's name only: a file naming another config class is refused.
    data = convert.read(fixture_path(HUB_FILE), "pytorch-gan-zoo")
    torch.save({**data, "config": types.SimpleNamespace(**data["config"])}, tmp_path / "other.pth")
    with pytest.raises(convert.UnsafePickleError):
        convert.read(tmp_path / "other.pth", "pytorch-gan-zoo")
    assert pickle.loads(pickle.dumps(data["config"])) == data["config"]  # the config comes back as plain data


def test_the_shipped_model_shows_its_stages_and_samples_at_its_final_resolution(capsys):
    from ganzoo import cli

    info = ganzoo.hub.info("progan-mnist-32")
    training = info["training"]
    assert (training["stage"], training["resolution"], training["alpha"]) == (3, 32, 1.0)
    assert [row["resolution"] for row in training["schedule"]] == [4, 8, 16, 32]
    assert training["images_seen"] >= 1000 * training["schedule"][-1]["stable_from_kimg"]
    assert cli.main(["info", "progan-mnist-32"]) in (0, None)
    assert '"schedule"' in capsys.readouterr().out
    gan = ganzoo.load("progan-mnist-32")
    assert gan.sample(2, seed=0).shape == (2, 1, 32, 32)


def test_the_batch_size_follows_the_stage_and_a_resume_mid_epoch_stays_exact(tmp_path):
    """batch_sizes [8, 4, 2]: the data serves 8 images of 4x4, then 4 of 8x8, then 2 of 16x16, in passes of 40
    images whatever the sizes; runs stopped within a pass at each size, and at a pass's last batch, resume to the
    straight run's state, also when resumed twice."""
    sizes = []

    class Sizes(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            sizes.append(tuple(batch[0].shape[i] for i in (0, -1)))

    straight = build(batch_sizes=[8, 4, 2])
    tr = trainer(tmp_path / "straight", [StopAt(batches=16), Sizes()])
    tr.fit(straight, data())
    assert sizes == [(8, 4)] + [(4, 8)] * 6 + [(2, 16)] * 9  # (batch, side): served at the stage's resolution
    assert straight.images_seen == 40 + 10
    expected = snapshot(straight, tr)
    for stop in (4, 11, 13):
        first = build(batch_sizes=[8, 4, 2])
        ckpt = tmp_path / f"ckpt{stop}"
        trainer(tmp_path / f"first{stop}", [StopAt(batches=stop), GANCheckpoint(dirpath=ckpt)]).fit(first, data())
        resumed = build(batch_sizes=[8, 4, 2])
        tr = trainer(tmp_path / f"resumed{stop}", [StopAt(batches=16)])
        tr.fit(resumed, data(), ckpt_path=ckpt / "last.ckpt")
        assert_same(expected, snapshot(resumed, tr))
    # Resumed twice: from the epoch's end (11), stopped again mid-epoch (14), resumed to the end.
    again = build(batch_sizes=[8, 4, 2])
    ckpt = tmp_path / "ckpt-again"
    tr = trainer(tmp_path / "again", [StopAt(batches=14), GANCheckpoint(dirpath=ckpt)])
    tr.fit(again, data(), ckpt_path=tmp_path / "ckpt11" / "last.ckpt")
    last = build(batch_sizes=[8, 4, 2])
    tr = trainer(tmp_path / "last", [StopAt(batches=16)])
    tr.fit(last, data(), ckpt_path=ckpt / "last.ckpt")
    assert_same(expected, snapshot(last, tr))


@pytest.mark.slow
def test_two_ranks_resume_exactly_with_batch_sizes_per_stage(tmp_path):
    """2 processes under gan_ddp, 4 images a process at 4x4 and 2 from 8x8 on (64 images, 15 batches a pass):
    stopped mid-fade (batch 4) and at the pass's last batch (15), resumed to batch 17 == 17 straight, on both
    ranks (weights, optimizers with their added groups, RNG)."""
    from tests.conftest import assert_same_optimizer_states
    from tests.test_distributed import REGULARISED, run_workers

    hp = {**REGULARISED["progan"], "batch_sizes": [4, 2, 2]}
    straight = run_workers(tmp_path / "straight", devices=2, batch=8, variant="progan", hparams=hp, batches=17)
    assert [r["images_seen"] for r in straight] == [8 + 16 * 4] * 2
    for stop in (4, 15):
        ckpt = ("--ckpt-dir", str(tmp_path / f"ckpt{stop}"))
        run_workers(
            tmp_path / f"first{stop}", devices=2, batch=8, variant="progan", hparams=hp, batches=stop, extra=ckpt
        )
        resumed = run_workers(tmp_path / f"resumed{stop}", devices=2, batch=8, variant="progan", hparams=hp,
                              batches=17, extra=(*ckpt, "--resume"))  # fmt: skip
        for a, b in zip(straight, resumed, strict=True):
            for key, value in a["state"].items():
                torch.testing.assert_close(b["state"][key], value, rtol=0, atol=0, msg=key)
            assert_same_optimizer_states(a["optimizers"], b["optimizers"])
            assert torch.equal(a["torch_rng"], b["torch_rng"])
