"""The ``ganzoo`` command: list | info | sample | mix | evaluate | fit | export | push.

``ganzoo fit`` is LightningCLI: every ``--trainer.*``, ``--model.*`` and ``--data.*`` override works, and
``--recipe NAME`` is short for ``--config <the shipped recipes/NAME.yaml>``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

from ganzoo import hub, registry
from ganzoo.metrics import MetricUnavailableError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganzoo", description="A zoo of GANs: list, inspect, sample, train, share.")
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

    p = sub.add_parser("export", help="turn a Lightning checkpoint into a Hub folder")
    p.add_argument("checkpoint", help="a .ckpt written by ganzoo fit")
    p.add_argument("folder", help="the folder to write (config.json, model.safetensors, README.md, samples.png)")
    p.add_argument("--name", help="model name for the card (default: the folder's name)")
    p.add_argument("--overwrite", action="store_true", help="replace the ganzoo model already in FOLDER")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("push", help="upload a Hub folder to the Hugging Face Hub in one commit")
    p.add_argument("folder", help="a folder written by ganzoo export or ganzoo.save_pretrained")
    p.add_argument("--repo-id", required=True, help="the Hub repository, e.g. you/dcgan-mnist")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload ganzoo model", help="commit message")
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


def _ints(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None


def cmd_sample(args: argparse.Namespace) -> None:
    import torch

    from ganzoo.gan import save_grid

    gan = hub.load(args.name).to(args.device)
    options = {}
    if args.truncation is not None:
        if "truncation_psi" not in inspect.signature(gan.sample).parameters:
            raise ValueError(f"{args.name} ({gan.variant}) has no truncation: leave out --truncation")
        options["truncation_psi"] = args.truncation
    seeds = _ints(args.seed)
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


def cmd_mix(args: argparse.Namespace) -> None:
    import torch

    from ganzoo.gan import save_grid

    gan = hub.load(args.name).to(args.device)
    if not hasattr(gan, "style_mix"):
        raise ValueError(f"{args.name} is a {gan.variant}: style mixing needs a StyleGAN2")
    first, _, last = args.styles.partition("-")
    styles = slice(int(first), int(last or int(first) + 1))
    rows, cols = _ints(args.rows), _ints(args.cols)
    mixed = gan.style_mix(rows, cols, styles=styles, truncation_psi=args.truncation)
    sources = gan.style_mix(rows + cols, [0], styles=slice(0, 0), truncation_psi=args.truncation)
    # The paper's layout: column sources along the top, row sources down the left, a blank corner.
    blank = torch.full_like(sources[:1], -1.0)
    top = torch.cat([blank, sources[len(rows) :]])
    body = [torch.cat([sources[i : i + 1], mixed[i * len(cols) : (i + 1) * len(cols)]]) for i in range(len(rows))]
    path = save_grid(torch.cat([top, *body]), args.output, nrow=len(cols) + 1)
    print(f"wrote a {len(rows)}x{len(cols)} style-mixing grid of {args.name} (styles {styles.start}:{styles.stop}) "
          f"to {path}")  # fmt: skip


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ganzoo import metrics

    if (args.name is None) == (args.fake is None):
        raise ValueError("give a model NAME or --fake DIR (one of them)")
    result = metrics.evaluate(
        args.name,
        fake=args.fake,
        real=args.real,
        metrics=[m.strip() for m in args.metrics.split(",") if m.strip()],
        num_samples=args.num_samples,
        num_real=args.num_real,
        seeds=[int(s) for s in args.seeds.split(",")],
        feature_net=args.feature_net,
        batch_size=args.batch_size,
        device=args.device,
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
    gan = hub.load_lightning_checkpoint(args.checkpoint)
    folder = hub.save_pretrained(gan, args.folder, name=args.name)
    print(f"exported {args.checkpoint} ({gan.variant}, {gan.images_seen} images seen) to {folder}")


def cmd_push(args: argparse.Namespace) -> None:
    url = hub.push_to_hub(args.folder, args.repo_id, private=args.private, commit_message=args.message)
    print(f"pushed {args.folder} to {url}")


def fit(argv: list[str]) -> int:
    """``ganzoo fit``: LightningCLI's ``fit`` with ganzoo's model and data base classes."""
    from lightning.pytorch.cli import LightningCLI

    from ganzoo.callbacks import StopOnSignal
    from ganzoo.data import DataNotFoundError, ImageDataModule
    from ganzoo.gan import GAN

    class GanzooCLI(LightningCLI):
        def before_instantiate_classes(self) -> None:
            trainer = self.config[self.subcommand].trainer
            if trainer.strategy in ("auto", "ddp") and _device_count(trainer.accelerator, trainer.devices) > 1:
                trainer.strategy = "gan_ddp"  # one DDP per network; Lightning's ddp wraps G and D together

        def before_fit(self) -> None:
            # The exact recipe travels inside every checkpoint, so an export can ship it.
            config = self.config[self.subcommand]
            self.model.training_config = self._parser(self.subcommand).dump(config, skip_unset=False)
            # Ctrl-C and SIGTERM stop at a batch boundary with a checkpoint (before the checkpoint callbacks,
            # which Lightning keeps last).
            self.trainer.callbacks.insert(0, stop)

    registry.variants()  # import every model file, so class paths resolve
    stop = StopOnSignal()
    try:
        cli = GanzooCLI(
            GAN,
            ImageDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=["fit", *_resolve_recipes(argv)],
            save_config_kwargs={"overwrite": True},
        )
    except (DataNotFoundError, registry.UnknownModelError, FileNotFoundError) as e:
        print(f"ganzoo fit: error: {e}", file=sys.stderr)
        return 1
    if stop.signal is None:
        return 0
    if cli.trainer.is_global_zero:
        args, skip = [], False
        for a in argv:  # the same command, resuming from the checkpoint just written
            if not skip and not a.startswith("--ckpt_path"):
                args.append(a)
            skip = a == "--ckpt_path"
        resume = " ".join(["ganzoo fit", *args, "--ckpt_path", stop.checkpoint])
        print(f"ganzoo fit: stopped by {stop.signal.name} at batch {stop.batch} ({cli.model.images_seen / 1000:.3f} "
              f"kimg); saved {stop.checkpoint}. Resume with: {resume}", file=sys.stderr)  # fmt: skip
    return 128 + stop.signal.value


def _device_count(accelerator: str, devices: int | str | list[int]) -> int:
    """How many devices a Trainer with these settings uses per node."""
    if isinstance(devices, list):
        return len(devices)
    if isinstance(devices, str) and devices.strip() not in ("auto", "-1"):
        return len([d for d in devices.split(",") if d.strip()]) if "," in devices else int(devices)
    if devices in ("auto", "-1", -1):
        import torch

        gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        return torch.cuda.device_count() if gpu else 1
    return int(devices)


def _resolve_recipes(argv: list[str]) -> list[str]:
    """``--recipe NAME`` -> ``--config <shipped recipe>``, the only way to a shipped recipe: a ``--config`` path
    that does not exist is an error (FileNotFoundError), never a shipped recipe of the same name."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        key, eq, value = arg.partition("=")
        if key in ("--recipe", "--config") and not eq and i + 1 < len(argv):
            value, i = argv[i + 1], i + 1
        if key == "--recipe":
            out += ["--config", str(registry.recipe_path(value))]
        elif key == "--config":
            if not Path(value).is_file():
                hint = f"; the shipped one is --recipe {Path(value).stem}" if Path(value).stem in _recipes() else ""
                raise FileNotFoundError(f"no recipe file {value}{hint} (ganzoo list shows the shipped recipes)")
            out.append(f"--config={value}")
        else:
            out.append(arg)
        i += 1
    return out


def _recipes() -> set[str]:
    return {p.stem for p in registry.shipped_dir("recipes").glob("*.yaml")}


if __name__ == "__main__":
    sys.exit(main())
