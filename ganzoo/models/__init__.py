"""Importing this package fills the registry: one import per variant."""

from ganzoo.models import dcgan, stylegan2  # noqa: F401
