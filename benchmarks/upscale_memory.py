"""Peak memory and speed of ``ganzoo upscale`` on one large photo, tiled against whole.

Each mode runs ``ganzoo upscale NAME photo.png out.png`` in a fresh process (so the peak is that run's alone) on a
synthetic 1000x800 photo (smooth colour fields and fine noise, seeded), and reports the process's peak resident
memory (``ru_maxrss`` of the child), the wall time, megapixels of output per second, the output's size, and the
ratio of the tiled run's peak to the whole run's. The peak of a tiled run follows the tile (plus the output image
and the model); the whole run's follows the image.

    python benchmarks/upscale_memory.py [--model srresnet-x4] [--width 1000 --height 800] [--tile 256]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 50 + 2, width // 50 + 2, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = rng.integers(-12, 13, (height, width, 3))
    return Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8))


def run(model: str, source: Path, out: Path, tile: int | None) -> tuple[float, float, tuple[int, int]]:
    """(peak RSS MiB, seconds, output size) of one upscale in a child process."""
    code = (
        "import resource, sys\n"
        "from ganzoo import cli\n"
        "status = cli.main(sys.argv[1:])\n"
        "print('maxrss', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(status)\n"
    )
    args = [sys.executable, "-c", code, "upscale", model, str(source), str(out), "--tile", str(tile or 1_000_000)]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    peak_kib = int(next(line for line in done.stdout.splitlines() if line.startswith("maxrss")).split()[1])
    with Image.open(out) as im:
        return peak_kib / 1024, seconds, im.size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="srresnet-x4")
    p.add_argument("--width", type=int, default=1000)
    p.add_argument("--height", type=int, default=800)
    p.add_argument("--tile", type=int, default=256)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "photo.png"
        photo(args.width, args.height).save(source)
        rows = {}
        for label, tile in (("whole", None), (f"{args.tile}-px tiles", args.tile)):
            peak, seconds, size = run(args.model, source, Path(tmp) / f"out-{tile}.png", tile)
            rows[label] = (peak, seconds, size)
            mp = size[0] * size[1] / 1e6
            print(f"{label:>14}: peak {peak:7,.0f} MiB, {seconds:6.1f} s ({mp / seconds:.2f} MP/s of output, process "
                  f"start included), output {size[0]}x{size[1]}", flush=True)  # fmt: skip
    (whole, *_), (tiled, *_) = rows.values()
    print(f"peak memory tiled / whole: {tiled / whole:.2f}")


if __name__ == "__main__":
    main()
