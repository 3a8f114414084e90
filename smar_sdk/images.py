"""Load product images from local files or http(s) URLs, safely: size caps, timeouts, confinement."""

from __future__ import annotations

import copy
import hashlib
import io
import stat
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
URL_TIMEOUT_SECONDS = 10.0
SIXTEEN_BIT_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
WIDE_GREY_MODES = (*SIXTEEN_BIT_GREY_MODES, "I", "F")


class ImageLoader:
    """Opens an image reference: a path relative to ``base_dir``, an absolute path, or an http(s) URL.

    Relative paths may not escape ``base_dir`` unless ``allow_outside`` is set. Decompression bombs,
    oversized downloads and undecodable files raise ``ImageError`` naming the reference. With ``mirror``, every
    image comes back flipped left to right (a training augmentation).
    """

    def __init__(self, base_dir: str | Path | None = None, allow_outside: bool = False,
                 max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS,
                 timeout: float = URL_TIMEOUT_SECONDS, mirror: bool = False) -> None:
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else Path.cwd().resolve()
        self.allow_outside = allow_outside
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.timeout = timeout
        self.mirror = mirror

    def mirrored(self) -> ImageLoader:
        """The same loader, returning every image flipped left to right."""
        mirrored = copy.copy(self)
        mirrored.mirror = True
        return mirrored

    def load(self, reference: object) -> Image.Image:
        image = self._load(reference)
        return ImageOps.mirror(image) if self.mirror else image

    def _load(self, reference: object) -> Image.Image:
        if isinstance(reference, Image.Image):
            return as_rgb(reference)
        reference = _reference_text(reference)
        if reference[:5].lower() == "data:":
            raise ImageError("image is a data: URI, which is not supported: save the picture as a file and give its "
                             "path, or serve it over http(s)")
        if "://" in reference:
            return self._decode(self._download(reference), reference)
        return self._decode(self._read_file(reference), reference)

    def identity(self, reference: object) -> str:
        """What a cache may key this image by: a local file by its resolved path, size and modification time (a
        photo replaced under the same name, or the same name in another catalog folder, is another image); a URL
        or an unreadable reference by itself."""
        if not isinstance(reference, str) or "://" in reference:
            return repr(reference)
        try:
            path = self.resolve_path(reference)
            info = path.stat()
        except (ImageError, OSError):
            return repr(reference)
        return f"{path}:{info.st_size}:{info.st_mtime_ns}"

    def version(self, reference: str) -> str:
        """What a stored vector records of its image: a local file's reference with a digest of its bytes (a photo
        replaced under the same name, or deleted, reads as changed; the catalog folder copied, checked out or moved
        elsewhere does not); a URL or an unreadable file by its reference alone."""
        if "://" in reference:
            return reference
        try:
            data = self._read_file(reference)
        except ImageError:
            return reference
        return f"{reference}#{hashlib.blake2b(data, digest_size=16).hexdigest()}"

    def decode_problem(self, reference: object) -> str | None:
        """Why a local image cannot be used, found by reading and decoding it as :meth:`load` does (None when it
        decodes; a URL only a download can check)."""
        if isinstance(reference, str) and "://" in reference:
            return None
        try:
            self._load(reference)
        except ImageError as exc:
            return str(exc)
        return None

    def resolve_path(self, reference: str) -> Path:
        if "\0" in reference:
            raise ImageError(f"image path {reference!r} holds a NUL character; no file system takes that")
        try:
            path = Path(reference).expanduser()
            if path.is_absolute():
                return path
            resolved = (self.base_dir / path).resolve()
        except (RuntimeError, OSError) as exc:  # "~nobody/x.jpg" (no such user), a symlink loop
            raise ImageError(f"image path {reference!r} cannot be resolved: {exc}; fix the path or the link") from exc
        if not self.allow_outside and not resolved.is_relative_to(self.base_dir):
            raise ImageError(f"image path {reference!r} leaves the catalog folder {self.base_dir}; "
                             "if that is intended, pass allow_outside_images=True (--allow-outside-images)")
        return resolved

    def _local_file(self, reference: str) -> Path:
        """The resolved path of a local image that is a regular file within the size limit (one ``stat``)."""
        path = self.resolve_path(reference)
        try:
            info = path.stat()
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"image path {path} is not a regular file (a folder, device or pipe)")
        if info.st_size > self.max_bytes:
            raise ImageError(f"image file {path} is {info.st_size} bytes, over the {self.max_bytes}-byte limit")
        return path

    def _read_file(self, reference: str) -> bytes:
        path = self._local_file(reference)
        try:
            with path.open("rb") as handle:
                data = handle.read(self.max_bytes + 1)  # bounded even if the file grew since stat
        except OSError as exc:
            raise _unreadable(path, exc) from exc
        if len(data) > self.max_bytes:
            raise ImageError(f"image file {path} is over the {self.max_bytes}-byte limit")
        if not data:
            raise ImageError(f"image file {path} is empty (0 bytes): a copy or download cut short? Replace it")
        return data

    def _download(self, url: str) -> bytes:
        import httpx

        if not url.lower().startswith(("http://", "https://")):
            raise ImageError(f"image URL {url!r}: only http and https are allowed")
        if not _host(url):
            raise ImageError(f"image URL {url!r} names no host: write the whole address (https://host/path.jpg)")
        deadline = time.monotonic() + self.timeout
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                return self._fetch(client, url, redirects_left=3, deadline=deadline)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ImageError(f"image URL {url} could not be fetched: {exc}") from exc

    def _fetch(self, client, url: str, redirects_left: int, deadline: float) -> bytes:
        """GET ``url`` (following at most ``redirects_left`` http(s) redirects) within the whole-download deadline."""
        with client.stream("GET", url) as response:
            if response.is_redirect:
                target = str(response.next_request.url) if response.next_request else ""
                if redirects_left == 0 or not target.lower().startswith(("http://", "https://")):
                    raise ImageError(f"image URL {url} redirects to {target!r}; only http(s), at most 3 hops")
                return self._fetch(client, target, redirects_left - 1, deadline)
            if response.status_code != 200:
                raise ImageError(f"image URL {url} answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body.extend(chunk)
                if len(body) > self.max_bytes:
                    raise ImageError(f"image URL {url} is over the {self.max_bytes}-byte limit")
                if time.monotonic() > deadline:
                    raise ImageError(f"image URL {url} took over {self.timeout:g} s to download")
            return bytes(body)

    def _decode(self, data: bytes, reference: str) -> Image.Image:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(io.BytesIO(data))
                if image.width * image.height > self.max_pixels:
                    raise ImageError(f"image {reference} is {image.width}x{image.height} pixels, over the "
                                     f"{self.max_pixels}-pixel limit (possible decompression bomb)")
                image.load()
                return as_rgb(ImageOps.exif_transpose(image))  # upright, as a browser shows it
            except ImageError:
                raise
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
                    Image.DecompressionBombError) as exc:
                why = "not an image format Pillow reads" if isinstance(exc, UnidentifiedImageError) else exc
                raise ImageError(f"image {reference} cannot be decoded: {why}") from exc


def as_rgb(image: Image.Image) -> Image.Image:
    """``image`` in 8-bit RGB as a shop page shows it: transparent pixels over white, wide greys (16-bit, 32-bit
    integer and float modes) scaled to 8 bits (Pillow's own conversion would drop the alpha, leaving what it hid,
    often black, clip integer greys to white and cast 0-1 floats to black)."""
    if image.mode in WIDE_GREY_MODES:
        grey = np.asarray(image)
        eight = Image.fromarray(grey_in_eight_bits(grey, image.mode))
        hidden = image.info.get("transparency")
        image = eight if hidden is None else Image.merge(
            "LA", [eight, Image.fromarray(np.where(grey == hidden, 0, 255).astype(np.uint8))])
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def grey_in_eight_bits(grey: np.ndarray, mode: str) -> np.ndarray:
    """A wide grey image's pixels scaled to 0-255. 16-bit modes use their full range. 32-bit integer (``I``) and
    float (``F``) files do not say which range they use, so the smallest usual one that holds the brightest pixel is
    taken: 8, 16 or 31 bits; for floats 0-1 first. Negative, NaN and infinite pixels read as black."""
    if mode == "F":
        values = np.clip(np.nan_to_num(grey.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)
        brightest = float(values.max(initial=0.0))
        full = next((top for top in (1.0, 255.0, 65535.0) if brightest <= top), brightest)
        return np.rint(values / full * 255).astype(np.uint8)
    values = np.clip(grey.astype(np.int64), 0, None)  # native byte order, whatever the mode's
    brightest = int(values.max(initial=0))
    bits = 16 if mode in SIXTEEN_BIT_GREY_MODES else next(bits for bits in (8, 16, 31) if brightest < 2 ** bits)
    return (values >> (bits - 8)).astype(np.uint8)


def _reference_text(reference: object) -> str:
    """An image reference as the non-empty string a path or URL must be."""
    if not isinstance(reference, str) or not reference.strip():
        raise ImageError(f"image reference must be a non-empty string, got {reference!r}")
    return reference


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # a malformed address (an open IPv6 bracket) that httpx then names
        return "?"


def _unreadable(path: Path, exc: OSError) -> ImageError:
    return ImageError(f"image file {path} not found or unreadable ({exc.strerror or exc})")
