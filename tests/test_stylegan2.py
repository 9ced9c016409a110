"""StyleGAN2: parity with NVIDIA's code (../shared/fixtures and tests/fixtures), the safe pickle reader and
NVIDIA's init arguments, the training phases, style mixing, DiffAugment and sampling options."""

import contextlib
import json
import math
import os
import pickle
import re
import sys
import types
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import Tensor

import ganzoo
from ganzoo import convert, losses
from ganzoo.hub import from_upstream_data
from ganzoo.layers import pixel_norm
from ganzoo.models.stylegan2 import (
    Discriminator,
    Generator,
    StyleGAN2,
    SynthesisLayer,
    ToRGBLayer,
    diff_augment,
)
from tests.conftest import fixture_path

COMMITTED = Path(__file__).resolve().parent / "fixtures"
TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def fixture():
    return torch.load(fixture_path("stylegan2_uncond32.pt"), weights_only=True)


@pytest.fixture(scope="module")
def snapshot():
    return fixture_path("network-snapshot.pkl")


@pytest.fixture(scope="module")
def cond_fixture():
    """NVIDIA's conditional net with clamping and the 'orig' D (tests/fixtures/README.md)."""
    return torch.load(COMMITTED / "stylegan2_cond32_clamp_orig.pt", weights_only=True)


def assert_matches_upstream(G, D, ref):
    # Images compared in the units of the unscaled net (see tests/fixtures/README.md); 1 for the public fixture.
    scale = ref.get("synthesis_scale", 1.0)
    psi, cutoff = ref["truncation_psi"], ref["truncation_cutoff"]

    def same_image(actual, expected):
        torch.testing.assert_close(actual / scale, expected / scale, **TOL)

    with torch.no_grad():
        torch.testing.assert_close(G.mapping(ref["z"], ref["c"]), ref["ws"], atol=1e-6, rtol=1e-6)
        ws_trunc = G.mapping(ref["z"], ref["c"], truncation_psi=psi, truncation_cutoff=cutoff)
        torch.testing.assert_close(ws_trunc, ref["ws_trunc"], atol=1e-6, rtol=1e-6)
        same_image(G.synthesis(ref["ws"], noise_mode="const"), ref["img_const"])
        same_image(G.synthesis(ref["ws"], noise_mode="none"), ref["img_none"])
        same_image(G.synthesis(ref["ws_trunc"], noise_mode="const"), ref["img_trunc_const"])
        whole = G(ref["z"], ref["c"], truncation_psi=psi, truncation_cutoff=cutoff, noise_mode="const", force_fp32=True)
        same_image(whole, ref["img_trunc_const"])
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


def test_parity_with_upstream_for_a_conditional_net_that_clamps_with_the_orig_discriminator(cond_fixture):
    ref = cond_fixture
    G = Generator(**ref["G_kwargs"]).eval()
    D = Discriminator(**ref["D_kwargs"]).eval()
    G.load_state_dict(ref["G_ema_state_dict"], strict=True)
    D.load_state_dict(ref["D_state_dict"], strict=True)
    clamped = []
    for m in G.modules():
        if isinstance(m, SynthesisLayer | ToRGBLayer):
            m.register_forward_hook(lambda m, i, out: clamped.append((out.abs() == 256).float().mean().item()))
    assert_matches_upstream(G, D, ref)
    # The clamp is really exercised (each layer, in every one of the 4 synthesis runs), and the labels matter.
    assert len(clamped) == 4 * 11 and min(clamped) > 0.02
    with torch.no_grad():
        other = G.mapping(ref["z"], ref["c"].roll(1, dims=1))
    assert (other - ref["ws"]).abs().max() > 0.1
    # The same networks as StyleGAN2 hparams build them: NVIDIA's layout for the D label mapping and the clamp.
    gan = StyleGAN2(image_size=32, latent_dim=32, w_dim=32, num_classes=4, mapping_layers=2, channel_base=512,
                    channel_max=32, conv_clamp=256, d_architecture="orig", mbstd_group_size=2).eval()  # fmt: skip
    gan.generator_ema.load_state_dict(ref["G_ema_state_dict"], strict=True)
    gan.discriminator.load_state_dict(ref["D_state_dict"], strict=True)
    assert_matches_upstream(gan.generator_ema, gan.discriminator, ref)


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


# Stand-ins that pickle under the names NVIDIA's files reference, to write network pickles at test time.


def _reconstruct_persistent_obj(meta):
    raise AssertionError("only called when loading with upstream code")


_reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
_reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"


class _EasyDict(dict):
    __module__ = "dnnlib.util"
    __qualname__ = "EasyDict"


@contextlib.contextmanager
def _upstream_names():
    """``torch_utils.persistence`` and ``dnnlib.util`` in ``sys.modules`` while pickling, so that pickle finds the
    stand-ins under NVIDIA's names."""
    persistence, util = types.ModuleType("torch_utils.persistence"), types.ModuleType("dnnlib.util")
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    util.EasyDict = _EasyDict
    names = {"torch_utils": types.ModuleType("torch_utils"), "torch_utils.persistence": persistence,
             "dnnlib": types.ModuleType("dnnlib"), "dnnlib.util": util}  # fmt: skip
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(names)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


def _as_upstream(obj):
    # PersistentObject -> REDUCE(_reconstruct_persistent_obj, (meta,)) as torch_utils.persistence writes it.
    if isinstance(obj, convert.PersistentObject):
        meta = {"type": "class", "version": 6, "module_src": "# upstream source omitted\n",
                "class_name": obj.class_name, "state": _as_upstream(obj.state)}  # fmt: skip
        return _Payload(_reconstruct_persistent_obj, meta)
    if isinstance(obj, convert.EasyDict):
        return _EasyDict({k: _as_upstream(v) for k, v in obj.items()})
    if isinstance(obj, dict):
        return type(obj)((k, _as_upstream(v)) for k, v in obj.items())
    return obj


def write_nvidia_pickle(path: Path, data: dict) -> Path:
    """``data`` as read by :func:`convert.read_nvidia_pickle`, written back in NVIDIA's layout (protocol 3)."""
    with _upstream_names():
        path.write_bytes(pickle.dumps(_as_upstream(data), protocol=3))
    return path


_BUFFERS = {"resample_filter", "noise_const", "w_avg"}


def persistent_network(class_name: str, init_kwargs: dict, state_dict: dict) -> convert.PersistentObject:
    """A network record with NVIDIA's nesting (one persistent object per module) holding ``state_dict``."""

    def node(name):
        state = {"_parameters": OrderedDict(), "_buffers": OrderedDict(), "_modules": OrderedDict(),
                 "_non_persistent_buffers_set": set(), "_init_kwargs": convert.EasyDict()}  # fmt: skip
        return convert.PersistentObject(name, state, "")

    root = node(class_name)
    root.state["_init_kwargs"] = convert.EasyDict(init_kwargs)
    for key, value in state_dict.items():
        *path, name = key.split(".")
        module = root
        for part in path:
            children = module.state["_modules"]
            if part not in children:
                children[part] = node(part)
            module = children[part]
        module.state["_buffers" if name in _BUFFERS else "_parameters"][name] = value.clone()
    return root


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
    source = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    meta = {"type": "class", "version": 6, "module_src": source, "class_name": "training.networks.Generator",
            "state": {"_parameters": {}, "_buffers": {}, "_modules": {}}}  # fmt: skip
    with _upstream_names():
        (tmp_path / "src.pkl").write_bytes(pickle.dumps({"G_ema": _Payload(_reconstruct_persistent_obj, meta)}))
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
    # Mixing no layer gives the row seed's own image.
    alone = gan.style_mix([1], [3], styles=slice(0, 0))
    torch.testing.assert_close(alone[0], gan.sample(1, seed=1)[0], atol=1e-5, rtol=1e-5)


def test_style_mix_takes_the_chosen_layers_from_the_column_seed():
    gan = tiny()
    with torch.no_grad():
        gan.generator_ema.mapping.w_avg.normal_()
    net, rows, cols, styles, psi = gan.generator_ema, [1, 2], [3, 4, 5], slice(2, 5), 0.7
    grid = gan.style_mix(rows, cols, styles=styles, truncation_psi=psi)
    assert grid.shape == (6, 3, 16, 16) and net.num_ws == 6
    with torch.no_grad():
        ws = {seed: net.mapping(gan.sample_latents(1, seed), None, truncation_psi=psi) for seed in rows + cols}
        for i, row in enumerate(rows):
            for j, col in enumerate(cols):
                # Row i, column j: the row seed's styles, except layers 2:5 from the column seed.
                mixed = torch.cat([ws[row][:, :2], ws[col][:, 2:5], ws[row][:, 5:]], dim=1)
                expected = net.synthesis(mixed, noise_mode="const").clamp(-1, 1)[0]
                torch.testing.assert_close(grid[i * len(cols) + j], expected, atol=1e-5, rtol=1e-5)
    assert (grid[0] - grid[1]).abs().max() > 1e-3 and (grid[0] - grid[3]).abs().max() > 1e-3


def test_training_style_mixing_switches_to_the_second_w_from_a_random_layer_on():
    gan = tiny()
    G = gan.generator
    z, mix_z = torch.randn(3, 8), torch.randn(3, 8)
    cutoffs = set()
    with torch.no_grad():
        w, w_mix = G.mapping(z, None), G.mapping(mix_z, None)
        assert (w - w_mix).abs().min() > 0  # every layer tells the two apart
        for seed in range(12):
            torch.manual_seed(seed)
            img, ws = G(z, None, noise_mode="const", mix_z=mix_z, mix_prob=1.0, return_ws=True)
            # Layers [0, k) from z, [k, num_ws) from mix_z, the same k for the whole batch, 1 <= k < num_ws.
            k = [k for k in range(1, G.num_ws) if torch.equal(ws, torch.cat([w[:, :k], w_mix[:, k:]], dim=1))]
            assert len(k) == 1, f"seed {seed}: the styles are not z's up to a layer and mix_z's from it on"
            cutoffs.add(k[0])
            torch.testing.assert_close(img, G.synthesis(ws, noise_mode="const"), rtol=0, atol=0)
        assert len(cutoffs) >= 3  # the cutoff layer is drawn
        _, ws = G(z, None, noise_mode="const", mix_z=mix_z, mix_prob=0.0, return_ws=True)
        assert torch.equal(ws, w)


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


def test_path_length_mean_is_updated_with_the_mean_over_processes():
    # A generator whose lengths depend on w. Under DDP, reduce averages the batch's mean length over processes (here a
    # stand-in adding 0.5): pl_mean takes the reduced value, and the gradient still flows through this process's own
    # lengths, as without it.
    ws = torch.randn(6, 2, 4, requires_grad=True)
    weight = torch.randn(8, 4)
    fake = (ws.sum(dim=1) @ weight.t()).tanh().view(6, 2, 2, 2)
    pl_mean = torch.full([], 1.0)
    torch.manual_seed(0)
    penalty, lengths = losses.path_length_penalty(fake, ws, pl_mean, decay=0.25, reduce=lambda m: m + 0.5)
    mean = 1.0 + 0.25 * (lengths.mean() + 0.5 - 1.0)
    torch.testing.assert_close(pl_mean, mean.detach())
    expected = (lengths - mean).square().mean()
    torch.testing.assert_close(penalty, expected)
    (grad,) = torch.autograd.grad(penalty, ws, retain_graph=True)
    (expected_grad,) = torch.autograd.grad(expected, ws)
    torch.testing.assert_close(grad, expected_grad)
    assert grad.abs().max() > 0


def test_lazy_regularisation_runs_on_its_batches_with_its_gains_and_reaches_every_parameter(tmp_path, monkeypatch):
    import lightning as L

    from ganzoo.data import Synthetic

    gan = tiny(image_size=8, channel_base=64, channel_max=8, num_classes=3, r1_gamma=0.5, pl_weight=3.0,
               d_reg_interval=3, g_reg_interval=2, style_mixing_prob=0.5)  # fmt: skip
    penalties = []  # (batch, name, penalty)

    def spy(name):
        original = getattr(losses, name)

        def recording(*args, **kwargs):
            out = original(*args, **kwargs)
            penalties.append((gan.batches_seen, name, (out[0] if isinstance(out, tuple) else out).detach()))
            return out

        return recording

    for name in ("r1_penalty", "path_length_penalty"):
        monkeypatch.setattr(losses, name, spy(name))
    updates = []  # (batch, network, loss, parameters the loss did not reach)
    update = gan.update

    def recording_update(optimizer, loss):
        update(optimizer, loss)
        net = gan._network_of(optimizer)
        missed = [n for n, p in getattr(gan, net).named_parameters() if p.grad is None]
        updates.append((gan.batches_seen, net, loss.detach(), missed))

    monkeypatch.setattr(gan, "update", recording_update)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(gan, Synthetic(num_images=7 * 4, num_classes=3, image_channels=3, image_size=8, batch_size=4))
    assert gan.batches_seen == 7

    # R1 on the batches b with b % 3 == 0, path length on b % 2 == 0: each one step after its network's main step.
    assert [b for b, name, _ in penalties if name == "r1_penalty"] == [0, 3, 6]
    assert [b for b, name, _ in penalties if name == "path_length_penalty"] == [0, 2, 4, 6]
    steps = {}
    for b, net, loss, _ in updates:
        steps.setdefault((b, net), []).append(loss)
    assert [len(steps[b, "discriminator"]) for b in range(7)] == [2, 1, 1, 2, 1, 1, 2]
    assert [len(steps[b, "generator"]) for b in range(7)] == [2, 1, 2, 1, 2, 1, 2]
    # The step applies gain * interval * penalty: r1_gamma / 2 * 3 * R1 and pl_weight * 2 * PL.
    for b, name, penalty in penalties:
        if name == "r1_penalty":
            torch.testing.assert_close(steps[b, "discriminator"][1], 0.5 / 2 * 3 * penalty)
        else:
            torch.testing.assert_close(steps[b, "generator"][1], 3.0 * 2 * penalty)
    # Every step's loss reaches every parameter of its network: what DistributedDataParallel needs (gan_ddp runs
    # without find_unused_parameters).
    assert [(b, net, missed) for b, net, _, missed in updates if missed] == []


def _shifted(x: Tensor, dy: int, dx: int) -> Tensor:
    # out[:, r, c] = x[:, r + dy, c + dx] inside the image, 0 outside.
    _, h, w = x.shape
    p = max(abs(dy), abs(dx))
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    return padded[:, p + dy : p + dy + h, p + dx : p + dx + w]


def test_diff_augment_translation_is_an_integer_shift_with_zero_fill():
    n, h = 16, 16
    x = torch.rand(n, 3, h, h) + 1  # no zeros, so that the fill shows
    torch.manual_seed(0)
    y = diff_augment(x, "translation")
    limit = h // 8  # up to 1/8 of the side
    shifts = []
    for i in range(n):
        found = [(dy, dx) for dy in range(-limit, limit + 1) for dx in range(-limit, limit + 1)
                 if torch.equal(y[i], _shifted(x[i], dy, dx))]  # fmt: skip
        assert len(found) == 1, f"sample {i} is no shift of its input by at most {limit} pixels"
        shifts.append(found[0])
    assert len(set(shifts)) >= 5


def test_diff_augment_cutout_zeroes_one_half_size_square_and_keeps_the_rest():
    n, h, w = 16, 16, 12
    x = torch.rand(n, 3, h, w) + 1
    torch.manual_seed(0)
    y = diff_augment(x, "cutout")
    boxes = set()
    for i in range(n):
        zero = y[i] == 0
        assert torch.equal(zero, zero[:1].expand_as(zero))  # the same pixels in every channel
        assert torch.equal(y[i][~zero], x[i][~zero])
        rows, cols = zero[0].any(dim=1).nonzero().flatten(), zero[0].any(dim=0).nonzero().flatten()
        assert len(rows) and zero[0].sum() == len(rows) * len(cols)  # one rectangle ...
        assert torch.equal(rows, torch.arange(rows[0], rows[-1] + 1))
        assert torch.equal(cols, torch.arange(cols[0], cols[-1] + 1))
        # ... of half the side, cut only where it leaves the image.
        for index, side in ((rows, h), (cols, w)):
            at_border = index[0] == 0 or index[-1] == side - 1
            assert len(index) == side // 2 or (at_border and len(index) < side // 2)
        boxes.add((int(rows[0]), int(cols[0])))
    assert len(boxes) >= 5


def test_diff_augment_color_follows_its_formulas_and_a_seed_fixes_every_op():
    n = 6
    x = torch.randn(n, 3, 8, 8)
    torch.manual_seed(5)
    y = diff_augment(x, "color")
    torch.manual_seed(5)  # the same draws, in the order the ops take them: one number per sample each
    brightness, saturation, contrast = (torch.rand(n, 1, 1, 1) for _ in range(3))
    expected = x + (brightness - 0.5)  # brightness +-0.5
    gray = expected.mean(dim=1, keepdim=True)
    expected = gray + (expected - gray) * (2 * saturation)  # saturation x[0, 2] around the channel mean
    mean = expected.mean(dim=(1, 2, 3), keepdim=True)
    expected = mean + (expected - mean) * (contrast + 0.5)  # contrast x[0.5, 1.5] around the image mean
    torch.testing.assert_close(y, expected)

    policy = "color,translation,cutout"
    outs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        outs.append(diff_augment(x, policy))
    assert torch.equal(outs[0], outs[1]) and (outs[0] - outs[2]).abs().max() > 0.1


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
    with pytest.raises(hub.HubError, match="is damaged or another file: its sha256 .* not the pinned"):
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


# NVIDIA's init arguments -------------------------------------------------------------------------------------

# What NVIDIA's TensorFlow converter (legacy.py) writes besides what a native training run records.
LEGACY_G_MAPPING = dict(embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.01, w_avg_beta=1)
LEGACY_G_SYNTHESIS = dict(architecture="skip", resample_filter=[1, 3, 3, 1], use_noise=True, activation="lrelu")
LEGACY_D = dict(
    cmap_dim=None,
    block_kwargs=dict(activation="lrelu", resample_filter=[1, 3, 3, 1], freeze_layers=0),
    mapping_kwargs=dict(num_layers=0, embed_features=None, layer_features=None, activation="lrelu", lr_multiplier=0.1),
    epilogue_kwargs=dict(mbstd_num_channels=1, activation="lrelu"),
)


def with_legacy_kwargs(data: dict) -> dict:
    for name in ("G", "G_ema"):
        kwargs = data[name].state["_init_kwargs"]
        kwargs["mapping_kwargs"].update(LEGACY_G_MAPPING)
        kwargs["synthesis_kwargs"].update(LEGACY_G_SYNTHESIS)
    kwargs = data["D"].state["_init_kwargs"]
    for key, value in LEGACY_D.items():
        kwargs[key] = {**kwargs.get(key, {}), **value} if isinstance(value, dict) else value
    return data


def test_pickles_with_the_legacy_converters_arguments_load_and_reproduce_upstream(fixture, snapshot, tmp_path):
    path = write_nvidia_pickle(tmp_path / "legacy.pkl", with_legacy_kwargs(convert.read_nvidia_pickle(snapshot)))
    gan = ganzoo.from_upstream(path, variant="stylegan2")
    assert gan.hparams.w_avg_beta == 1 and gan.hparams.mapping_lr_multiplier == 0.01 and gan.untrained_parts == set()
    assert_matches_upstream(gan.generator_ema, gan.discriminator, fixture)
    plain = ganzoo.from_upstream(snapshot, variant="stylegan2")
    for k, v in plain.state_dict().items():
        torch.testing.assert_close(gan.state_dict()[k], v, rtol=0, atol=0)

    # mbstd_group_size None (legacy's default for TF networks): the whole minibatch is one group.
    data = convert.read_nvidia_pickle(path)
    data["D"].state["_init_kwargs"]["epilogue_kwargs"]["mbstd_group_size"] = None
    gan = ganzoo.from_upstream(write_nvidia_pickle(tmp_path / "whole.pkl", data), variant="stylegan2")
    assert gan.hparams.mbstd_group_size is None
    group_of_4 = Discriminator(**{**fixture["D_kwargs"], "epilogue_kwargs": {"mbstd_group_size": 4}}).eval()
    group_of_4.load_state_dict(fixture["D_state_dict"])
    with torch.no_grad():
        expected = group_of_4(fixture["img_const"], fixture["c"])
        torch.testing.assert_close(gan.discriminator(fixture["img_const"], fixture["c"]), expected, rtol=0, atol=0)
    assert (expected - fixture["logits"]).abs().max() > 1e-3  # the grouping matters


def test_a_converted_conditional_discriminator_builds_with_its_mapping_options(tmp_path):
    # legacy.py's conditional D: the label embedded only (mapping num_layers 0, lr_multiplier 0.1), mbstd over the
    # whole minibatch. A model with those hparams, pickled the way NVIDIA would, comes back with the same values.
    source = tiny(num_classes=3, d_mapping_layers=0, d_mapping_lr_multiplier=0.1, mbstd_group_size=None, w_avg_beta=1)
    g_kwargs = dict(z_dim=8, w_dim=8, c_dim=3, img_resolution=16, img_channels=3,
                    mapping_kwargs=dict(num_layers=2, **LEGACY_G_MAPPING),
                    synthesis_kwargs=dict(channel_base=128, channel_max=16, num_fp16_res=0, conv_clamp=256,
                                          **LEGACY_G_SYNTHESIS))  # fmt: skip
    d_kwargs = dict(c_dim=3, img_resolution=16, img_channels=3, architecture="resnet", channel_base=128,
                    channel_max=16, num_fp16_res=0, conv_clamp=256, **LEGACY_D)  # fmt: skip
    d_kwargs["epilogue_kwargs"] = dict(d_kwargs["epilogue_kwargs"], mbstd_group_size=None)
    g = persistent_network("Generator", g_kwargs, source.generator_ema.state_dict())
    d = persistent_network("Discriminator", d_kwargs, source.discriminator.state_dict())
    path = write_nvidia_pickle(tmp_path / "cond.pkl", {"G": g, "D": d, "G_ema": g})
    gan = ganzoo.from_upstream(path, variant="stylegan2")
    hp = gan.hparams
    assert (hp.num_classes, hp.d_mapping_layers, hp.d_mapping_lr_multiplier, hp.mbstd_group_size) == (3, 0, 0.1, None)
    assert not hasattr(gan.discriminator.mapping, "fc0")  # the embedding alone
    for k, v in source.discriminator.state_dict().items():
        torch.testing.assert_close(gan.discriminator.state_dict()[k], v, rtol=0, atol=0)
    c = gan.one_hot([0, 2], 2)
    with torch.no_grad():
        embed = gan.discriminator.mapping.embed
        torch.testing.assert_close(gan.discriminator.mapping(None, c), pixel_norm(embed(c)))
        images = source.sample(2, seed=3)
        torch.testing.assert_close(gan.discriminator(images, c), source.discriminator(images, c), rtol=0, atol=0)
    torch.testing.assert_close(gan.sample(2, seed=3), images, rtol=0, atol=0)


def test_the_stylegan3_repositorys_stylegan2_layout_and_defaults(fixture, snapshot, tmp_path):
    # stylegan3's networks_stylegan2.Generator takes the synthesis options at its top level, and its defaults
    # differ: conv_clamp 256, w_avg_beta 0.998.
    data = convert.read_nvidia_pickle(snapshot)
    for name in ("G", "G_ema"):
        kwargs = data[name].state["_init_kwargs"]
        kwargs.update(kwargs.pop("synthesis_kwargs"), fused_modconv_default="inference_only")
    gan = ganzoo.from_upstream(write_nvidia_pickle(tmp_path / "sg3.pkl", data), variant="stylegan2")
    assert gan.hparams.conv_clamp is None and gan.hparams.channel_base == 512 and gan.hparams.w_avg_beta == 0.998
    assert_matches_upstream(gan.generator_ema, gan.discriminator, fixture)
    for name in ("G", "G_ema", "D"):
        del data[name].state["_init_kwargs"]["conv_clamp"]
    assert from_upstream_data(data, "stylegan2").hparams.conv_clamp == 256


def test_a_pickle_without_a_discriminator_gets_a_fresh_one_marked_untrained(fixture, snapshot, tmp_path):
    data = convert.read_nvidia_pickle(snapshot)
    del data["D"]
    gan = ganzoo.from_upstream(write_nvidia_pickle(tmp_path / "g-only.pkl", data), variant="stylegan2")
    assert gan.untrained_parts == {"discriminator"}
    assert gan.hparams.d_architecture == "resnet" and gan.hparams.mbstd_group_size == 4  # StyleGAN2's defaults
    with torch.no_grad():
        torch.testing.assert_close(gan.generator_ema.synthesis(fixture["ws"], noise_mode="const"), fixture["img_const"])
    # Built fresh: its biases are still their initial zeros (the snapshot's D biases are random).
    biases = {k: v for k, v in gan.discriminator.state_dict().items() if k.endswith(".bias")}
    assert biases and all(not v.any() for v in biases.values())
    assert ganzoo.from_upstream(snapshot, variant="stylegan2").untrained_parts == set()


@pytest.mark.parametrize(
    "where, key, value, name",
    [
        ("G", "synthesis_kwargs", {"architecture": "resnet"}, "'G.synthesis_kwargs.architecture': 'resnet'"),
        ("G", "synthesis_kwargs", {"activation": "relu"}, "'G.synthesis_kwargs.activation': 'relu'"),
        ("G", "synthesis_kwargs", {"resample_filter": [1, 2, 1]}, "'G.synthesis_kwargs.resample_filter': [1, 2, 1]"),
        ("G", "mapping_kwargs", {"activation": "relu"}, "'G.mapping_kwargs.activation': 'relu'"),
        ("G", "mapping_kwargs", {"layer_features": 64}, "'G.mapping_kwargs.layer_features': 64"),
        ("G", "mapping_kwargs", {"w_avg_beta": None}, "'G.mapping_kwargs.w_avg_beta': None"),
        ("G", None, {"img_size": 32}, "'G.img_size': 32"),
        ("D", None, {"architecture": "skip"}, "'D.architecture': 'skip'"),
        ("D", None, {"channel_base": 1024}, "'D.channel_base': 1024"),
        ("D", "block_kwargs", {"resample_filter": [1, 2, 1]}, "'D.block_kwargs.resample_filter': [1, 2, 1]"),
        ("D", "block_kwargs", {"activation": "relu"}, "'D.block_kwargs.activation': 'relu'"),
        ("D", "epilogue_kwargs", {"activation": "relu"}, "'D.epilogue_kwargs.activation': 'relu'"),
    ],
)
def test_from_upstream_refuses_what_it_does_not_build_by_name(snapshot, where, key, value, name):
    data = convert.read_nvidia_pickle(snapshot)
    for net in ("G", "G_ema") if where == "G" else ("D",):
        kwargs = data[net].state["_init_kwargs"]
        (kwargs.setdefault(key, {}) if key else kwargs).update(value)
    with pytest.raises(ValueError, match="use options ganzoo's StyleGAN2 does not build: .*" + re.escape(name)):
        from_upstream_data(data, "stylegan2")


def test_from_upstream_accepts_what_does_not_change_the_network(snapshot):
    data = convert.read_nvidia_pickle(snapshot)
    data["D"].state["_init_kwargs"]["block_kwargs"]["freeze_layers"] = 2  # fine-tuning switch
    data["G_ema"].state["_init_kwargs"]["synthesis_kwargs"]["fused_modconv_default"] = "inference_only"
    data["G_ema"].state["_init_kwargs"]["mapping_kwargs"]["embed_features"] = 64  # unconditional: no embedding
    data["D"].state["_init_kwargs"]["mapping_kwargs"] = {"activation": "relu", "num_layers": 3}  # idem: no mapping
    data["D"].state["_init_kwargs"]["cmap_dim"] = 7
    gan = from_upstream_data(data, "stylegan2")
    assert gan.hparams.d_mapping_layers == 8  # an unconditional D builds no mapping: StyleGAN2's default kept

    data = convert.read_nvidia_pickle(snapshot)
    data["G_ema"].class_name = "training.networks_stylegan3.Generator"
    with pytest.raises(ValueError, match="alias-free StyleGAN3"):
        from_upstream_data(data, "stylegan2")
    # Real files name the class only ("Generator"): an alias-free generator shows in its layers.
    data = convert.read_nvidia_pickle(snapshot)
    synthesis = data["G_ema"].state["_modules"]["synthesis"]
    synthesis.state["_modules"]["input"] = persistent_network("SynthesisInput", {}, {"weight": torch.zeros(4, 2)})
    with pytest.raises(ValueError, match="alias-free StyleGAN3"):
        from_upstream_data(data, "stylegan2")
    with pytest.raises(ValueError, match="no G_ema"):
        from_upstream_data({"G": data["G"]}, "stylegan2")


def test_the_new_hparams_build_what_they_say_and_round_trip(tmp_path):
    options = dict(num_classes=3, mapping_lr_multiplier=0.05, d_mapping_layers=1, d_mapping_lr_multiplier=0.1,
                   use_noise=False, mbstd_num_channels=2, mbstd_group_size=None, w_avg_beta=1.0)  # fmt: skip
    gan = tiny(**options)
    G, D = gan.generator, gan.discriminator
    assert G.mapping.fc0.weight_gain == pytest.approx(0.05 / math.sqrt(8 + 8))
    assert D.mapping.fc0.weight_gain == pytest.approx(0.1 / math.sqrt(16)) and not hasattr(D.mapping, "fc1")
    assert not any("noise" in k for k in G.state_dict())
    assert D.b4.mbstd.group_size is None and D.b4.conv.weight.shape[1] == 16 + 2
    folder = ganzoo.save_pretrained(gan, tmp_path / "sg2", num_samples=1)
    hparams = json.loads((folder / "config.json").read_text())["hparams"]
    assert {k: hparams[k] for k in options} == options
    again = ganzoo.load(folder)
    torch.testing.assert_close(again.sample(2, seed=1), gan.sample(2, seed=1), rtol=0, atol=0)
    created = ganzoo.create("stylegan2", **hparams)
    assert {k: v.shape for k, v in created.state_dict().items()} == {k: v.shape for k, v in gan.state_dict().items()}
