"""The ``ganzoo`` command: list | info | sample | mix | interpolate | demo | translate | upscale | evaluate | fit |
export | push.

``ganzoo fit`` is LightningCLI: every ``--trainer.*``, ``--model.*`` and ``--data.*`` override works, and
``--recipe NAME`` is short for ``--config <the shipped recipes/NAME.yaml>``.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ganzoo import hub, registry
from ganzoo.metrics import MetricUnavailableError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet()
    if argv and argv[0] == "fit":
        return fit(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (registry.UnknownModelError, hub.CheckpointError, hub.HubError, MetricUnavailableError,
            FileNotFoundError, ValueError) as e:  # fmt: skip
        print(f"ganzoo {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ganzoo {args.command}: interrupted (Ctrl-C); no output was written", file=sys.stderr)
        return 130


def _quiet() -> None:
    """Hide what a user cannot act on: LightningCLI's warning about its ``args`` parameter (ganzoo passes the
    command line through it), Lightning's advertising tips, and deprecation warnings that libraries raise about
    each other's APIs. Every other warning stays."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(?!ganzoo\b)")
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(getattr(f, "__name__", "") == "_no_tips" for f in tips.filters):
        tips.addFilter(_no_tips)


def _no_tips(record: Any) -> bool:
    return not str(record.msg).startswith("💡 Tip")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse's own prints the whole usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganzoo", description="A zoo of GANs: list, inspect, sample, train, share.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list the pretrained models (or the variants)")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard on the name, e.g. 'dcgan-*'")
    p.add_argument("--variant", help="only entries of this variant")
    p.add_argument("--task", choices=registry.TASKS, help="only entries of this task")
    p.add_argument("--variants", action="store_true", help="list the registered variants instead")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the README)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="architecture, licence, metrics and source of a model")
    p.add_argument("name", help="a pretrained name, alias, checkpoint folder or Hub repo id")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("sample", help="write a PNG grid of samples")
    p.add_argument("name", help="a pretrained name, alias, checkpoint folder or Hub repo id")
    p.add_argument("-n", "--num", type=int, help="number of images (default 64); with --labels, per class (default 8)")
    p.add_argument("-o", "--output", default="samples.png", help="PNG file to write (default samples.png)")
    p.add_argument("--seed", default="0", help="a seed, or comma-separated seeds for one image each (1,2,3)")
    p.add_argument("--labels", help="class ids or names of a conditional model, one grid row each (0,1,2 or all)")
    p.add_argument("--truncation", type=float, help="truncation psi (StyleGAN2: 0.7 trades variety for quality)")
    p.add_argument("--nrow", type=int, help="images per row of the grid")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("mix", help="a style-mixing grid (StyleGAN2): rows take styles from columns")
    p.add_argument("name", help="a StyleGAN2 name, alias, checkpoint folder or Hub repo id")
    p.add_argument("--rows", default="1,2,3", help="seeds of the row images (default 1,2,3)")
    p.add_argument("--cols", default="4,5,6,7", help="seeds of the column images, whose styles replace (4,5,6,7)")
    p.add_argument("--styles", default="0-6", help="layers taken from the columns, e.g. 0-6 coarse, 6-10 middle")
    p.add_argument("--truncation", type=float, default=1.0, help="truncation psi (default 1)")
    p.add_argument("-o", "--output", default="mix.png", help="PNG file to write (default mix.png)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.set_defaults(func=cmd_mix)

    p = sub.add_parser("interpolate", help="a looping latent walk through the samples of some seeds (GIF or MP4)")
    p.add_argument("name", help="a generative model: name, alias, checkpoint folder or Hub repo id")
    p.add_argument("--seeds", default="1,2,3", help="the samples the walk passes through, in order (default 1,2,3)")
    p.add_argument("--frames", type=int, default=30, help="frames from one seed to the next (default 30)")
    p.add_argument("--fps", type=float, default=15, help="frames per second (default 15)")
    p.add_argument("--label", help="the class of a conditional model's walk, an id or a name (default 0)")
    p.add_argument("--truncation", type=float, help="truncation psi (StyleGAN2)")
    p.add_argument("--scale", type=int, default=1, help="enlarge the frames this many times, nearest (default 1)")
    p.add_argument("-o", "--output", default="walk.gif", help="a .gif, or an .mp4 with imageio-ffmpeg installed")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("demo", help="an interactive page in the browser for a model (Gradio)")
    p.add_argument("name", help="a pretrained name, alias, checkpoint folder or Hub repo id")
    p.add_argument("--port", type=int, help="local port (default: the first free one from 7860)")
    p.add_argument("--host", help="address to serve on (default 127.0.0.1, this machine; 0.0.0.0: the network)")
    p.add_argument("--share", action="store_true", help="also serve it through a public gradio.live link")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("translate", help="translate an image, or a folder of images, with a translation model")
    p.add_argument("name", help="a translation model: name, alias, checkpoint folder, .ckpt or Hub repo id")
    p.add_argument("input", help="an image file, or a folder of images (any sizes)")
    p.add_argument("output", help="the image file to write, or the folder (created; file names are kept)")
    p.add_argument("--direction", default="a2b", help="a2b (default) or b2a for a two-way model")
    p.add_argument("--no-pad", action="store_true", help="refuse sizes the generator cannot take instead of padding")
    p.add_argument("--tile", type=int, help="run large images in tiles of this side, bounding memory (default: whole)")
    p.add_argument("--tile-overlap", type=int, default=32, help="context around each tile in pixels (default 32)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.set_defaults(func=cmd_translate)

    p = sub.add_parser("upscale", help="super-resolve an image, or a folder of images, with an SR model")
    p.add_argument("name", help="a super-resolution model: name, alias, checkpoint folder, .ckpt or Hub repo id")
    p.add_argument("input", help="an image file, or a folder of images (any sizes; gray and RGBA kept as such)")
    p.add_argument("output", help="the image file to write, or the folder (created; file names are kept)")
    p.add_argument("--tile", type=int, help="tile side in input pixels (default: whole up to 512 px, else 256)")
    p.add_argument("--overlap", type=int, default=16, help="context and blend band between tiles (default 16)")
    p.add_argument("--bf16", action="store_true", help="run the network in bfloat16 autocast")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.set_defaults(func=cmd_upscale)

    p = sub.add_parser(
        "evaluate",
        help="FID/KID/IS/precision-recall of a model or of a folder of images, with the protocol",
        description="Measure a model's samples (NAME) or a folder of images (--fake) against real images: a "
        "registered model's test split by default, or --real DIR. Prints the numbers and the protocol that made them.",
    )
    p.add_argument("name", nargs="?", help="a pretrained name, alias, checkpoint folder or Hub repo id")
    p.add_argument("--fake", help="a folder of generated images to measure instead of a model")
    p.add_argument("--real", help="a folder of real images (default: the model's data set, test split)")
    p.add_argument("--metrics", default="fid,kid", help="comma-separated, of fid,kid,is,pr (default fid,kid)")
    p.add_argument("--num-samples", type=int, default=10_000, help="generated images per seed (default 10000)")
    p.add_argument("--num-real", type=int, help="real images drawn from the reference split (default: all)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one repeat each (default 0)")
    p.add_argument("--feature-net", default="inception", help="inception (default), inception-nvidia or dinov2")
    p.add_argument("--batch-size", type=int, default=50, help="evaluation batch size (default 50, the protocol's)")
    p.add_argument("--device", help="torch device (default: cuda when available)")
    p.add_argument("--json", help="also write the numbers and their protocol to this JSON file")
    p.set_defaults(func=cmd_evaluate)

    # Parsed by LightningCLI itself; listed here for --help.
    sub.add_parser(
        "fit",
        help="train from a recipe: ganzoo fit --config recipes/NAME.yaml | --recipe NAME [LightningCLI overrides]",
        add_help=False,
    )

    p = sub.add_parser("export", help="turn a training run (or one of its checkpoints) into a Hub folder")
    p.add_argument("checkpoint", metavar="RUN", help="a run folder of ganzoo fit (its last.ckpt) or a .ckpt file")
    p.add_argument("folder", help="the folder to write (config.json, model.safetensors, README.md, samples.png)")
    p.add_argument("--name", help="model name for the card (default: the folder's name)")
    p.add_argument("--overwrite", action="store_true", help="replace the ganzoo model already in FOLDER")
    p.add_argument("--average-from", type=float, metavar="KIMG",
                   help="export the generator as the mean of its weights over the run's checkpoints from KIMG on "
                   "(checkpoint averaging; the card says so)")  # fmt: skip
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("push", help="upload a Hub folder to the Hugging Face Hub in one commit")
    p.add_argument("folder", help="a folder written by ganzoo export or ganzoo.save_pretrained")
    p.add_argument("--repo-id", required=True, help="the Hub repository, e.g. you/dcgan-mnist")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload ganzoo model", help="commit message")
    p.add_argument("--space", nargs="?", const=True, metavar="SPACE_ID",
                   help="also upload a Gradio Space serving ganzoo demo for it (default id: --repo-id's)")  # fmt: skip
    p.set_defaults(func=cmd_push)
    return parser


def cmd_list(args: argparse.Namespace) -> None:
    if args.variants:
        for name in registry.list_models(args.pattern, task=args.task, pretrained=False):
            v = registry.get_variant(name)
            print(f"{name:<16} {v.task:<24} {v.cls.__module__}.{v.cls.__qualname__}")
        return
    rows = [("name", "variant", "task", "dataset", "license", "weights")]
    for name in registry.list_models(args.pattern, variant=args.variant, task=args.task):
        e = registry.get_pretrained(name)
        where = "shipped" if e.folder else ("Hub" if e.hub_repo else "upstream, converted at load")
        rows.append((name, e.variant, registry.get_variant(e.variant).task, e.dataset, e.license, where))
    if args.markdown:
        print("\n".join(["| " + " | ".join(r) + " |" for r in rows[:1]] + ["|" + "---|" * len(rows[0])]
                        + ["| " + " | ".join(r) + " |" for r in rows[1:]]))  # fmt: skip
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def cmd_info(args: argparse.Namespace) -> None:
    print(json.dumps(hub.info(args.name), indent=2, default=str))


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"{flag} {text!r}: expected comma-separated integers, e.g. 1,2,3") from None
    if not values:
        raise ValueError(f"{flag} is empty: give comma-separated integers, e.g. 1,2,3")
    return values


def _seeds(text: str, flag: str = "--seed") -> list[int]:
    seeds = _ints(text, flag)
    for s in seeds:
        if not 0 <= s < 2**32:
            raise ValueError(f"{flag}: seed {s} is out of range: seeds are integers from 0 to {2**32 - 1}")
    return seeds


def _at_least(value: int | None, flag: str, minimum: int = 1) -> None:
    if value is not None and value < minimum:
        raise ValueError(f"{flag} {value}: must be at least {minimum}")


def _device(text: str) -> Any:
    """A torch device that exists here; a one-line error naming the fix otherwise."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device {text}: unknown device; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count() > 0:
        raise ValueError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {text}: CUDA is not available here (no GPU, or a CPU-only torch): use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {text}: MPS is not available here: use --device cpu")
    return device


def cmd_sample(args: argparse.Namespace) -> None:
    import torch

    from ganzoo.gan import image_format, save_grid

    _at_least(args.num, "-n")
    _at_least(args.nrow, "--nrow")
    seeds = _seeds(args.seed)
    if len(seeds) > 1 and args.num is not None and args.num != len(seeds) and args.labels is None:
        raise ValueError(f"--seed gives {len(seeds)} seeds (one image each) but -n is {args.num}: leave out -n")
    image_format(args.output)
    device = _device(args.device)
    gan = hub.load(args.name).to(device)
    if not hasattr(gan, "sample"):
        verb = "upscale" if gan.task == "super-resolution" else "translate"
        raise ValueError(f"{args.name} ({gan.variant}) {verb}s images, it does not sample: ganzoo {verb} "
                         f"{args.name} INPUT OUTPUT, or in Python gan.{verb}(images)")  # fmt: skip
    options = _truncation(gan, args)
    if args.labels is not None:  # one row per class, the same latents in every row
        if not gan.num_classes:
            raise ValueError(f"{args.name} ({gan.variant}) is unconditional: leave out --labels")
        if len(seeds) != 1:
            raise ValueError("--labels takes one --seed (the row's latents); got several")
        labels = _labels(args.labels, gan.class_names)
        per_class = args.num or 8
        z = gan.sample_latents(per_class, seeds[0]).repeat(len(labels), 1)
        z = gan.with_labels(z, torch.tensor(labels).repeat_interleave(per_class))
        images = torch.cat(list(gan.generate_batches(z, batch_size=64, **options)))
        path = save_grid(images, args.output, nrow=per_class)
        names = ", ".join(gan.class_names[i] for i in labels)
        print(f"wrote {len(labels)} rows of {per_class} samples of {args.name} (classes {names}; seed {seeds[0]}) "
              f"to {path}")  # fmt: skip
        return
    num = args.num or 64
    if len(seeds) == 1:
        images = gan.sample(num, seed=seeds[0], batch_size=64, progress=num > 64, **options)
    else:  # one image per seed, as NVIDIA's generate.py --seeds
        images = torch.cat([gan.sample(1, seed=s, **options) for s in seeds])
    path = save_grid(images, args.output, nrow=args.nrow)
    print(f"wrote {len(images)} samples of {args.name} (seed {args.seed}) to {path}")


def _truncation(gan: Any, args: argparse.Namespace) -> dict[str, float]:
    """``--truncation`` as a sampling option, refused for a model that has none."""
    if args.truncation is None:
        return {}
    if "truncation_psi" not in inspect.signature(gan.sample).parameters:
        raise ValueError(f"{args.name} ({gan.variant}) has no truncation: leave out --truncation")
    return {"truncation_psi": args.truncation}


def _labels(text: str, names: list[str]) -> list[int]:
    """``--labels``: comma-separated class ids or names, or ``all``."""
    if text.strip() == "all":
        return list(range(len(names)))
    labels = []
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item in names:
            labels.append(names.index(item))
        elif item.lstrip("-").isdigit() and 0 <= int(item) < len(names):
            labels.append(int(item))
        else:
            raise ValueError(f"--labels: {item!r} is neither a class id in [0, {len(names)}) nor a class name "
                             f"({', '.join(names)})")  # fmt: skip
    if not labels:
        raise ValueError("--labels is empty: give class ids or names, e.g. 0,1,2, or all")
    return labels


def cmd_interpolate(args: argparse.Namespace) -> None:
    seeds = _seeds(args.seeds, "--seeds")
    if len(seeds) < 2:
        raise ValueError(f"--seeds {args.seeds}: a walk needs at least two seeds, e.g. 1,2,3")
    _at_least(args.frames, "--frames")
    _at_least(args.scale, "--scale")
    if args.fps <= 0:
        raise ValueError(f"--fps {args.fps}: must be positive")
    suffix = Path(args.output).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"-o {args.output}: write a .gif or an .mp4")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ValueError("-o .mp4 needs imageio-ffmpeg (pip install 'ganzoo[video]'); or write a .gif")
    gan = hub.load(args.name).to(_device(args.device))
    if not hasattr(gan, "interpolate"):
        raise ValueError(f"{args.name} ({gan.variant}) takes images, not latents: a walk needs a generative model")
    options = _truncation(gan, args)
    label = None
    if args.label is not None:
        if not gan.num_classes:
            raise ValueError(f"{args.name} ({gan.variant}) is unconditional: leave out --label")
        (label,) = _labels(args.label, gan.class_names)
    frames = gan.interpolate(seeds, args.frames, labels=label, **options)
    path = save_walk(frames, args.output, fps=args.fps, scale=args.scale)
    print(f"wrote a {len(frames)}-frame walk of {args.name} through seeds {','.join(map(str, seeds))} and back to "
          f"{path}")  # fmt: skip


def save_walk(frames: Any, output: str | Path, *, fps: float = 15, scale: int = 1) -> Path:
    """Frames ``[T, C, H, W]`` in [-1, 1] as a looping GIF (Pillow) or an MP4 (imageio-ffmpeg), written atomically;
    ``scale`` enlarges them (nearest)."""
    import numpy as np
    from PIL import Image

    from ganzoo.gan import to_pil

    out = Path(output)
    images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in to_pil(frames)]
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: str) -> None:
        if out.suffix.lower() != ".mp4":
            duration = round(1000 / fps)
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
            return
        import imageio_ffmpeg

        rgb = [np.ascontiguousarray(np.asarray(im.convert("RGB"))) for im in images]
        h, w = rgb[0].shape[:2]
        # H.264 in yuv420p needs even sides: an odd one would get a pixel of padding.
        params = ["-f", "mp4", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
        writer = imageio_ffmpeg.write_frames(tmp, (w, h), fps=fps, macro_block_size=1, output_params=params)
        writer.send(None)
        for frame in rgb:
            writer.send(frame)
        writer.close()

    hub._atomic_write(out, write)
    return out


def cmd_mix(args: argparse.Namespace) -> None:
    from ganzoo.gan import image_format, save_grid

    rows, cols = _seeds(args.rows, "--rows"), _seeds(args.cols, "--cols")
    image_format(args.output)
    device = _device(args.device)
    first, _, last = args.styles.partition("-")
    if not (first.strip().isdigit() and (not last or last.strip().isdigit())):
        raise ValueError(f"--styles {args.styles!r}: give a layer range FIRST-LAST, e.g. 0-6")
    styles = slice(int(first), int(last or int(first) + 1))
    if styles.start >= styles.stop:
        raise ValueError(f"--styles {args.styles}: the range is reversed or empty: FIRST-LAST with FIRST < LAST")
    gan = hub.load(args.name).to(device)
    if not hasattr(gan, "style_mix"):
        raise ValueError(f"{args.name} is a {gan.variant}: style mixing needs a StyleGAN2")
    num_ws = gan.sampling_generator.num_ws
    if styles.stop > num_ws:
        raise ValueError(f"--styles {args.styles}: {args.name} has {num_ws} style layers: ranges within 0-{num_ws}")
    images, nrow = gan.mixing_figure(rows, cols, styles=styles, truncation_psi=args.truncation)
    path = save_grid(images, args.output, nrow=nrow)
    print(f"wrote a {len(rows)}x{len(cols)} style-mixing grid of {args.name} (styles {styles.start}:{styles.stop}) "
          f"to {path}")  # fmt: skip


def _image_jobs(input: str, output: str) -> list[tuple[Path, Path]]:
    """``(input file, output file)`` for one image, or for every image under a folder (names and subfolders kept)."""
    from ganzoo.data import IMAGE_EXTENSIONS
    from ganzoo.gan import image_format

    source, target = Path(input), Path(output)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {source}")
        return [(f, target / f.relative_to(source)) for f in files]
    if source.is_file():
        image_format(target)
        return [(source, target)]
    raise FileNotFoundError(f"no image or folder {source}")


def _save_image(image: Any, out: Path) -> None:
    """Write a PIL image atomically in the format ``out``'s extension names (JPEG drops an alpha channel and keeps 8
    bits of a 16-bit image)."""
    import numpy as np
    from PIL import Image

    from ganzoo.gan import image_format

    fmt = image_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        image = image.convert(image.mode[:-1])
    elif fmt == "JPEG" and image.mode.startswith("I"):  # 16-bit gray: JPEG holds 8 bits
        image = Image.fromarray((np.asarray(image) / 257).round().astype(np.uint8))
    hub._atomic_write(out, lambda tmp: image.save(tmp, format=fmt))


def cmd_demo(args: argparse.Namespace) -> None:
    from ganzoo import demo

    try:
        demo.launch(args.name, port=args.port, share=args.share, host=args.host)
    except demo.DemoUnavailableError as e:
        raise ValueError(str(e)) from None


def cmd_translate(args: argparse.Namespace) -> None:
    from ganzoo.data import read_image, to_unit_range
    from ganzoo.gan import _progress, to_pil

    jobs = _image_jobs(args.input, args.output)
    device = _device(args.device)
    gan = hub.load(args.name).to(device)
    if not hasattr(gan, "translate"):
        raise ValueError(f"{args.name} ({gan.variant}) generates images from noise: use ganzoo sample {args.name}")
    if gan.task == "super-resolution":
        raise ValueError(f"{args.name} is a super-resolution model: use ganzoo upscale {args.name} INPUT OUTPUT")
    gan.direction_network(args.direction)  # an unknown or missing direction fails before any work
    for f, out in _progress(jobs, len(jobs) > 1, desc="translating", unit="image"):
        image = to_unit_range(read_image(f, gan.channels(args.direction)))  # a truncated file: one line naming it
        translated = gan.translate(image[None], args.direction, pad=not args.no_pad, tile=args.tile,
                                   tile_overlap=args.tile_overlap)  # fmt: skip
        _save_image(to_pil(translated)[0], out)
    n = len(jobs)
    print(f"translated {n} image{'s' * (n > 1)} with {args.name} ({args.direction}) to {args.output}")


def cmd_upscale(args: argparse.Namespace) -> None:
    import torch

    from ganzoo.data import open_image
    from ganzoo.gan import _progress

    jobs = _image_jobs(args.input, args.output)
    device = _device(args.device)
    gan = hub.load(args.name).to(device)
    if getattr(gan, "task", None) != "super-resolution":
        use = "translate" if hasattr(gan, "translate") else "sample"
        raise ValueError(f"{args.name} ({gan.variant}) is not a super-resolution model: use ganzoo {use} {args.name}")
    options = dict(tile=args.tile or "auto", overlap=args.overlap, dtype=torch.bfloat16 if args.bf16 else None)
    for f, out in _progress(jobs, len(jobs) > 1, desc="upscaling", unit="image"):
        _save_image(gan.upscale(open_image(f, None), **options), out)  # gray, RGB or with alpha, as the file holds
    n, s = len(jobs), gan.output_scale
    print(f"upscaled {n} image{'s' * (n > 1)} {s}x with {args.name} to {args.output}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ganzoo import metrics

    if (args.name is None) == (args.fake is None):
        raise ValueError("give a model NAME or --fake DIR (one of them)")
    _at_least(args.num_samples, "--num-samples", 2)
    _at_least(args.num_real, "--num-real", 2)
    _at_least(args.batch_size, "--batch-size")
    result = metrics.evaluate(
        args.name,
        fake=args.fake,
        real=args.real,
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
        num_samples=args.num_samples,
        num_real=args.num_real,
        seeds=_seeds(args.seeds, "--seeds"),
        feature_net=args.feature_net,
        batch_size=args.batch_size,
        device=_device(args.device) if args.device else None,
    )
    print(metrics.format_result(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


def cmd_export(args: argparse.Namespace) -> None:
    folder = Path(args.folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if not (folder / hub.CONFIG_NAME).is_file():
            raise ValueError(f"{folder} exists and is not an empty folder or a ganzoo model: export to a new folder")
        if not args.overwrite:
            raise ValueError(f"{folder} already holds a ganzoo model: add --overwrite to replace it")
    source = Path(args.checkpoint)
    if source.is_dir():
        if not (source / "checkpoints" / "last.ckpt").is_file():
            runs = sorted(source.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
            hint = f" (the newest run here is {runs[-1].parent.parent})" if runs else ""
            raise FileNotFoundError(f"{source} is not a run folder: it has no checkpoints/last.ckpt{hint}; give a "
                                    "run folder or a .ckpt file")  # fmt: skip
        source = source / "checkpoints" / "last.ckpt"
    if args.average_from is None:
        gan = hub.load_lightning_checkpoint(source)
    else:
        gan = hub.average_checkpoints(source, args.average_from)
    folder = hub.save_pretrained(gan, args.folder, name=args.name)
    print(f"exported {source} ({gan.variant}, {gan.images_seen} images seen) to {folder}")


def cmd_push(args: argparse.Namespace) -> None:
    url = hub.push_to_hub(
        args.folder, args.repo_id, private=args.private, commit_message=args.message, space=args.space
    )
    print(f"pushed {args.folder} to {url}")
    if args.space:
        space = args.repo_id if args.space is True else args.space
        print(f"the demo Space: https://huggingface.co/spaces/{space} (it builds for a few minutes)")


def fit(argv: list[str]) -> int:
    """``ganzoo fit``: LightningCLI's ``fit`` with ganzoo's model and data base classes, one folder per run
    (:func:`_run_folder`), and a clean stop on a signal."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningCLI

    from ganzoo.callbacks import StopOnSignal
    from ganzoo.data import DataNotFoundError, ImageDataModule
    from ganzoo.gan import GAN

    class GanzooCLI(LightningCLI):
        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand]
            trainer = config.trainer
            if trainer.strategy in ("auto", "ddp") and _device_count(trainer.accelerator, trainer.devices) > 1:
                trainer.strategy = "gan_ddp"  # one DDP per network; Lightning's ddp wraps G and D together
            name = recipe or config.model.class_path.rpartition(".")[2].lower()
            explicit = [Path(c.init_args.dirpath) for c in trainer.callbacks or [] if _get(c, "init_args", "dirpath")]
            run.update(_run_folder(Path(trainer.default_root_dir or "runs") / name, config.ckpt_path, explicit))
            trainer.default_root_dir, config.ckpt_path = str(run["dir"]), run["ckpt"]
            if trainer.logger is None or trainer.logger is True:  # each start (and resume) of the run: logs/version_N
                trainer.logger = {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                                  "init_args": {"save_dir": str(run["dir"]), "name": "logs"}}  # fmt: skip

        def before_fit(self) -> None:
            # The exact recipe travels inside every checkpoint, so an export can ship it.
            config = self.config[self.subcommand]
            self.model.training_config = self._parser(self.subcommand).dump(config, skip_unset=False)
            for c in self.trainer.checkpoint_callbacks:
                if isinstance(c, ModelCheckpoint) and c.dirpath is None:
                    c.dirpath = str(run["dir"] / "checkpoints")
            # Ctrl-C and SIGTERM stop at a batch boundary with a checkpoint (before the checkpoint callbacks,
            # which Lightning keeps last).
            self.trainer.callbacks.insert(0, stop)
            if self.trainer.is_global_zero:
                print(f"ganzoo fit: {run['message']}", file=sys.stderr)
                print(f"ganzoo fit: {_where_logs_go(self.trainer)}", file=sys.stderr)

    recipes = ", ".join(sorted(_recipes()))
    if not argv:
        print(FIT_USAGE.splitlines()[0], file=sys.stderr)
        print(f"ganzoo fit: error: give a recipe: --recipe NAME ({recipes}) or --config FILE; ganzoo fit --help "
              "shows every option", file=sys.stderr)  # fmt: skip
        return 2
    if "-h" in argv or "--help" in argv:
        print(FIT_USAGE.format(recipes=recipes))
        print("LightningCLI's options (any of them overrides the recipe):\n", flush=True)
    registry.variants()  # import every model file, so class paths resolve
    stop, run = StopOnSignal(), {}
    try:
        args, recipe = _resolve_recipes(argv)
        cli = GanzooCLI(
            GAN,
            ImageDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=["fit", *args],
            save_config_kwargs={"overwrite": True},
            # A misspelt override is an error, never a prefix of an option taken for it (--trainer.max_epoch).
            parser_kwargs={"exit_on_error": False, "allow_abbrev": False},
        )
    except argparse.ArgumentError as e:
        print(f"ganzoo fit: error: {_argument_error(str(e))}", file=sys.stderr)
        return 2
    except (DataNotFoundError, registry.UnknownModelError, FileNotFoundError, RunFolderError,
            MisconfigurationException) as e:  # fmt: skip
        print(f"ganzoo fit: error: {e}", file=sys.stderr)
        return 1
    finally:  # handed to the processes Lightning starts for the other devices, and to nothing after this fit
        os.environ.pop(_RUN_ENV, None)
    if stop.signal is None:
        return 0
    if cli.trainer.is_global_zero:
        args, skip = [], False
        for a in argv:  # the same command, resuming from the checkpoint just written
            if not skip and not a.startswith("--ckpt_path"):
                args.append(a)
            skip = a == "--ckpt_path"
        resume = " ".join(["ganzoo fit", *args, "--ckpt_path", stop.checkpoint])
        requeued = f"; requeued SLURM job {stop.requeued}" if stop.requeued else ""
        print(f"ganzoo fit: stopped by {stop.signal.name} at batch {stop.batch} ({cli.model.images_seen / 1000:.3f} "
              f"kimg); saved {stop.checkpoint}{requeued}. Resume with: {resume}", file=sys.stderr)  # fmt: skip
    return 128 + stop.signal.value


def _where_logs_go(trainer: Any) -> str:
    """Where a run's loggers write, and for TensorBoard the command that shows it (all of the run's starts)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    if not trainer.loggers:
        return "no logger (--trainer.logger=false): losses and sample grids are not logged"
    where = []
    for logger in trainer.loggers:
        folder = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
        where.append(f"{type(logger).__name__} in {folder}" if folder else type(logger).__name__)
    line = "logs to " + ", ".join(where)
    boards = [logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
    if boards:
        root = Path(boards[0].root_dir)  # logs/, holding version_N of each start of this run
        line += f"; watch them with: tensorboard --logdir {shlex.quote(str(root))}  (then open http://localhost:6006)"
    return line


FIT_USAGE = """usage: ganzoo fit (--recipe NAME | --config FILE) [--ckpt_path last|last-or-new|FILE] [--KEY=VALUE ...]

Train from a recipe: a shipped one by name (--recipe NAME) or a LightningCLI YAML file (--config FILE).
Shipped recipes: {recipes}.
Any setting overrides the recipe: --trainer.max_epochs=1, --model.lr=0.001, --data.batch_size=64.
Each run writes its checkpoints, logs and samples to <--trainer.default_root_dir, default runs>/<recipe>/run-N;
--ckpt_path last resumes the newest run (last-or-new: or starts one), --ckpt_path FILE a checkpoint.
"""


def _argument_error(message: str) -> str:
    """One line for a LightningCLI (jsonargparse) parsing error: the option, what is wrong, the closest valid
    option for a misspelt one."""
    import difflib
    import re

    lines = [line.strip() for line in message.splitlines() if line.strip()]
    unknown = re.match(r"unrecognized arguments: (.*)", lines[0])
    if unknown:
        wrong = [a.partition("=")[0] for a in unknown.group(1).split() if a.startswith("-")] or [unknown.group(1)]
        close = difflib.get_close_matches(wrong[0], _fit_options(), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else "; ganzoo fit --help lists the options"
        return f"unknown option {wrong[0]}{hint}"
    key = re.match(r'Parser key "([^"]+)"', lines[0])
    where = base = f"--{key.group(1)}" if key else "fit"
    given = next((line.partition(": ")[2] for line in lines if line.startswith("Given value:")), None)
    nested = re.match(r"NestedArg\(key='(\w+)', val='(.*)'\)", given or "")
    if nested:  # --model.x=..., --data.x=...
        where, given = f"{base}.{nested.group(1)}", nested.group(2)
    option = next((m for line in lines if (m := re.search(r"Option '(\w+)' is not accepted", line))), None)
    cls = next((m for line in lines if (m := re.search(r"given class_path '([\w.]+)'", line))), None)
    if cls and any("has no attribute" in line or "No module named" in line for line in lines):
        return f"{where}: no class {cls.group(1)} (a class path such as ganzoo.models.dcgan.DCGAN)"
    if option and cls:
        import importlib

        module, _, name = cls.group(1).rpartition(".")
        accepted = list(inspect.signature(getattr(importlib.import_module(module), name)).parameters)
        close = difflib.get_close_matches(option.group(1), accepted, n=1, cutoff=0.6)
        hint = f"; did you mean {base}.{close[0]}?" if close else f"; it takes {', '.join(accepted)}"
        return f"{name} has no option {base}.{option.group(1)}{hint}"
    expected = [m.group(1) for line in lines if (m := re.search(r"Expected an? <class '([\w.]+)'>", line))]
    expected = sorted(set(expected) - {"NoneType"})
    if given is not None and expected:
        return f"{where}: {given!r} is not a valid value (expected {' or '.join(expected)})"
    detail = next((line.lstrip("- ") for line in lines[1:] if not line.startswith(("Subtypes", "Errors"))), "")
    return f"{where}: {detail or lines[0]}"


def _fit_options() -> list[str]:
    import lightning as L

    top = ["--config", "--recipe", "--ckpt_path", "--seed_everything", "--model", "--data", "--optimizer",
           "--lr_scheduler", "--print_config", "--trainer"]  # fmt: skip
    return top + [f"--trainer.{p}" for p in inspect.signature(L.Trainer).parameters]


class RunFolderError(ValueError):
    """A ``--ckpt_path`` that names nothing to resume, or a run folder that is taken."""


_RUN_ENV = "_GANZOO_RUN"  # the run folder the launching process chose, for the processes it starts


def _get(namespace: Any, *keys: str) -> Any:
    for key in keys:
        namespace = getattr(namespace, key, None) if not isinstance(namespace, dict) else namespace.get(key)
    return namespace


def _run_folder(root: Path, ckpt_path: str | None, checkpoint_dirs: list[Path]) -> dict[str, Any]:
    """The run folder of a ``ganzoo fit`` and the checkpoint it starts from.

    A run's checkpoints, logs and sample grids live in ``root/<run id>`` (``root`` is
    ``<default_root_dir or runs>/<recipe>``); its ``checkpoints/last.ckpt`` is always that run's newest state.
    ``ckpt_path``: ``None`` starts a new run; ``"last"`` resumes the run whose ``last.ckpt`` is newest (in a run
    folder, or in a checkpoint callback's own ``dirpath``) and is an error when there is none; ``"last-or-new"``
    starts a new run then; a file resumes from it, in its run folder when it lies in one.

    Run ids are ``run-0``, ``run-1``, ... claimed with ``mkdir``; a job started by SLURM or torchrun is named by its
    job id (``slurm-<id>``, ``torchrun-<rdzv id>``), which every process of the job knows. The processes Lightning
    starts for a node's other devices inherit the launching process's choice through the environment.
    """
    if os.environ.get(_RUN_ENV):
        handed = json.loads(os.environ[_RUN_ENV])
        return {"dir": Path(handed["dir"]), "ckpt": handed["ckpt"], "message": ""}
    resume = None
    if ckpt_path in ("last", "last-or-new"):
        found = [p for p in root.glob("*/checkpoints/last.ckpt")] + [d / "last.ckpt" for d in checkpoint_dirs]
        found = [p for p in found if p.is_file()]
        if found:
            resume = max(found, key=lambda p: p.stat().st_mtime)
        elif ckpt_path == "last":
            raise RunFolderError(f"--ckpt_path last: no checkpoint to resume in {root}: leave out --ckpt_path to start "
                                 "a new run, or use --ckpt_path last-or-new")  # fmt: skip
    elif ckpt_path is not None:
        resume = Path(ckpt_path)
        if not resume.is_file():
            raise RunFolderError(f"--ckpt_path {ckpt_path}: no such checkpoint file (--ckpt_path last resumes the "
                                 "newest run)")  # fmt: skip
    in_a_run = resume is not None and resume.parent.name == "checkpoints"
    folder = resume.parent.parent if in_a_run else _new_run(root)  # a resumed run continues in its own folder
    run = {"dir": folder, "ckpt": str(resume) if resume else None}
    os.environ[_RUN_ENV] = json.dumps({"dir": str(folder), "ckpt": run["ckpt"]})
    if resume is None:
        how = " (no checkpoint to resume)" if ckpt_path == "last-or-new" else ""
        run["message"] = f"new run{how} in {folder}: checkpoints, logs and samples go there"
    else:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(resume.stat().st_mtime))
        run["message"] = f"resuming {folder} from {resume} (saved {when})"
    return run


def _new_run(root: Path) -> Path:
    job = os.environ.get("SLURM_JOB_ID")
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    if job or "TORCHELASTIC_RUN_ID" in os.environ:
        run_id = f"slurm-{job}" if job else f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}"
        if run_id == "torchrun-none" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise RunFolderError("torchrun without --rdzv-id: give the job an id (it names the run folder, which "
                                 "every process must agree on), or use --standalone")  # fmt: skip
        folder = root / run_id
        if (folder / "checkpoints" / "last.ckpt").is_file():
            raise RunFolderError(f"run folder {folder} already holds a run of this job: resume it with --ckpt_path "
                                 "last (or last-or-new)")  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    root.mkdir(parents=True, exist_ok=True)
    taken = [int(p.name[4:]) for p in root.glob("run-*") if p.name[4:].isdigit()]
    n = max(taken, default=-1) + 1
    while True:
        try:
            (root / f"run-{n}").mkdir()
            return root / f"run-{n}"
        except FileExistsError:  # another run started in the same folder at the same moment
            n += 1


def _device_count(accelerator: str, devices: int | str | list[int]) -> int:
    """How many devices a Trainer with these settings uses per node."""
    if isinstance(devices, list):
        return len(devices)
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    if isinstance(devices, str) and devices.strip() not in ("auto", "-1"):
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()])
        if not devices.strip().isdigit():
            raise MisconfigurationException(f"--trainer.devices={devices}: give a number, a list (0,1) or auto")
        return int(devices)
    if devices in ("auto", "-1", -1):
        import torch

        gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        return torch.cuda.device_count() if gpu else 1
    return int(devices)


def _resolve_recipes(argv: list[str]) -> tuple[list[str], str | None]:
    """``--recipe NAME`` -> ``--config <shipped recipe>``, the only way to a shipped recipe: a ``--config`` path
    that does not exist is an error (FileNotFoundError), never a shipped recipe of the same name. Returns the
    arguments and the recipe's name (the last config file's stem), which names the run folders."""
    out, i, name = [], 0, None
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key in ("--recipe", "--config") and not eq and i + 1 < len(argv):
            value, i = argv[i + 1], i + 1
        if key == "--recipe":
            out += ["--config", str(registry.recipe_path(value))]
            name = value
        elif key == "--config":
            if not Path(value).is_file():
                hint = f"; the shipped one is --recipe {Path(value).stem}" if Path(value).stem in _recipes() else ""
                raise FileNotFoundError(f"no recipe file {value}{hint} (ganzoo list shows the shipped recipes)")
            out.append(f"--config={value}")
            name = Path(value).stem
        else:
            out.append(arg)
        i += 1
    return out, name


def _recipes() -> set[str]:
    return {p.stem for p in registry.shipped_dir("recipes").glob("*.yaml")}


if __name__ == "__main__":
    sys.exit(main())
