"""Importing this package fills the registry: one import per variant."""

from ganzoo.models import cgan, cyclegan, dcgan, pix2pix, progan, srgan, stylegan2, wgan  # noqa: F401
