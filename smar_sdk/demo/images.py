"""Serve a catalog's product images by product id, never by a path taken from a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..catalog import FieldMapping, Product, check_mapping, read_catalog
from ..store import Hit

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})


def _is_url(reference: str) -> bool:
    return reference.lower().startswith(("http://", "https://"))


def payload_url(hit: Hit, image_field: str = "image") -> str | None:
    """Without a catalog to serve images from, only http(s) image references can be shown."""
    image: Any = hit.payload.get(image_field)
    return image if isinstance(image, str) and _is_url(image) else None


class CatalogImages:
    """Product id -> image file of one catalog, confined to the catalog's folder.

    Relative image paths are resolved against the catalog's folder; a path that resolves outside it
    (``../``, a symlink, an absolute path elsewhere) or is not an image file is never served. http(s)
    references are handed to the browser as they are.
    """

    def __init__(self, catalog: str | Path, mapping: FieldMapping | None = None) -> None:
        self.catalog = Path(catalog)
        self.folder = self.catalog.resolve().parent
        mapping = mapping or FieldMapping()
        self.image_field = mapping.image_field
        check_mapping(self.catalog, mapping)
        self._references: dict[str, str] = {}
        for record in read_catalog(self.catalog, mapping):
            if isinstance(record, Product):
                self._references[record.id] = record.image

    def __len__(self) -> int:
        return len(self._references)

    def url(self, hit: Hit) -> str | None:
        """Where the page loads a hit's image from: ``/images/<id>``, an http(s) URL, or None."""
        reference = self._references.get(hit.id)
        if reference is None:
            return payload_url(hit, self.image_field)
        return reference if _is_url(reference) else f"/images/{quote(hit.id, safe='')}"

    def path(self, item_id: str) -> Path | None:
        """The image file of a product, or None when unknown, outside the catalog folder or not an image."""
        reference = self._references.get(item_id)
        if reference is None or _is_url(reference):
            return None
        candidate = Path(reference).expanduser()
        resolved = (candidate if candidate.is_absolute() else self.folder / candidate).resolve()
        if not resolved.is_relative_to(self.folder) or resolved.suffix.lower() not in IMAGE_SUFFIXES:
            return None
        return resolved if resolved.is_file() else None
