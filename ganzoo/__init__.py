"""ganzoo: a zoo of GANs as PyTorch Lightning modules, loadable in one line.

>>> import ganzoo
>>> gan = ganzoo.load("dcgan-mnist")
>>> images = gan.sample(16, seed=0)  # [16, 1, 32, 32] in [-1, 1]
"""

__version__ = "0.1.0"

import ganzoo.strategy  # noqa: F401  (registers the "gan_ddp" strategy with Lightning)
from ganzoo.hub import from_upstream, load, push_to_hub, save_pretrained
from ganzoo.metrics import evaluate
from ganzoo.registry import create, list_models

list = list_models  # the public name is ganzoo.list, as timm.list_models

__all__ = [
    "__version__",
    "create",
    "evaluate",
    "from_upstream",
    "list",
    "list_models",
    "load",
    "push_to_hub",
    "save_pretrained",
]
