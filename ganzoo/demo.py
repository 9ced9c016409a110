"""``ganzoo demo NAME``: an interactive page in the browser for any model, built from its registry task with Gradio
(the Hugging Face Hub's demo convention). The Space that ``ganzoo push --space`` writes runs the same page.

What a page holds follows :attr:`~ganzoo.gan.GAN.task`, so a new variant gets its demo for free:

- generation: a seed (and a random one), the number of images, truncation psi where the model has it, a class
  picker for a conditional model; a latent walk tab (:meth:`~ganzoo.gan.LatentGAN.interpolate`); for StyleGAN2 a
  style-mixing tab (:meth:`~ganzoo.models.stylegan2.StyleGAN2.mixing_figure`);
- translation: an upload or an example, the direction of a two-way model, the output beside the input;
- super-resolution: an upload or an example, the tile size, a before/after slider (bicubic against the model) and
  the full-size result to download.

The model card's text and licence are on the page. Bad input (too large an upload, a file that is not an image) is
answered in the page, and the app goes on serving.
"""

from __future__ import annotations

import inspect
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from ganzoo import cards, hub, registry
from ganzoo.data import open_image
from ganzoo.gan import GAN, make_grid, to_pil

EXAMPLES = Path(__file__).parent / "examples"
# Uploads larger than this (in pixels) are refused in the page: a demo on a shared CPU must answer in seconds.
# `ganzoo translate` / `ganzoo upscale` on one's own machine take any size (tiled).
MAX_PIXELS = {"translation": 1024 * 1024, "super-resolution": 512 * 512}
MAX_IMAGES = 64
# A 32x32 sample is a speck at its natural size: generated images fill their box, pixels kept sharp.
CSS = """
#samples .image-frame, #walk-output .image-frame, #mix-output .image-frame { width: 100%; height: 100%; }
#samples img, #walk-output img, #mix-output img {
  width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated;
}
"""
MAX_SEED = 2**32 - 1  # as ganzoo sample --seed


class DemoUnavailableError(ImportError):
    """Gradio is not installed."""


def build(model: str | GAN, *, name: str | None = None, max_pixels: int | None = None) -> Any:
    """The page for ``model`` (a name, alias, folder or Hub repo id as :func:`ganzoo.load` takes, or a loaded
    model) as a ``gradio.Blocks``; ``demo.launch()`` serves it. ``max_pixels`` caps uploads (default
    :data:`MAX_PIXELS` of the task)."""
    try:
        import gradio as gr
    except ImportError:
        raise DemoUnavailableError("the demo needs Gradio: pip install 'ganzoo[demo]'") from None
    gan = hub.load(model) if not isinstance(model, GAN) else model
    name = name or (str(model) if not isinstance(model, GAN) else gan.variant)
    gan = gan.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    entry = registry.get_pretrained(name) if registry.is_pretrained(name) else None
    limit = max_pixels or MAX_PIXELS.get(gan.task, 1024 * 1024)
    with gr.Blocks(title=f"{name} · ganzoo") as page:
        gr.Markdown(_header(gan, name, entry))
        if gan.task == "super-resolution":
            _upscale_tab(gr, gan, name, limit)
        elif gan.task == "translation":
            _translate_tab(gr, gan, limit)
        else:
            _generate_tabs(gr, page, gan)
        with gr.Accordion("Model card", open=False):
            gr.Markdown(_card_text(gan, name, entry))
    return page


def launch(name: str, *, port: int | None = None, share: bool = False, host: str | None = None) -> None:
    """Build the page for ``name`` and serve it until interrupted (``share``: also through a public gradio.live
    link). ``host`` and ``port`` default to Gradio's (``GRADIO_SERVER_NAME``, ``GRADIO_SERVER_PORT``, else
    127.0.0.1 and the first free port from 7860), which a Space sets."""
    build(name).queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, share=share, max_file_size="20mb", footer_links=["api"], css=CSS
    )


# ------------------------------------------------------------------------------------------------------------------
# Generation


def _generate_tabs(gr: Any, page: Any, gan: GAN) -> None:
    psi = "truncation_psi" in inspect.signature(gan.sample).parameters
    classes = gan.class_names if gan.num_classes else []
    every = "every class in turn"
    scale = max(1, 256 // int(gan.hparams.get("image_size", 256)))  # small images shown larger in a walk

    def options(truncation: float, label: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"truncation_psi": float(truncation)} if psi else {}
        if classes and label and label != every:
            kwargs["labels"] = classes.index(label)
        return kwargs

    with gr.Tab("Generate"):
        with gr.Row():
            with gr.Column(scale=1):
                seed = gr.Number(0, label="seed", precision=0, minimum=0, maximum=MAX_SEED, elem_id="seed")
                n = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="images", elem_id="num-images")
                truncation = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="truncation psi", visible=psi)
                label = gr.Dropdown(
                    [every, *classes], value=every, label="class", visible=bool(classes), elem_id="class"
                )
                with gr.Row():
                    go = gr.Button("Generate", variant="primary", elem_id="generate")
                    lucky = gr.Button("Random seed", elem_id="random-seed")
            image = gr.Image(label="samples", type="pil", format="png", elem_id="samples", scale=2, height=420)

        def generate(seed: float, n: float, truncation: float, label: str | None) -> Image.Image:
            images = gan.sample(int(n), seed=_seed(seed), **options(truncation, label))
            return to_pil(images)[0] if len(images) == 1 else make_grid(images, gan.num_classes or None)

        inputs = [seed, n, truncation, label]
        go.click(generate, inputs, image)
        page.load(generate, inputs, image)
        lucky.click(lambda: random.randint(0, MAX_SEED), None, seed).then(generate, inputs, image)

    with gr.Tab("Latent walk"):
        with gr.Row():
            with gr.Column(scale=1):
                seeds = gr.Textbox("1,2,3", label="seeds (comma-separated, at least two)")
                frames = gr.Slider(2, 60, value=20, step=1, label="frames between seeds")
                walk_truncation = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="truncation psi", visible=psi)
                walk_label = gr.Dropdown(classes, value=classes[0] if classes else None, label="class",
                                         visible=bool(classes))  # fmt: skip
                walk = gr.Button("Walk", variant="primary", elem_id="walk")
            animation = gr.Image(
                label="looping walk (GIF)", type="filepath", scale=2, elem_id="walk-output", height=420
            )

        def make_walk(seeds: str, frames: float, truncation: float, label: str | None) -> str:
            from ganzoo.cli import save_walk

            walk_seeds = _seed_list(seeds)
            if len(walk_seeds) < 2:
                raise gr.Error(f"seeds {seeds!r}: a walk needs at least two seeds, e.g. 1,2,3")
            video = gan.interpolate(walk_seeds, int(frames), **options(truncation, label))
            path = Path(tempfile.mkdtemp(prefix="ganzoo-walk-")) / "walk.gif"
            return str(save_walk(video, path, fps=15, scale=scale))

        walk.click(make_walk, [seeds, frames, walk_truncation, walk_label], animation)

    if hasattr(gan, "mixing_figure"):
        num_ws = gan.sampling_generator.num_ws
        with gr.Tab("Style mixing"):
            with gr.Row():
                with gr.Column(scale=1):
                    rows = gr.Textbox("1,2,3", label="row seeds (their styles outside the layers below)")
                    cols = gr.Textbox("4,5,6", label="column seeds (their styles in the layers below)")
                    first = gr.Slider(0, num_ws - 1, value=0, step=1, label="first layer taken from the columns")
                    last = gr.Slider(1, num_ws, value=min(num_ws, num_ws // 2), step=1, label="up to layer")
                    mix_truncation = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="truncation psi")
                    mix = gr.Button("Mix", variant="primary", elem_id="mix")
                figure = gr.Image(
                    label="style mixing", type="pil", format="png", scale=2, elem_id="mix-output", height=420
                )

            def style_mix(rows: str, cols: str, first: float, last: float, truncation: float) -> Image.Image:
                if int(first) >= int(last):
                    raise gr.Error(f"layers {int(first)} to {int(last)}: the first must come before the last")
                styles = slice(int(first), int(last))
                images, nrow = gan.mixing_figure(
                    _seed_list(rows), _seed_list(cols), styles=styles, truncation_psi=float(truncation)
                )
                return make_grid(images, nrow)

            mix.click(style_mix, [rows, cols, first, last, mix_truncation], figure)


def _seed(value: Any) -> int:
    import gradio as gr

    if value is None or not float(value).is_integer() or not 0 <= value <= MAX_SEED:
        raise gr.Error(f"seed {value}: give a whole number from 0 to {MAX_SEED}")
    return int(value)


def _seed_list(text: str) -> list[int]:
    import gradio as gr

    items = [t for t in re.split(r"[,\s]+", text or "") if t]
    if not items or not all(t.isdigit() and int(t) <= MAX_SEED for t in items):
        raise gr.Error(f"seeds {text!r}: give whole numbers from 0 to {MAX_SEED}, separated by commas, e.g. 1,2,3")
    if len(items) > 16:
        raise gr.Error(f"{len(items)} seeds: at most 16 in the demo")
    return [int(t) for t in items]


# ------------------------------------------------------------------------------------------------------------------
# Translation and super-resolution


def _upload(gr: Any, **kwargs: Any) -> Any:
    """An image upload. Its handlers take it unprocessed (``preprocess=False``: the uploaded file's path and name),
    since Gradio's own processing opens every upload with Pillow first and would answer a file that is not an image
    with Pillow's exception; :func:`_checked` answers it with the fix."""
    return gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"], **kwargs)


def _checked(upload: dict[str, Any] | None, limit: int) -> Image.Image:
    """The uploaded image (an unprocessed upload: ``{"path", "orig_name", ...}``), or an error in the page naming
    what is wrong and what to do instead. The size is read from the header, before anything is decoded."""
    import gradio as gr

    path = (upload or {}).get("path")
    if not path:
        raise gr.Error("No image yet: upload one, or click an example below")
    name = upload.get("orig_name") or Path(path).name
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, Image.DecompressionBombError):
        raise gr.Error(f"{name} is not an image this page can read: upload a PNG, JPEG or WebP") from None
    if w * h > limit:
        raise gr.Error(f"The image is {w}x{h} ({w * h / 1e6:.2f} MP): this demo takes at most {limit / 1e6:.2f} "
                       "MP. Crop or shrink it; on your own machine `ganzoo translate` / `ganzoo upscale` take any "
                       "size.")  # fmt: skip
    try:
        return open_image(Path(path), None)
    except ValueError:
        raise gr.Error(f"{name} is damaged (truncated?): upload it again, or another image") from None


def _example_files(gan: GAN, task: str) -> list[str]:
    """Example inputs: the shipped photos for super-resolution (public domain), else generated ones of the size the
    model was trained on (:meth:`~ganzoo.gan.ImageToImageGAN.example_inputs`; the pix2pix maps are research-use only,
    so none ships)."""
    if task == "super-resolution":
        return sorted(str(p) for p in EXAMPLES.glob("*.png"))
    folder = Path(tempfile.mkdtemp(prefix="ganzoo-examples-"))
    paths = []
    for i, image in enumerate(to_pil(gan.example_inputs(3, seed=0))):
        image.save(folder / f"example-{i}.png")
        paths.append(str(folder / f"example-{i}.png"))
    return paths


def _translate_tab(gr: Any, gan: GAN, limit: int) -> None:
    directions = list(gan.directions)
    with gr.Tab("Translate"):
        with gr.Row():
            source = _upload(gr, label="input", elem_id="input")
            result = gr.Image(label="output", type="pil", format="png", elem_id="output", interactive=False)
        direction = gr.Radio(directions, value=directions[0], label="direction", visible=len(directions) > 1)
        go = gr.Button("Translate", variant="primary", elem_id="translate")
        gr.Examples(_example_files(gan, gan.task), inputs=source, label="generated examples", elem_id="examples")

    def translate(image: dict[str, Any] | None, direction: str) -> Image.Image:
        image = _checked(image, limit).convert("L" if gan.channels(direction) == 1 else "RGB")
        return gan.translate(image, direction)

    go.click(translate, [source, direction], result, preprocess=False)


def _upscale_tab(gr: Any, gan: GAN, name: str, limit: int) -> None:
    s = gan.output_scale
    with gr.Tab(f"Upscale {s}x"):
        with gr.Row():
            with gr.Column(scale=1):
                source = _upload(gr, label="input", elem_id="input")
                tile = gr.Slider(0, 512, value=0, step=32, label="tile size in input pixels (0: automatic)")
                go = gr.Button("Upscale", variant="primary", elem_id="upscale")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label=f"bicubic | {name}", type="pil", format="png", elem_id="slider")
                download = gr.File(label=f"full-size result ({s}x, PNG)", elem_id="download")
        gr.Examples(
            _example_files(gan, gan.task), inputs=source, label="example (NASA, public domain)", elem_id="examples"
        )

    def upscale(image: dict[str, Any] | None, tile: float) -> tuple[tuple[Image.Image, Image.Image], str]:
        image = _checked(image, limit)
        big = gan.upscale(image, tile=int(tile) or "auto")
        bicubic = image.resize((image.width * s, image.height * s), Image.BICUBIC)
        path = Path(tempfile.mkdtemp(prefix="ganzoo-upscale-")) / f"upscaled-x{s}.png"
        big.save(path)
        return (bicubic.convert(big.mode), big), str(path)

    go.click(upscale, [source, tile], [slider, download], preprocess=False)


# ------------------------------------------------------------------------------------------------------------------
# Text


def _header(gan: GAN, name: str, entry: registry.Pretrained | None) -> str:
    what = f"{entry.description}." if entry and entry.description else f"A {gan.variant} model."
    lic = entry.license if entry else "see the model card"
    return f"# {name}\n\n{what} Licence: **{lic}**. Made with ganzoo: `ganzoo demo {name}` serves this page."


def _card_text(gan: GAN, name: str, entry: registry.Pretrained | None) -> str:
    """The model card's Markdown as the Hub shows it, less its metadata block and the samples image (a file beside
    the card, not in the page): a shipped model's own card, a Hub repo's, else one written for these weights (which
    states no metric, since none was measured on them)."""
    text = None
    if entry and entry.folder:
        path = registry.shipped_dir("checkpoints") / entry.folder / cards.CARD_NAME
        text = path.read_text() if path.is_file() else None
    elif not entry and hub.REPO_ID.match(name) and not Path(name).exists():
        try:
            text = (hub.download(name, files=[cards.CARD_NAME]) / cards.CARD_NAME).read_text()
        except Exception:  # the model itself came from there; a missing card is not worth a dead page
            text = None
    text = text or cards.model_card(gan, name, entry)
    body = text.split("\n---\n", 1)[1] if text.startswith("---") else text
    return "\n".join(line for line in body.splitlines() if not line.startswith("![samples]"))
