"""Every Python and shell block of the README, run as a reader runs it.

Each Python block runs alone in a fresh interpreter (so a block that forgets an import fails here), each shell
block in bash with `set -e`, all in one working folder and in the README's order (the export block exports the
run the training block started). What cannot run here as written is changed by the rules below, each with its
reason; a block that no rule covers runs verbatim.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import REPO, fixture_path

README = (REPO / "README.md").read_text()
BLOCKS = [(m.group(1), m.group(2), README[: m.start()].count("\n") + 1)
          for m in re.finditer(r"```(python|bash)\n(.*?)```", README, re.S)]  # fmt: skip

# (text in a block, what runs instead, why)
REPLACE = [
    ("stylegan-ffhq", "stylegan2-mnist-32",
     "NVIDIA's FFHQ pickle (380 MB, from nvlabs-fi-cdn) cannot be downloaded here: the same calls on the shipped "
     "StyleGAN2"),
    ("export GANZOO_DATA=/path/to/data", "export GANZOO_DATA=$README_DATA", "the data sets' real path"),
    ("--num-samples 10000 --seeds 0,1,2", "--num-samples 100 --num-real 100 --seeds 0,1",
     "FID-10k of 3 seeds against the 10,000 test images takes most of an hour on a 2-core CPU"),
    ("num_samples=10_000", "num_samples=100, num_real=100", "the same, in Python"),
    ("realesrgan-x4plus", "srresnet-x4",
     "Real-ESRGAN's file (64 MB, from GitHub) cannot be downloaded here: the same calls on the shipped SRResNet"),
]  # fmt: skip
# Commands left out, and why: a line starting with one of these, up to the `&&` that chains the next command (a
# prefix that holds the `&&` leaves out the whole line).
LEAVE_OUT = {
    'pip install -e ".[test]" && pytest': "installs the test extras and runs this test suite: what CI runs",
    "pip install": "ganzoo is installed already in the environment running the tests",
    "ganzoo push": "uploads to the Hub: push is tested at the HfApi boundary in tests/test_hub.py",
    "ganzoo demo": "serves a page until stopped: tests/test_demo.py drives it in Chromium",
    "tensorboard --logdir": "serves until stopped: tests/test_tensorboard.py reads the event files it shows",
}
FIT_LIMIT = "--trainer.max_epochs=1 --trainer.limit_train_batches=2"  # appended to `ganzoo fit`: 2 batches, not hours


def prepare(lang: str, code: str) -> str:
    for old, new, _ in REPLACE:
        code = code.replace(old, new)
    if lang == "python":
        return code
    lines = []
    for line in code.splitlines():
        for prefix in LEAVE_OUT:
            if line.startswith(prefix):
                line = line.split("&&", 1)[1].strip() if "&&" in line and "&&" not in prefix else ""
                break
        if line.startswith("ganzoo fit"):
            line = f"{line.split('#')[0].rstrip()} {FIT_LIMIT}"
        lines.append(line)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The reader's folder: their own recipe, image folders to compare, a photo, a folder of maps, an NVIDIA
    snapshot, a junyanz generator and a pytorch_GAN_zoo file of their own (upstream layouts, from
    ../shared/fixtures)."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copy(REPO / "recipes" / "dcgan-mnist.yaml", work / "my-recipe.yaml")
    shutil.copy(fixture_path("network-snapshot.pkl"), work / "network-snapshot-001000.pkl")
    shutil.copy(fixture_path("progan_32px_hub.pth"), work / "celebaHQ_s6_i80000-6196db68.pth")  # a zoo file of theirs
    unet = torch.load(fixture_path("pix2pix_unet128.pt"), weights_only=True)["state_dict"]
    torch.save(unet, work / "latest_net_G.pth")  # a junyanz generator file of their own (the fixture's weights)
    Image.new("RGB", (300, 200), (90, 120, 60)).save(work / "photo.jpg")
    Image.new("RGB", (120, 90), (40, 160, 200)).save(work / "photo.png")
    (work / "photos").mkdir()  # their own photos to upscale: colour, gray, with alpha
    Image.new("RGB", (61, 47), (200, 30, 90)).save(work / "photos" / "a.jpg")
    Image.new("L", (40, 40), 128).save(work / "photos" / "b.png")
    Image.new("RGBA", (33, 20), (10, 200, 10, 128)).save(work / "photos" / "c.png")
    (work / "maps").mkdir()  # their own maps to turn into photos, of any sizes
    for i, size in enumerate([(250, 180), (97, 61)]):
        Image.new("RGB", size, (230, 225 - 40 * i, 215)).save(work / "maps" / f"{i}.png")
    for folder, shade in (("real_images", 0), ("my_samples", 100)):
        (work / folder).mkdir()
        for i in range(8):
            Image.new("RGB", (32, 32), (shade + 10 * i, 20 * i, 0)).save(work / folder / f"{i}.png")
    return work


@pytest.mark.slow
@pytest.mark.parametrize(("lang", "code", "line"), BLOCKS, ids=[f"{b[0]}-line-{b[2]}" for b in BLOCKS])
def test_readme_block_runs(lang, code, line, workdir, data_root):
    code = prepare(lang, code)
    env = {**os.environ, "README_DATA": str(data_root), "HF_HUB_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    command = [sys.executable, "-c", code] if lang == "python" else ["bash", "-e", "-c", code]
    out = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"README.md line {line}:\n{code}\n--- stderr:\n{out.stderr[-4000:]}"


def test_every_rule_still_applies():
    """A rule whose text left the README would hide a change nobody checked: each must still match a block."""
    text = "\n".join(code for _, code, _ in BLOCKS)
    for old, _, _ in REPLACE:
        assert old in text, old
    lines = [line for _, code, _ in BLOCKS for line in code.splitlines()]
    for prefix in LEAVE_OUT:
        assert any(line.startswith(prefix) for line in lines), prefix
    assert len(BLOCKS) >= 10
