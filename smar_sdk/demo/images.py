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

    Relative image paths are resolved against ``images_dir`` (default: the catalog's folder, as the catalog was
    indexed); a path that resolves outside it (``../``, a symlink, an absolute path elsewhere) is served only with
    ``allow_outside`` (as the catalog was indexed with ``--allow-outside-images``), and a file without an image suffix
    never. http(s) references are handed to the browser as they are.
    """

    def __init__(self, catalog: str | Path, mapping: FieldMapping | None = None, allow_outside: bool = False,
                 images_dir: str | Path | None = None) -> None:
        self.catalog = Path(catalog)
        self.folder = Path(images_dir).resolve() if images_dir is not None else self.catalog.resolve().parent
        self.allow_outside = allow_outside
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
        if _is_url(reference):
            return reference
        return f"/images/{quote(hit.id, safe='')}" if self.path(hit.id) is not None else None  # never a known 404

    def path(self, item_id: str) -> Path | None:
        """The image file of a product, or None when unknown, not an image or (unless ``allow_outside``) outside the
        catalog folder."""
        resolved = self._resolved(self._references.get(item_id))
        if resolved is None or not (self.allow_outside or resolved.is_relative_to(self.folder)):
            return None
        return resolved if resolved.suffix.lower() in IMAGE_SUFFIXES and resolved.is_file() else None

    def missing_count(self) -> int:
        """How many local image references name no file at all (a catalog served away from its images)."""
        return sum(1 for reference in self._references.values()
                   if (resolved := self._resolved(reference)) is not None and not resolved.exists())

    def outside_count(self) -> int:
        """How many local image references resolve outside the catalog folder (served only with ``allow_outside``)."""
        return sum(1 for reference in self._references.values()
                   if (resolved := self._resolved(reference)) is not None and not resolved.is_relative_to(self.folder))

    def _resolved(self, reference: str | None) -> Path | None:
        if reference is None or _is_url(reference):
            return None
        candidate = Path(reference).expanduser()
        return (candidate if candidate.is_absolute() else self.folder / candidate).resolve()
