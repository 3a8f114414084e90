"""Backbone wrappers that expose token/patch states as well as pooled vectors."""

from .image import ImageEncoder, ImageStates
from .text import TextEncoder, TextStates

__all__ = ["ImageEncoder", "ImageStates", "TextEncoder", "TextStates"]
