"""``smar-sdk demo``: serve the shop demo page for an indexed collection."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..cli_options import (
    fail_cleanly,
    field_mapping,
    mapping_options,
    model_option,
    query_synonyms,
    require_collection,
    split_fields,
    store_kwargs,
    store_options,
    synonyms_option,
)

if TYPE_CHECKING:
    from .images import CatalogImages


@click.command()
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; the default serves this machine only.")
@click.option("--catalog", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="The catalog the collection was indexed from: its images (paths relative to its folder) are "
                   "served by product id. Without it only http(s) image URLs show.")
@model_option
@store_options
@mapping_options
@click.option("--facets", default="gender,article_type", show_default=True,
              help="Comma-separated payload fields offered as filter chips (and accepted as API filters).")
@click.option("--attributes", default="gender,article_type,colour", show_default=True,
              help="Comma-separated payload fields shown on each product card.")
@click.option("--pool", default=200, show_default=True, type=click.IntRange(1, 10_000),
              help="Fused candidates re-ranked in text-only mode, and counted for the filter chips.")
@click.option("--images-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder the --catalog's relative image paths start from, as `index --images-dir` read them "
                   "(default: the catalog's folder).")
@click.option("--allow-outside-images", is_flag=True,
              help="Serve --catalog images that lie outside its folder (a symlinked folder, absolute paths), as "
                   "`index --allow-outside-images` read them.")
@synonyms_option
@fail_cleanly
def demo(port: int, host: str, catalog: Path | None, model_dir: Path | None, store: str, uri: str | None,
         collection: str, api_key: str | None, retry_seconds: float | None, id_field: str, text_fields: str | None,
         image_field: str, facets: str, attributes: str, pool: int, images_dir: Path | None,
         allow_outside_images: bool, synonyms_path: Path | None) -> None:
    """Serve a shop page: search box, product grid, filter chips, and SMAR vs text-only ranking.

    \b
    Index first, then serve the same store and catalog:
      smar-sdk index catalog.jsonl
      smar-sdk demo --catalog catalog.jsonl        # open http://127.0.0.1:8000

    The page and its JSON API (GET /api/search?q=...&mode=fused|text&gender=...; described by
    /api/openapi.json) are served by the app itself; nothing loads from the internet. Text-only mode
    re-ranks the top --pool fused candidates by the model's title-only item vector.
    """
    import uvicorn

    from ..errors import FilterError
    from ..filters import parse_filter
    from ..model import SMARModel
    from ..retriever import check_store_serves
    from ..store import open_store
    from .app import SEARCH_PARAMS, create_app
    from .images import CatalogImages
    from .search import DemoSearch

    facet_fields = split_fields(facets)
    if clash := sorted(SEARCH_PARAMS & set(facet_fields)):
        raise click.BadParameter(f"{', '.join(clash)} cannot be a facet: the search API uses that parameter",
                                 param_hint="--facets")
    try:
        parse_filter(dict.fromkeys(facet_fields, ""))  # a chip must be a filter every store takes
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="--facets") from exc
    synonyms = query_synonyms(synonyms_path)
    model = SMARModel.load(model_dir)
    mapping = field_mapping(model, id_field, text_fields, image_field)
    if images_dir is not None and catalog is None:
        raise click.UsageError("--images-dir sets where --catalog's images are: give --catalog as well")
    images = (CatalogImages(catalog, mapping, allow_outside=allow_outside_images, images_dir=images_dir)
              if catalog else None)
    if images is not None:
        warn_unservable(images)
    vector_store = open_store(**store_kwargs(store, uri, collection, api_key, retry_seconds))
    try:
        require_collection(vector_store, uri)
        check_store_serves(model, vector_store)
        check_port_free(host, port)
        shown = split_fields(attributes)
        warn_unknown_fields(vector_store, {"--facets": facet_fields, "--attributes": shown})
        search = DemoSearch(model, vector_store, text_fields=mapping.text_fields, facets=facet_fields,
                            attributes=shown, pool=pool, image_url=images.url if images else None,
                            image_field=mapping.image_field, synonyms=synonyms)
        info = {"model": str(model_dir or "shipped default"), "store": store, "collection": collection,
                "catalog": str(catalog) if catalog else None}
        app = create_app(search, images, info)
        shown_host = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
        click.echo(f"serving {vector_store.count()} products from {store}:{collection} on http://{shown_host}:{port} "
                   "(Ctrl+C to stop)")
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        vector_store.close()


def check_port_free(host: str, port: int) -> None:
    """Stop with one clear line, before announcing the URL, when another process listens on ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing socket is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"cannot serve on {host}:{port} ({exc.strerror or exc}); choose another "
                                       "--port or --host") from exc


def warn_unservable(images: CatalogImages) -> None:
    """One warning line for the catalog images the page cannot show: outside the folder, or not there."""
    if not images.allow_outside and (outside := images.outside_count()):
        click.echo(f"warning: {outside} of the {len(images)} products' images lie outside {images.folder} (a "
                   "symlink, ../ or an absolute path) and are not served; pass --allow-outside-images to serve them",
                   err=True)
    if missing := images.missing_count():
        click.echo(f"warning: {missing} of the {len(images)} products' images are not found under {images.folder}; "
                   "if the catalog was indexed with --images-dir, pass the same --images-dir", err=True)


def warn_unknown_fields(vector_store: Any, options: dict[str, list[str]]) -> None:
    """One warning line per --facets / --attributes field that no sampled stored product has (a typo shows nothing)."""
    from ..filters import field_guess
    from ..store import catalog_payload
    from ..stored_models import sampled_payloads

    fields = {key for payload in sampled_payloads(vector_store, 8, 16) for key in catalog_payload(payload)}
    for option, names in options.items():
        for name in names:
            if fields and name not in fields:
                click.echo(f"warning: no stored product sampled has the field {name!r} ({option}); "
                           f"{field_guess(name, fields)}", err=True)
