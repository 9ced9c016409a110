"""The upstream readers of ganzoo.convert that are not a variant's own (the NVIDIA pickle's are in
test_stylegan2.py): tensors come back, code never runs."""

import pytest
import torch

from ganzoo import convert


class Hostile:
    """Unpickling this calls ``Path.touch`` on a marker file: the stand-in for any payload."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return Path.touch, (Path(self.marker),)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_torch_file_reads_as_its_tensors(tmp_path, legacy):
    state = {"model.0.weight": torch.randn(4, 3, 3, 3), "model.0.bias": torch.randn(4), "step": 3}
    torch.save(state, tmp_path / "net.pth", _use_new_zipfile_serialization=not legacy)
    read = convert.read(tmp_path / "net.pth", "torch")
    assert read.keys() == state.keys() and read["step"] == 3
    assert all(torch.equal(read[k], v) for k, v in state.items() if k != "step")
    torch.save({"w": torch.ones(2)}, tmp_path / "other.pt")
    folder = convert.read(tmp_path, "torch")  # a training folder: one entry per file
    assert sorted(folder) == ["net", "other"] and torch.equal(folder["other"]["w"], torch.ones(2))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_torch_file_that_names_code_is_refused_and_its_payload_never_runs(tmp_path, legacy):
    marker = tmp_path / "ran"
    torch.save({"w": torch.ones(2), "x": Hostile(marker)}, tmp_path / "hostile.pth",
               _use_new_zipfile_serialization=not legacy)  # fmt: skip
    with pytest.raises(convert.UnsafePickleError, match="names code"):
        convert.read(tmp_path / "hostile.pth", "torch")
    assert not marker.exists()


def test_a_truncated_or_foreign_file_is_one_clear_error(tmp_path):
    torch.save({"w": torch.randn(1000)}, tmp_path / "net.pth")
    data = (tmp_path / "net.pth").read_bytes()
    (tmp_path / "net.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(convert.UpstreamFormatError, match="truncated or not a torch.save file"):
        convert.read(tmp_path / "net.pth", "torch")
    (tmp_path / "notes.pth").write_text("hello")
    with pytest.raises(convert.UpstreamFormatError):
        convert.read(tmp_path / "notes.pth", "torch")
    with pytest.raises(FileNotFoundError):
        convert.read(tmp_path / "missing.pth", "torch")
    with pytest.raises(ValueError, match="unknown upstream format"):
        convert.read(tmp_path / "net.pth", "onnx")
