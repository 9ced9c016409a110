import dataclasses
import os
import re
from pathlib import Path

import pytest
import torch

from ganzoo import registry

REPO = Path(__file__).resolve().parent.parent
VARIANTS = sorted(registry.variants())
# The variants whose generator maps noise to images (sample, latents, labels); the others translate images.
LATENT_VARIANTS = sorted(n for n, v in registry.variants().items() if v.task.endswith("generation"))
FIXTURES = REPO.parent / "shared" / "fixtures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(available: bool, reason: str) -> None:
    """Skip the calling test when ``available`` is false, but fail it in CI (``CI=true``): there a missing data set,
    fixture or network file is a broken setup, not a reason to test less."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def fixture_path(name: str) -> Path:
    """A file of ../shared/fixtures (upstream parity tensors); see :func:`need` for when it is absent."""
    path = FIXTURES / name
    need(path.is_file(), f"the upstream fixture {path} is not available")
    return path


def pytest_configure(config):
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def data_root() -> Path:
    """The real data sets (GANZOO_DATA); skips the test when they are absent."""
    root = os.environ.get("GANZOO_DATA")
    need(bool(root) and Path(root).is_dir(), "real data not available: set GANZOO_DATA (see ganzoo/data.py)")
    return Path(root)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Extracted archives go to a per-session cache, never the user's."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path_factory.getbasetemp() / "ganzoo-cache"))


@pytest.fixture(autouse=True)
def _restore_environment():
    """Lightning's DDP setup writes LOCAL_RANK, WORLD_SIZE, MASTER_PORT ... into os.environ; a later test's
    child process that inherited them would wait for ranks that never start."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def assert_same_optimizer_states(a: list[dict], b: list[dict]) -> None:
    """Optimizer ``state_dict()``s equal bit for bit, tensor by tensor."""
    for oa, ob in zip(a, b, strict=True):
        for i, s in oa["state"].items():
            for key, value in s.items():
                torch.testing.assert_close(ob["state"][i][key], value, rtol=0, atol=0)


def accept_stand_in(monkeypatch, name: str, place: Path) -> None:
    """Let the official entry ``name`` load a stand-in file put at ``place`` (small weights in the release's layout).
    Where the release's name carries the head of its sha256 (BasicSR's "-ff704c30", the GAN zoo's "-6196db68"),
    the stand-in is first refused for not having it, in one line naming the place; the entry then stands for one
    without that check, as no stand-in can have it."""
    import ganzoo

    entry = registry.get_pretrained(name)
    head = re.search(r"-([0-9a-f]{8})(\.[A-Za-z0-9]+)$", entry.url)
    if head:
        with pytest.raises(ganzoo.hub.HubError, match=f"not starting with the {head.group(1)} its name carries") as e:
            ganzoo.load(name)
        assert "\n" not in str(e.value) and f"put it at {place}" in str(e.value)
        unchecked = dataclasses.replace(entry, url=entry.url.replace(head.group(0), head.group(2)))
        monkeypatch.setitem(registry._PRETRAINED, name, unchecked)
