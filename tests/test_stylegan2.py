"""StyleGAN2: parity with NVIDIA's code on ../shared/fixtures, the safe pickle reader, sampling options."""

import os
import pickle
import sys
import types
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo import convert, losses
from ganzoo.models.stylegan2 import Discriminator, Generator, StyleGAN2, diff_augment

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def fixture():
    path = FIXTURES / "stylegan2_uncond32.pt"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def snapshot():
    path = FIXTURES / "network-snapshot.pkl"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return path


def assert_matches_upstream(G, D, ref):
    with torch.no_grad():
        torch.testing.assert_close(G.mapping(ref["z"], ref["c"]), ref["ws"], atol=1e-6, rtol=1e-6)
        ws_trunc = G.mapping(ref["z"], ref["c"], truncation_psi=ref["truncation_psi"], truncation_cutoff=None)
        torch.testing.assert_close(ws_trunc, ref["ws_trunc"], atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(G.synthesis(ref["ws"], noise_mode="const"), ref["img_const"], **TOL)
        torch.testing.assert_close(G.synthesis(ref["ws"], noise_mode="none"), ref["img_none"], **TOL)
        torch.testing.assert_close(G.synthesis(ref["ws_trunc"], noise_mode="const"), ref["img_trunc_const"], **TOL)
        whole = G(ref["z"], ref["c"], truncation_psi=0.7, noise_mode="const", force_fp32=True)
        torch.testing.assert_close(whole, ref["img_trunc_const"], **TOL)
        torch.testing.assert_close(D(ref["img_const"], ref["c"]), ref["logits"], **TOL)


def test_parity_with_upstream_from_the_state_dicts(fixture):
    G = Generator(**fixture["G_kwargs"]).eval()
    D = Discriminator(**fixture["D_kwargs"]).eval()
    # Upstream's key names, as they are: no key map.
    G.load_state_dict(fixture["G_ema_state_dict"], strict=True)
    D.load_state_dict(fixture["D_state_dict"], strict=True)
    assert G.num_ws == fixture["num_ws"]
    assert_matches_upstream(G, D, fixture)
    # The noise matters (so the const test means something) and so does truncation.
    assert (fixture["img_const"] - fixture["img_none"]).abs().max() > 1


def test_parity_with_upstream_from_the_snapshot_pickle(fixture, snapshot):
    gan = ganzoo.from_upstream(snapshot, variant="stylegan2")
    assert isinstance(gan, StyleGAN2) and not gan.training
    assert gan.hparams.latent_dim == 32 and gan.hparams.mapping_layers == 2 and gan.hparams.channel_max == 32
    assert gan.hparams.mbstd_group_size == 2 and gan.hparams.conv_clamp is None
    assert_matches_upstream(gan.generator_ema, gan.discriminator, fixture)
    # G is the raw training generator (a perturbed copy here): it went to gan.generator, not to the EMA.
    raw = convert.read_nvidia_pickle(snapshot)["G"].state_dict()
    for k, v in gan.generator.state_dict().items():
        torch.testing.assert_close(v, raw[k], rtol=0, atol=0)
    assert any(not torch.equal(raw[k], fixture["G_ema_state_dict"][k]) for k in raw)
    # sample() is the EMA generator: the same image as upstream's G(z) for the same z.
    with torch.no_grad():
        img = gan.generate(gan.generator_ema, fixture["z"])
    torch.testing.assert_close(img, fixture["img_const"].clamp(-1e9, 1e9), **TOL)


def test_snapshot_reader_returns_plain_data(snapshot):
    data = convert.read_nvidia_pickle(snapshot)
    assert list(data) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    assert data["training_set_kwargs"]["resolution"] == 32
    g = data["G_ema"]
    assert isinstance(g, convert.PersistentObject) and g.class_name.endswith("Generator")
    assert g.init_kwargs["mapping_kwargs"] == {"num_layers": 2}
    assert all(type(v) is torch.Tensor for v in g.state_dict().values())  # not Parameters


class _Payload:
    """Pickles as a call of ``func(*args)`` at load time: what a hostile file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_a_hostile_pickle_is_refused_and_its_payload_never_runs(tmp_path, snapshot):
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(pickle.dumps({"G_ema": _Payload(os.system, f"touch {marker}")}, protocol=3))
    with pytest.raises(convert.UnsafePickleError, match=r"refusing to load (posix|os|nt)\.system"):
        convert.read_nvidia_pickle(hostile)
    with pytest.raises(convert.UnsafePickleError):
        ganzoo.from_upstream(hostile, variant="stylegan2")
    # The same payload through eval, and an unknown class.
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    (tmp_path / "eval.pkl").write_bytes(pickle.dumps(_Payload(eval, code), protocol=3))
    with pytest.raises(convert.UnsafePickleError, match="builtins.eval"):
        convert.read_nvidia_pickle(tmp_path / "eval.pkl")
    (tmp_path / "module.pkl").write_bytes(pickle.dumps(torch.nn.Linear, protocol=3))
    with pytest.raises(convert.UnsafePickleError, match="torch.nn.modules.linear.Linear"):
        convert.read_nvidia_pickle(tmp_path / "module.pkl")
    assert not marker.exists()

    # A persistent network whose embedded source is hostile: the record is read, the source never runs.
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # the name NVIDIA's files reference
        raise AssertionError("only called when loading with upstream code")

    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    sys.modules.update({"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence})
    try:
        source = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        meta = {"type": "class", "version": 6, "module_src": source, "class_name": "training.networks.Generator",
                "state": {"_parameters": {}, "_buffers": {}, "_modules": {}}}  # fmt: skip
        (tmp_path / "src.pkl").write_bytes(pickle.dumps({"G_ema": _Payload(_reconstruct_persistent_obj, meta)}))
    finally:
        del sys.modules["torch_utils"], sys.modules["torch_utils.persistence"]
    record = convert.read_nvidia_pickle(tmp_path / "src.pkl")["G_ema"]
    assert record.class_name == "training.networks.Generator" and len(record.source_sha256) == 64
    assert not marker.exists()

    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(snapshot.read_bytes()[:5000])
    with pytest.raises(ganzoo.hub.CheckpointError, match="truncated"):
        ganzoo.from_upstream(truncated, variant="stylegan2")


def tiny(**overrides) -> StyleGAN2:
    torch.manual_seed(0)
    return StyleGAN2(**{**dict(image_size=16, latent_dim=8, w_dim=8, mapping_layers=2, channel_base=128,
                               channel_max=16, mbstd_group_size=2, ema_kimg=0.01), **overrides})  # fmt: skip


def test_truncation_and_style_mixing():
    gan = tiny()
    with torch.no_grad():
        gan.generator_ema.mapping.w_avg.normal_()
    full, half, none = (gan.sample(4, seed=1, truncation_psi=psi) for psi in (1.0, 0.5, 0.0))
    # psi = 0 gives every sample the average w: one image.
    torch.testing.assert_close(none, none[:1].expand_as(none))
    assert (full - half).abs().max() > 1e-3
    coarse = gan.sample(4, seed=1, truncation_psi=0.0, truncation_cutoff=2)
    assert (coarse - none).abs().max() > 1e-3  # the fine styles keep their own w
    grid = gan.style_mix([1, 2], [3, 4, 5], styles=slice(0, 3))
    assert grid.shape == (6, 3, 16, 16)
    # Row seed 1 with column styles 0:3 of seed 3 differs from seed 1 alone; mixing no layer gives seed 1.
    alone = gan.style_mix([1], [3], styles=slice(0, 0))
    torch.testing.assert_close(alone[0], gan.sample(1, seed=1)[0], atol=1e-5, rtol=1e-5)


def test_conditional_labels_are_checked_and_used():
    gan = tiny(num_classes=3)
    a, b = gan.sample(2, seed=0, labels=[0, 0]), gan.sample(2, seed=0, labels=[2, 2])
    assert (a - b).abs().max() > 1e-4
    with pytest.raises(ValueError, match=r"class ids \[3\] out of range: this StyleGAN2 has 3 classes"):
        gan.sample(2, seed=0, labels=[0, 3])
    with pytest.raises(ValueError, match="expected 2 class ids"):
        gan.sample(2, seed=0, labels=[0])
    with pytest.raises(ValueError, match="unconditional"):
        tiny().sample(2, labels=[0, 1])
    logits = gan.discriminator(a, gan.one_hot([0, 1], 2))
    assert logits.shape == (2, 1)


def test_r1_and_path_length_penalties():
    # D(x) = <a, x>: the gradient is a everywhere, so R1 = |a|^2.
    a = torch.randn(3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    r1 = losses.r1_penalty((x * a).sum(dim=(1, 2, 3)), x)
    torch.testing.assert_close(r1, a.square().sum())
    # A generator linear in w, fake = (sum_i w_i) W^T: the gradient for every style is W^T y, so the length is
    # |W^T y| for the noise y the function draws (reproduced here from the same seed).
    ws = torch.randn(6, 2, 4, requires_grad=True)
    weight = torch.randn(8, 4)
    fake = (ws.sum(dim=1) @ weight.t()).view(6, 2, 2, 2)
    pl_mean = torch.full([], 1.0)
    torch.manual_seed(0)
    penalty, lengths = losses.path_length_penalty(fake, ws, pl_mean, decay=0.25)
    torch.manual_seed(0)
    y = torch.randn(6, 2, 2, 2) / 2
    expected = (y.view(6, 8) @ weight).norm(dim=1)
    torch.testing.assert_close(lengths, expected)
    mean = 1.0 + 0.25 * (expected.mean() - 1.0)
    torch.testing.assert_close(pl_mean, mean)
    torch.testing.assert_close(penalty, (expected - mean).square().mean())


def test_diff_augment_keeps_shapes_and_gradients():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown DiffAugment op"):
        diff_augment(x, "flip")


def test_training_with_regularisation_and_augmentation_steps(tmp_path):
    import lightning as L

    from ganzoo.data import Synthetic

    gan = tiny(augment="color,translation,cutout", g_reg_interval=2, d_reg_interval=2)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, limit_train_batches=3, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(gan, Synthetic(num_images=24, image_channels=3, image_size=16, batch_size=8))
    m = trainer.callback_metrics
    assert {"loss/d", "loss/g", "penalty/r1", "penalty/pl"} <= set(m)
    assert all(torch.isfinite(m[k]) for k in ("loss/d", "loss/g", "penalty/r1", "penalty/pl"))
    assert gan.pl_mean > 0 and gan.batches_seen == 3
    # Lazy regularisation adjusts Adam: lr * k / (k + 1), beta ** (k / (k + 1)).
    opt_g = trainer.optimizers[0]
    assert opt_g.param_groups[0]["lr"] == pytest.approx(0.0025 * 2 / 3)
    assert opt_g.param_groups[0]["betas"][1] == pytest.approx(0.99 ** (2 / 3))


def test_nvidia_weights_without_network_name_the_url_and_load_from_the_cache(snapshot, tmp_path, monkeypatch, capsys):
    import json
    import shutil
    import socket

    from ganzoo import hub

    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)  # the machine's boundary: no name resolves
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "_LICENCES_SHOWN", set())
    url = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ffhq.pkl"
    target = tmp_path / "upstream" / "stylegan2-ffhq-1024.pkl"
    with pytest.raises(hub.HubError, match=f"could not download {url}.*put it at {target}"):
        ganzoo.load("stylegan-ffhq")

    # A user puts the file where the message says (here: the fixture snapshot in its place); it loads offline.
    shutil.copy(snapshot, target)
    gan = ganzoo.load("stylegan-ffhq")
    reference = ganzoo.from_upstream(snapshot, variant="stylegan2")
    torch.testing.assert_close(gan.sample(3, seed=0), reference.sample(3, seed=0), rtol=0, atol=0)
    assert json.loads((tmp_path / "upstream" / "sha256.json").read_text()) == {url: hub.file_sha256(snapshot)}
    card = (tmp_path / "upstream" / "stylegan2-ffhq-1024" / "README.md").read_text()
    assert "license: nvidia-source-code-license-nc" in card and "non-commercial" in card
    # Converted once: the next load reads the converted folder, not the pickle.
    target.unlink()
    again = ganzoo.load("stylegan2-ffhq-1024")
    torch.testing.assert_close(again.sample(3, seed=0), reference.sample(3, seed=0), rtol=0, atol=0)
    assert capsys.readouterr().err.count("NVIDIA Source Code License") == 1  # the licence, printed once

    # A replaced file no longer matches the sha256 recorded at the first download.
    shutil.rmtree(tmp_path / "upstream" / "stylegan2-ffhq-1024")
    target.write_bytes(snapshot.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(hub.HubError, match="does not have the expected sha256"):
        ganzoo.load("stylegan-ffhq")
    info = hub.info("stylegan-ffhq")
    assert info["license"] == "nvidia-source-code-license-nc" and info["url"] == url


def test_cli_samples_per_seed_with_truncation_and_writes_a_mixing_grid(tmp_path, capsys):
    from PIL import Image

    from ganzoo import cli

    gan = tiny()
    folder = ganzoo.save_pretrained(gan, tmp_path / "sg2", num_samples=4)
    out = tmp_path / "seeds.png"
    assert cli.main(["sample", str(folder), "--seed", "1,2,3", "--truncation", "0.7", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (2 + 2 * 18, 2 + 2 * 18)  # 3 images in a 2x2 grid of 16 px + padding
    assert cli.main(["mix", str(folder), "--rows", "1,2", "--cols", "3,4,5", "--styles", "0-3", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert im.size == (2 + 4 * 18, 2 + 3 * 18)  # (1 + 3 columns) x (1 + 2 rows)
    # The first mixed cell is style_mix's, under the column sources and beside the row source.
    grid = torch.from_numpy(__import__("numpy").asarray(Image.open(out).convert("RGB"))).permute(2, 0, 1)
    cell = grid[:, 2 + 18 : 2 + 18 + 16, 2 + 18 : 2 + 18 + 16]
    expected = ganzoo.gan.to_uint8(gan.style_mix([1], [3], styles=slice(0, 3)))[0]
    assert (cell.int() - expected.int()).abs().max() <= 1
    capsys.readouterr()
    dcgan_dir = ganzoo.save_pretrained(ganzoo.create("dcgan", latent_dim=4, image_size=8, base_channels=2),
                                       tmp_path / "dc", num_samples=1)  # fmt: skip
    assert cli.main(["mix", str(dcgan_dir)]) == 1 and "needs a StyleGAN2" in capsys.readouterr().err
    assert cli.main(["sample", str(dcgan_dir), "--truncation", "0.5"]) == 1
    assert "has no truncation" in capsys.readouterr().err


def test_a_seed_means_what_it_means_in_nvidias_generate_script():
    import numpy as np

    gan = tiny()
    z = torch.from_numpy(np.random.RandomState(85).randn(1, 8)).float()
    with torch.no_grad():
        expected = gan.generator_ema(z, None, truncation_psi=0.5, noise_mode="const").clamp(-1, 1)
    torch.testing.assert_close(gan.sample(1, seed=85, truncation_psi=0.5), expected)


def test_from_upstream_refuses_what_it_does_not_build(snapshot):
    data = convert.read_nvidia_pickle(snapshot)
    data["D"].state["_init_kwargs"]["block_kwargs"]["freeze_layers"] = 2  # fine-tuning switch: ignored
    data["G_ema"].state["_init_kwargs"]["synthesis_kwargs"]["fused_modconv_default"] = "inference_only"
    assert isinstance(StyleGAN2.from_upstream(data), StyleGAN2)
    data["G_ema"].state["_init_kwargs"]["synthesis_kwargs"]["architecture"] = "resnet"
    with pytest.raises(ValueError, match="'architecture': 'resnet'"):
        StyleGAN2.from_upstream(data)
    data = convert.read_nvidia_pickle(snapshot)
    data["G_ema"].class_name = "training.networks_stylegan3.Generator"
    with pytest.raises(ValueError, match="alias-free StyleGAN3"):
        StyleGAN2.from_upstream(data)
    with pytest.raises(ValueError, match="no G_ema"):
        StyleGAN2.from_upstream({"G": data["G"]})
