"""Importing this package fills the registry: one line per variant."""

from ganzoo.models import dcgan  # noqa: F401
