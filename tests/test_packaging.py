"""A non-editable install carries the shipped checkpoints and recipes and works from any folder."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, need

SCRIPT = """
import pathlib, ganzoo
from ganzoo import registry
assert pathlib.Path(ganzoo.__file__).is_relative_to(pathlib.Path({site!r})), ganzoo.__file__
assert "dcgan-mnist" in ganzoo.list()
gan = ganzoo.load("dcgan-mnist")
assert gan.sample(2, seed=0).shape == (2, 1, 32, 32)
assert registry.shipped_dir("benchmarks").is_relative_to(pathlib.Path({site!r}))
assert any(r["name"] == "dcgan-mnist" for r in registry.measured("dcgan-mnist"))  # the leaderboard ships too
from ganzoo import demo
assert [p.name for p in demo.EXAMPLES.glob("*.png")] == ["astronaut-96px.png"]  # the demo's example input
print(registry.recipe_path("dcgan-mnist"))
"""


@pytest.mark.slow
def test_wheel_install_works_offline_from_any_folder(tmp_path):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if build.returncode != 0 and "hatchling" in build.stderr and "No matching distribution" in build.stderr:
        need(False, "no package index to fetch the build backend from")
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("ganzoo-*.whl")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True
    )
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(site=str(site))], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(site)), out.stdout
    # `ganzoo fit --recipe <name>` runs the installed recipe from any folder ...
    out = subprocess.run(
        [sys.executable, "-m", "ganzoo.cli", "fit", "--recipe", "dcgan-mnist", "--print_config"],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "ganzoo.models.dcgan.DCGAN" in out.stdout and "ganzoo.data.MNIST" in out.stdout
    # ... and a --config path that does not exist is an error naming --recipe, never a shipped recipe in disguise.
    out = subprocess.run(
        [sys.executable, "-m", "ganzoo.cli", "fit", "--config", "recipes/dcgan-mnist.yaml", "--print_config"],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        "ganzoo fit: error: no recipe file recipes/dcgan-mnist.yaml; the shipped one is --recipe dcgan-mnist "
        "(ganzoo list shows the shipped recipes)"
    )
