"""The shop demo: its JSON API on a tiny model (fast), and the real page in headless Chromium (slow, integration)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fastapi.testclient import TestClient

from smar_sdk import CatalogError, FieldMapping, SMARIndexer, SMARModel, open_store
from smar_sdk.demo.app import create_app
from smar_sdk.demo.command import demo
from smar_sdk.demo.images import CatalogImages
from smar_sdk.demo.search import DemoSearch, encode_text_view
from smar_sdk.model import DEFAULT_MODEL_DIR

from .conftest import SHARED_DATA, write_jpeg

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def index_catalog(model: SMARModel, catalog: Path, uri: Path) -> None:
    with SMARIndexer(model, uri=str(uri)) as indexer:
        report = indexer.index(catalog, progress=False)
    assert report.rejected == 0, report.rejections


@pytest.fixture()
def client(tiny_model: SMARModel, catalog: Path, tmp_path: Path) -> Iterator[TestClient]:
    index_catalog(tiny_model, catalog, tmp_path / "store")
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        images = CatalogImages(catalog)
        search = DemoSearch(tiny_model, store, image_url=images.url)
        with TestClient(create_app(search, images, {"store": "qdrant", "collection": "products"})) as test_client:
            yield test_client


def test_search_api_fused_text_and_filters(client: TestClient, tiny_model: SMARModel, catalog: Path) -> None:
    fused = client.get("/api/search", params={"q": "red shirt", "k": 5}).json()
    assert fused["mode"] == "fused" and len(fused["hits"]) == 5
    scores = [h["score"] for h in fused["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert sum(fused["facets"]["gender"].values()) == 30  # the pool (200) covers the whole catalog
    assert set(fused["facets"]["article_type"]) == {"shirt", "shoes", "dress", "watch", "bag"}
    hit = fused["hits"][0]
    assert set(hit["attributes"]) == {"gender", "article_type", "colour"} and hit["image_url"] == f"/images/{hit['id']}"

    text = client.get("/api/search", params={"q": "red shirt", "k": 30, "mode": "text"}).json()
    assert text["mode"] == "text" and "text-only" in text["mode_label"] and len(text["hits"]) == 30
    # with the whole catalog in the pool, text mode is the exact title-only ranking of the model
    rows = {json.loads(line)["id"]: json.loads(line) for line in catalog.read_text().splitlines()}
    expected = encode_text_view(tiny_model, [rows[h["id"]]["title"] for h in text["hits"]])
    expected = expected @ tiny_model.encode_queries(["red shirt"])[0]
    np.testing.assert_allclose([h["score"] for h in text["hits"]], expected, atol=1e-4)
    assert [h["score"] for h in text["hits"]] == sorted((h["score"] for h in text["hits"]), reverse=True)

    for mode in ("fused", "text"):
        women = client.get("/api/search", params={"q": "shoes", "k": 30, "mode": mode, "gender": "Women"}).json()
        assert len(women["hits"]) == 15 and {h["attributes"]["gender"] for h in women["hits"]} == {"Women"}
        assert women["filters"] == {"gender": "Women"}
        assert sum(women["facets"]["gender"].values()) == 30  # chips still offer every gender


def test_bad_requests_are_rejected(client: TestClient) -> None:
    assert client.get("/api/search").status_code == 422
    assert client.get("/api/search", params={"q": "x", "k": 0}).status_code == 422
    assert client.get("/api/search", params={"q": "x", "mode": "image"}).status_code == 422
    assert client.get("/api/search", params={"q": "   "}).status_code == 422
    typo = client.get("/api/search", params={"q": "x", "gendr": "Men"})
    assert typo.status_code == 422 and "'gendr'" in typo.json()["detail"] and "gender" in typo.json()["detail"]
    twice = client.get("/api/search", params=[("q", "x"), ("gender", "Men"), ("gender", "Women")])
    assert twice.status_code == 422 and "'gender' is given more than once" in twice.json()["detail"]
    two_queries = client.get("/api/search", params=[("q", "x"), ("q", "y")])
    assert two_queries.status_code == 422 and "'q' is given more than once" in two_queries.json()["detail"]
    empty = client.get("/api/search", params={"q": "x", "gender": ""})  # never silently unfiltered
    assert empty.status_code == 422 and "facet 'gender' is empty" in empty.json()["detail"]
    assert client.get("/api/search", params={"q": "\x00\x01 "}).json() == {"detail": "the query q is blank"}
    long = client.get("/api/search", params={"q": "x" * 20_000, "k": "many"})  # one line per parameter, no echo
    assert long.status_code == 422 and long.json() == {"detail": "q: String should have at most 500 characters; "
                                                                 "k: Input should be a valid integer, unable to parse "
                                                                 "string as an integer"}
    bogus = client.get("/api/search", params={"q": "x", **{f"p{i:04d}": "1" for i in range(5000)}})
    assert bogus.status_code == 422 and len(bogus.content) < 400 and "'p0004' and 4995 more" in bogus.json()["detail"]
    for path in ("/", "/images/sku-003"):  # link checkers and caches ask HEAD
        head = client.head(path)
        assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    note = client.get("/api/search", params={"q": "x", "gender": "women"}).json()
    assert note["hits"] == [] and note["note"] == "'gender' holds 'Women', and values match exactly, case included"
    assert client.get("/api/search", params={"q": "x", "gender": "Women"}).json()["note"] is None


def test_numeric_chips_filter_and_payload_image_urls_follow_the_image_field(tiny_model: SMARModel, catalog: Path,
                                                                            tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps({**r, "pic": f"https://cdn.example/{r['id']}.jpg", "in_stock": i % 3 == 0})
                               + "\n" for i, r in enumerate(rows)))
    index_catalog(tiny_model, catalog, tmp_path / "store")
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        search = DemoSearch(tiny_model, store, facets=("year", "in_stock"), image_field="pic")
        everything = search.search("shirt", k=30)
        year, count = next(iter(everything.facets["year"].items()))  # chip values are strings: "2012"
        chosen = search.search("shirt", k=30, filters={"year": year})
        in_stock = search.search("shirt", k=30, filters={"in_stock": "true"})
    assert len(chosen.hits) == count > 0
    assert everything.facets["in_stock"] == {"false": 20, "true": 10} and len(in_stock.hits) == 10
    assert all(h.image_url == f"https://cdn.example/{h.id}.jpg" for h in chosen.hits)


def test_list_fields_give_one_chip_per_element_and_each_chip_filters(tiny_model: SMARModel, catalog: Path,
                                                                     tmp_path: Path) -> None:
    rows = [json.loads(line) for line in catalog.read_text().splitlines()]
    catalog.write_text("".join(json.dumps({**r, "sizes": ["S", "M", {"eu": 38}] if i % 2 else ["M", "L", "M", ["XL"]],
                                           "meta": {"a": i % 2}}) + "\n" for i, r in enumerate(rows)))
    index_catalog(tiny_model, catalog, tmp_path / "store")
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        search = DemoSearch(tiny_model, store, facets=("sizes", "meta"), attributes=("sizes",))
        everything = search.search("shirt", k=30)
        small = search.search("shirt", k=30, filters={"sizes": "S"})
    odd = (len(rows)) // 2
    # objects and nested lists match no filter, so they offer no chip
    assert everything.facets == {"sizes": {"M": len(rows), "S": odd, "L": len(rows) - odd}, "meta": {}}
    assert len(small.hits) == odd and all(h.attributes["sizes"].startswith("S, M") for h in small.hits)


def test_page_assets_info_and_headers(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and '/static/app.js' in page.text and "default-src 'self'" in \
        page.headers["content-security-policy"]
    assert "http" not in "".join(line for line in page.text.splitlines() if "<script" in line or "<link" in line)
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/style.css").status_code == 200
    assert client.get("/api/docs").status_code == 404  # its page would load scripts from the internet
    search = client.get("/api/openapi.json").json()["paths"]["/api/search"]["get"]
    assert [p["name"] for p in search["parameters"]] == ["q", "k", "mode", "gender", "article_type"]  # the facets too
    info = client.get("/api/info").json()
    assert info["count"] == 30 and info["facets"] == ["gender", "article_type"] and set(info["modes"]) == {
        "fused", "text"}


def test_images_are_served_by_id_and_confined(client: TestClient, catalog: Path, tmp_path: Path) -> None:
    response = client.get("/images/sku-003")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == (catalog.parent / "images" / "003.jpg").read_bytes()
    assert client.get("/images/no-such-id").status_code == 404
    assert client.get("/images/../catalog.jsonl").status_code == 404

    outside = tmp_path.parent / f"{tmp_path.name}-outside.jpg"
    write_jpeg(outside, (1, 2, 3))
    (catalog.parent / "images" / "link.jpg").symlink_to(outside)
    sneaky = {"up": f"../{outside.name}", "abs": str(outside), "link": "images/link.jpg", "txt": "catalog.jsonl",
              "ok": str(catalog.parent / "images" / "000.jpg")}
    catalog.write_text(catalog.read_text() + "".join(json.dumps({"id": i, "title": "t", "image": ref}) + "\n"
                                                     for i, ref in sneaky.items()))
    images = CatalogImages(catalog)
    assert [images.path(i) for i in ("up", "abs", "link", "txt")] == [None] * 4
    assert images.path("ok") == (catalog.parent / "images" / "000.jpg").resolve()
    assert images.outside_count() == 3  # up, abs and link: what --allow-outside-images would serve
    allowed = CatalogImages(catalog, allow_outside=True)  # as `index --allow-outside-images` read the catalog
    assert [allowed.path(i) for i in ("up", "abs", "link", "txt")] == [outside.resolve()] * 3 + [None]
    assert images.missing_count() == 0  # a file the page cannot show (catalog.jsonl) is not a missing one
    outside.unlink()
    assert images.missing_count() == 3  # up, abs and link now name no file
    with pytest.raises(CatalogError, match="none of its 35 rows has the field 'pic' .--image-field"):
        CatalogImages(catalog, FieldMapping(image_field="pic"))  # a mistyped field would serve no image at all
    rows = catalog.read_text().splitlines()
    catalog.write_text("\n".join([*rows[:-1], rows[-1].replace('"image"', '"pic"')]) + "\n")  # the last row only
    assert len(CatalogImages(catalog, FieldMapping(image_field="pic"))) == 1  # one row has it: the others are rejects


def test_demo_command_serves_the_store(tiny_model_dir: Path, catalog: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    index_catalog(SMARModel.load(tiny_model_dir), catalog, tmp_path / "store")
    seen = {}

    def fake_run(app, host: str, port: int, **_: object) -> None:
        seen.update(host=host, port=port)
        with TestClient(app) as test_client:
            seen["hits"] = test_client.get("/api/search", params={"q": "blue bag", "k": 3}).json()["hits"]
            seen["image"] = test_client.get(seen["hits"][0]["image_url"]).status_code

    monkeypatch.setattr(uvicorn, "run", fake_run)
    port = free_port()
    result = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"),
                                       "--catalog", str(catalog), "--port", str(port)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"serving 30 products from qdrant:products on http://127.0.0.1:{port}" in result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == port and len(seen["hits"]) == 3 and seen["image"] == 200
    missing = CliRunner().invoke(demo, ["--model", str(tmp_path / "nope"), "--uri", str(tmp_path / "store")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    seen.clear()
    typo = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"),
                                     "--collection", "prodcuts", "--port", str(port)])
    assert typo.exit_code == 1 and "collection 'prodcuts' does not exist" in typo.output and not seen
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        taken = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"),
                                          "--port", str(port)])
    assert taken.exit_code == 1 and f"cannot serve on 127.0.0.1:{port}" in taken.output and "--port" in taken.output
    assert "serving" not in taken.output and not seen
    other = SMARModel.load(tiny_model_dir)
    with torch.no_grad():
        other.query_head.linear.weight.mul_(-1.0)  # same size, other weights
    other.save(tmp_path / "other")
    wrong = CliRunner().invoke(demo, ["--model", str(tmp_path / "other"), "--uri", str(tmp_path / "store"),
                                      "--port", str(port)])
    assert wrong.exit_code == 1 and "was indexed with another model" in wrong.output and not seen
    shipped = CliRunner().invoke(demo, ["--uri", str(tmp_path / "store"), "--port", str(port)])
    assert shipped.exit_code == 1 and "holds 16-d vectors but the model makes 256-d ones" in shipped.output
    clash = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"),
                                      "--facets", "gender,mode"])
    assert clash.exit_code == 2 and "mode cannot be a facet" in clash.output
    nested = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"),
                                       "--facets", "gender,sub.cat"])  # its chips could never filter
    assert nested.exit_code == 2 and "Invalid value for --facets: filter field 'sub.cat'" in nested.output
    assert CliRunner().invoke(demo, ["--port", "0"]).exit_code == 2 and not seen
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere" / "x.jpg"  # as --allow-outside-images indexes it
    write_jpeg(outside, (9, 9, 9))
    with catalog.open("a") as handle:
        handle.write(json.dumps({"id": "far", "title": "t", "image": str(outside)}) + "\n")
    for flags, warned in [([], True), (["--allow-outside-images"], False)]:
        result = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"),
                                           "--catalog", str(catalog), "--port", str(port), *flags])
        assert result.exit_code == 0 and seen["image"] == 200
        assert ("warning: 1 of the 31 products' images lie outside" in result.output) is warned
        assert ("pass --allow-outside-images to serve them" in result.output) is warned
        assert "not found" not in result.output and "no stored product sampled" not in result.output


def test_demo_command_finds_images_kept_apart_and_names_mistyped_fields(tiny_model_dir: Path, catalog: Path,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    index_catalog(SMARModel.load(tiny_model_dir), catalog, tmp_path / "store")
    apart = tmp_path / "feeds" / "catalog.jsonl"  # the catalog moved away from its images, as `index --images-dir`
    apart.parent.mkdir()
    catalog.rename(apart)
    seen: dict = {}

    def fake_run(app, **_: object) -> None:
        with TestClient(app) as test_client:
            seen["hits"] = test_client.get("/api/search", params={"q": "blue bag", "k": 3}).json()["hits"]

    monkeypatch.setattr(uvicorn, "run", fake_run)
    base = ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"), "--catalog", str(apart), "--port",
            str(free_port())]
    lost = CliRunner().invoke(demo, [*base, "--facets", "gendr,article_type", "--attributes", "colour,colur"])
    assert lost.exit_code == 0, lost.output
    assert f"warning: 30 of the 30 products' images are not found under {apart.parent}; if the catalog was " \
        "indexed with --images-dir, pass the same --images-dir" in lost.output
    assert [h["image_url"] for h in seen["hits"]] == [None] * 3  # no link the server would answer with 404
    assert "no stored product sampled has the field 'gendr' (--facets); did you mean 'gender'?" in lost.output
    assert "no stored product sampled has the field 'colur' (--attributes); did you mean 'colour'?" in lost.output
    found = CliRunner().invoke(demo, [*base, "--images-dir", str(tmp_path)])
    assert found.exit_code == 0 and "warning" not in found.output, found.output
    assert all(h["image_url"] == f"/images/{h['id']}" for h in seen["hits"])
    alone = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--images-dir", str(tmp_path)])
    assert alone.exit_code == 2 and "give --catalog as well" in alone.output
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return  # no IPv6 loopback on this machine
    port = free_port()
    six = CliRunner().invoke(demo, ["--model", str(tiny_model_dir), "--uri", str(tmp_path / "store"), "--host", "::1",
                                    "--port", str(port)])
    assert six.exit_code == 0 and f"on http://[::1]:{port} " in six.output  # a URL a browser opens


def test_a_half_replaced_collection_is_refused_through_a_filter_too(tiny_model: SMARModel, catalog: Path,
                                                                    tmp_path: Path) -> None:
    """The pool the unfiltered check sees can miss the products a filter reaches: those are checked as well."""
    index_catalog(tiny_model, catalog, tmp_path / "store")
    rows = {row["id"]: row for row in map(json.loads, catalog.read_text().splitlines())}
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        ranked = [h.id for h in DemoSearch(tiny_model, store, pool=30).search("red shirt", k=30).hits]
    last = rows[ranked[-1]]  # re-encoded as another view by a replace run cut short: far from the pool's top
    two = catalog.with_name("two.jsonl")
    two.write_text(json.dumps(last) + "\n")
    with SMARIndexer(tiny_model, uri=str(tmp_path / "store"), view="text") as indexer:
        assert indexer.index(two, progress=False, replace_model=True).indexed == 1
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        search = DemoSearch(tiny_model, store, pool=1)
        with TestClient(create_app(search, None, {})) as test_client:
            pooled = test_client.get("/api/search", params={"q": "red shirt", "k": 6})
            mixed = test_client.get("/api/search", params={"q": "red shirt", "k": 6,
                                                          "article_type": last["article_type"]})
    assert pooled.status_code == 200 and last["id"] not in {h["id"] for h in pooled.json()["hits"]}
    assert mixed.status_code == 503 and "holds products stored as two item views" in mixed.json()["detail"]


def test_a_filter_a_store_cannot_take_is_the_requests_fault(tiny_model: SMARModel, catalog: Path,
                                                            tmp_path: Path) -> None:
    index_catalog(tiny_model, catalog, tmp_path / "store")
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        search = DemoSearch(tiny_model, store, facets=("sub.cat",))  # built in code: no start-up check
        with TestClient(create_app(search, None, {})) as test_client:
            response = test_client.get("/api/search", params={"q": "shirt", "sub.cat": "A"})
    assert response.status_code == 422 and "filter field 'sub.cat'" in response.json()["detail"]


# ----- the real page in a real browser, with the shipped model and real Myntra products -----

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def myntra_subset(root: Path, size: int = 80) -> list[dict]:
    """The first ``size`` test-split products, with their images copied beside a new catalog."""
    rows = []
    for line in (SHARED_DATA / "catalog.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "test":
            (root / row["image"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(SHARED_DATA / row["image"], root / row["image"])
            rows.append(row)
        if len(rows) == size:
            break
    (root / "catalog.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


@pytest.fixture()
def live_demo(tmp_path: Path) -> Iterator[tuple[str, list[dict]]]:
    import uvicorn

    if not (SHARED_DATA / "catalog.jsonl").is_file():
        pytest.skip(f"shared Myntra data not found at {SHARED_DATA}")
    if not (DEFAULT_MODEL_DIR / "model.safetensors").is_file():
        pytest.skip(f"the shipped default model is not in {DEFAULT_MODEL_DIR} yet")
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    rows = myntra_subset(tmp_path)
    model = SMARModel.load()
    index_catalog(model, tmp_path / "catalog.jsonl", tmp_path / "store")
    with open_store("qdrant", uri=str(tmp_path / "store")) as store:
        images = CatalogImages(tmp_path / "catalog.jsonl")
        app = create_app(DemoSearch(model, store, image_url=images.url), images,
                         {"store": "qdrant", "collection": "products"})
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{server.config.port}", rows
        finally:
            server.should_exit = True
            thread.join(timeout=10)


@pytest.mark.slow
@pytest.mark.integration
def test_shop_page_in_headless_chromium(live_demo: tuple[str, list[dict]]) -> None:
    from playwright.sync_api import sync_playwright

    url, rows = live_demo
    article, _ = Counter(r["article_type"] for r in rows).most_common(1)[0]
    of_kind = [r for r in rows if r["article_type"] == article]
    colour = Counter(r["colour"] for r in of_kind).most_common(1)[0][0]
    gender = Counter(r["gender"] for r in of_kind if r["colour"] == colour).most_common(1)[0][0]
    query = f"{colour} {article} for {gender}".lower()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]")
            page.fill("#q", query)
            page.press("#q", "Enter")
            page.wait_for_selector("#grid[data-mode=fused] .card", timeout=60_000)
            page.wait_for_function("() => [...document.querySelectorAll('#grid img')].every(i => i.complete)")
            widths = page.eval_on_selector_all("#grid img", "imgs => imgs.map(i => i.naturalWidth)")
            assert len(widths) == 24 and all(w > 0 for w in widths), widths
            first = page.locator("#grid .card").first
            assert first.locator("[data-attr=article_type]").inner_text() == article, (query, first.inner_text())
            assert page.locator("#chips [data-facet=gender] .chip").count() >= 2

            renders = int(page.get_attribute("#grid", "data-renders"))
            fused_ids = page.eval_on_selector_all("#grid .card", "cards => cards.map(c => c.dataset.id)")
            page.click("#mode-text")
            page.wait_for_selector(f"#grid[data-mode=text][data-renders='{renders + 1}'] .card")
            assert "text-only" in page.inner_text("#mode-label")
            text_ids = page.eval_on_selector_all("#grid .card", "cards => cards.map(c => c.dataset.id)")
            assert len(text_ids) == 24 and set(text_ids) <= {r["id"] for r in rows}
            assert page.locator("#grid .card .delta").first.inner_text().startswith("SMAR fused")

            page.click("#mode-fused")
            page.click(f"#chips [data-facet=gender] .chip[data-value='{gender}']")
            page.wait_for_selector(f"#grid[data-renders='{renders + 3}'] .card")
            genders = page.eval_on_selector_all("#grid [data-attr=gender]", "tags => tags.map(t => t.textContent)")
            assert genders and set(genders) == {gender}
            page.click(f"#chips [data-facet=gender] .chip[data-value='{gender}']")  # back to every gender
            page.wait_for_selector(f"#grid[data-renders='{renders + 4}'] .card")
            page.wait_for_function("() => [...document.querySelectorAll('#grid img')].every(i => i.complete)")
            assert page.eval_on_selector_all("#grid .card", "cards => cards.map(c => c.dataset.id)") == fused_ids
            (REPO / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(REPO / "docs" / "demo.png"))
            assert not errors, errors
        finally:
            browser.close()
