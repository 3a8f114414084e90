"""Image loading rules: local confinement, decompression bombs, and http(s) URLs on a loopback server."""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smar_sdk import ImageError
from smar_sdk.images import ImageLoader


def jpeg_bytes(size: tuple[int, int] = (30, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path == "/trickle.jpg":  # a byte every 0.2 s: each read is quick, the whole download is not
            body = jpeg_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body[:40]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
            return
        status, headers, body = self.routes.get(self.path, (404, {}, b"missing"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    _Handler.routes = {
        "/ok.jpg": (200, {"Content-Type": "image/jpeg"}, jpeg_bytes()),
        "/big.jpg": (200, {}, b"\xff" * 5000),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/to-ok": (302, {"Location": f"{base}/ok.jpg"}, b""),
        "/text": (200, {}, b"hello, not an image"),
    }
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base
    httpd.shutdown()


def test_urls_load_and_unsafe_ones_fail_clearly(server: str) -> None:
    loader = ImageLoader(max_bytes=4000, timeout=5)
    assert loader.load(f"{server}/ok.jpg").size == (30, 40)
    assert loader.load(f"{server}/to-ok").size == (30, 40)
    for path, message in [("/big.jpg", "over the 4000-byte limit"), ("/to-file", "only http"),
                          ("/missing", "HTTP 404"), ("/text", "cannot be decoded")]:
        with pytest.raises(ImageError, match=message):
            loader.load(f"{server}{path}")
    with pytest.raises(ImageError, match="only http and https"):
        loader.load("ftp://example.invalid/a.jpg")
    with pytest.raises(ImageError, match="names no host: write the whole address"):
        loader.load("http://")
    with pytest.raises(ImageError, match="a data: URI, which is not supported: save the picture as a file"):
        loader.load("data:image/png;base64,iVBORw0KGgo=")
    with pytest.raises(ImageError, match="could not be fetched"):
        ImageLoader(timeout=2).load("http://127.0.0.1:9/nothing.jpg")  # discard port: connection refused
    with pytest.raises(ImageError, match="could not be fetched"):
        loader.load("http://[::1/x.jpg")  # httpx.InvalidURL is not an httpx.HTTPError
    started = time.monotonic()
    with pytest.raises(ImageError, match="took over 1 s"):
        ImageLoader(timeout=1).load(f"{server}/trickle.jpg")
    assert time.monotonic() - started < 6  # the whole body would take 8 s


def test_local_paths_are_confined_and_bombs_refused(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "outside.jpg").write_bytes(jpeg_bytes())
    loader = ImageLoader(base_dir=tmp_path / "cat")
    with pytest.raises(ImageError, match="leaves the catalog folder"):
        loader.load("../outside.jpg")
    assert ImageLoader(base_dir=tmp_path / "cat", allow_outside=True).load("../outside.jpg").size == (30, 40)
    (tmp_path / "cat" / "huge.png").write_bytes(_huge_png())
    with pytest.raises(ImageError, match="pixel limit"):
        ImageLoader(base_dir=tmp_path / "cat", max_pixels=1_000_000).load("huge.png")
    truncated = jpeg_bytes((200, 200))
    (tmp_path / "cat" / "truncated.jpg").write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(ImageError, match="cannot be decoded"):
        loader.load("truncated.jpg")
    with pytest.raises(ImageError, match="non-empty string"):
        loader.load(None)
    (tmp_path / "cat" / "notes.jpg").write_text("not a picture")
    with pytest.raises(ImageError, match=r"image notes.jpg cannot be decoded: not an image format Pillow reads$"):
        loader.load("notes.jpg")
    (tmp_path / "cat" / "a-folder.jpg").mkdir()
    os.mkfifo(tmp_path / "cat" / "pipe.jpg")  # reading it would block for ever
    for name in ("a-folder.jpg", "pipe.jpg"):
        with pytest.raises(ImageError, match="not a regular file"):
            loader.load(name)
    for name in ("outside.jpg\0", str(tmp_path / "outside.jpg\0x")):
        with pytest.raises(ImageError, match="NUL character"):
            loader.load(name)
        assert loader.identity(name) == repr(name)  # the training cache key does not fail either
    (tmp_path / "cat" / "loop.jpg").symlink_to(tmp_path / "cat" / "loop.jpg")
    for name, message in [("~no-such-user-smar/a.jpg", "cannot be resolved: .*home directory"),
                          ("loop.jpg", "cannot be resolved: .*[Ss]ymlink loop|Too many levels of symbolic links")]:
        with pytest.raises(ImageError, match=message):
            loader.load(name)
        assert loader.identity(name) == repr(name) and loader.version(name) == name  # keys and hashes do not fail
        assert re.search(message, loader.decode_problem(name))
    (tmp_path / "cat" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty.jpg is empty \(0 bytes\)"):
        loader.load("empty.jpg")


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (80, 40), (200, 10, 10)).save(tmp_path / "phone.jpg", "JPEG", exif=exif)
    assert ImageLoader(base_dir=tmp_path).load("phone.jpg").size == (40, 80)


def _huge_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (4000, 4000)).save(buffer, "PNG")  # 16 MP, a few KB on disk
    return buffer.getvalue()


def _saved(tmp_path: Path, name: str, image: Image.Image) -> str:
    image.save(tmp_path / name)
    return name


@pytest.mark.parametrize("transparent", [
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)),  # the common export: transparent black
    Image.new("LA", (8, 8), (0, 0)),
    Image.new("P", (8, 8), 0),  # a palette image whose index 0 is transparent (set below)
])
def test_transparent_pixels_show_over_white_as_on_a_shop_page(tmp_path: Path, transparent: Image.Image) -> None:
    """A cut-out product photo's background is white, not the black its transparent pixels happen to hold."""
    image = transparent.copy()
    if image.mode == "P":
        image.putpalette([0, 0, 0, 200, 10, 10] + [0, 0, 0] * 254)
        image.info["transparency"] = 0
    image.paste({"RGBA": (200, 10, 10, 255), "LA": (90, 255), "P": 1}[image.mode], (2, 2, 6, 6))
    loaded = ImageLoader(base_dir=tmp_path).load(_saved(tmp_path, "cut-out.png", image))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == (255, 255, 255)
    assert loaded.getpixel((4, 4)) == {"RGBA": (200, 10, 10), "LA": (90, 90, 90), "P": (200, 10, 10)}[image.mode]
    assert ImageLoader().load(image).getpixel((0, 0)) == (255, 255, 255)  # an in-memory image too


def test_sixteen_bit_greys_keep_their_shades(tmp_path: Path) -> None:
    """Pillow clips 16-bit greys to white when it converts them; the loader scales them to 8 bits instead."""
    shades = np.array([[0, 64], [128, 255]], dtype=np.uint16) * 257
    loaded = ImageLoader(base_dir=tmp_path).load(_saved(tmp_path, "grey16.png", Image.fromarray(shades)))
    assert np.asarray(loaded)[..., 0].tolist() == [[0, 64], [128, 255]]
    Image.fromarray(shades).save(tmp_path / "grey16-cut-out.png", transparency=64 * 257)
    loaded = ImageLoader(base_dir=tmp_path).load("grey16-cut-out.png")
    assert np.asarray(loaded)[..., 0].tolist() == [[0, 255], [128, 255]]  # its transparent grey is white


@pytest.mark.parametrize(("pixels", "expected"), [
    (np.array([[0, 64], [128, 255]], dtype=np.int32) * 256, [[0, 64], [128, 255]]),  # 16-bit greys in mode I
    (np.array([[0, 64], [128, 255]], dtype=np.int32), [[0, 64], [128, 255]]),  # 8-bit greys in mode I
    (np.array([[-5, 64], [128, 255]], dtype=np.int32) << 23, [[0, 64], [128, 255]]),  # the full 31 bits
    (np.array([[0, 0.25], [0.5, 1]], dtype=np.float32), [[0, 64], [128, 255]]),  # 0-1 floats in mode F
    (np.array([[np.nan, 64], [128, 255]], dtype=np.float32), [[0, 64], [128, 255]]),  # 0-255 floats, a NaN
])
def test_wide_integer_and_float_greys_keep_their_shades(tmp_path: Path, pixels: np.ndarray,
                                                        expected: list[list[int]]) -> None:
    """A 32-bit integer or float TIFF: Pillow clips its integer greys to white and casts 0-1 floats to black."""
    image = Image.fromarray(pixels)
    assert image.mode == ("F" if pixels.dtype == np.float32 else "I")
    loaded = ImageLoader(base_dir=tmp_path).load(_saved(tmp_path, "grey.tiff", image))
    assert loaded.mode == "RGB"
    assert np.asarray(loaded)[..., 0].tolist() == expected
