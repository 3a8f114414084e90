"""Option groups and error handling shared by every ``smar-sdk`` command (the core CLI and the demo)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .errors import SMARError

EXIT_INTERRUPTED = 130  # the shell's code for a run stopped by Ctrl-C


def split_fields(value: str) -> list[str]:
    """``"brand, title"`` -> ``["brand", "title"]`` (the comma-separated field options)."""
    return [field.strip() for field in value.split(",") if field.strip()]


def text_field_names(value: str) -> list[str]:
    """The ``--text-fields`` value as field names; a value that names none is a usage error."""
    fields = split_fields(value)
    if not fields:
        raise click.BadParameter(f"{value!r} names no field; give one or more, e.g. brand,title",
                                 param_hint="--text-fields")
    return fields


def field_mapping(model: Any, id_field: str, text_fields: str | None, image_field: str) -> Any:
    """The catalog ``FieldMapping`` of the mapping options (text fields default to the model's)."""
    from .catalog import FieldMapping

    fields = text_field_names(text_fields) if text_fields else model.config.text_fields
    return FieldMapping(id_field=id_field, text_fields=fields, image_field=image_field)


def collection_exists(vector_store: Any) -> bool:
    """Whether the store's collection exists, by the connector's ``dimension()`` (True for a connector without
    one, which cannot tell)."""
    dimension = getattr(vector_store, "dimension", None)
    return not callable(dimension) or dimension() is not None


def require_collection(vector_store: Any, uri: str | None) -> None:
    """Stop with one clear line when the collection does not exist (a mistyped --collection, --uri or --store)."""
    from .store import missing_collection_error, safe_uri

    if not collection_exists(vector_store):
        where = safe_uri(str(getattr(vector_store, "uri", None) or uri or "the connector's default location"))
        raise missing_collection_error(vector_store, where, command_line=True)


def store_kwargs(store: str, uri: str | None, collection: str, api_key: str | None,
                 retry_seconds: float | None = None) -> dict[str, Any]:
    """``open_store`` arguments from the store options: the API key only when given, the retry budget only when
    given and the connector retries (``SMAR_RETRY_SECONDS`` set for Milvus must not break the Qdrant commands)."""
    from .store import connector_takes

    kwargs: dict[str, Any] = {"store": store, "uri": uri, "collection": collection}
    if api_key:
        kwargs["api_key"] = api_key
    if retry_seconds is not None and connector_takes(store, "retry_seconds"):
        kwargs["retry_seconds"] = retry_seconds
    return kwargs


def fail_cleanly(fn: Callable) -> Callable:
    """Turn SDK errors into one clear line on stderr and exit status 1, and Ctrl-C into exit status 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SMARError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt as exc:  # a command may re-raise it with what to do next as its message
            click.echo(f"\ninterrupted: {exc}" if str(exc) else "\ninterrupted", err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None

    return wrapper


def store_options(fn: Callable) -> Callable:
    """--store, --uri, --collection, --api-key, --retry-seconds: where the vectors live."""
    options = [
        click.option("--store", default="qdrant", show_default=True, envvar="SMAR_STORE",
                     help="Connector name (entry point in `smar_sdk.connectors`): qdrant, milvus, ..."),
        click.option("--uri", default=None, envvar="SMAR_URI",
                     help="Embedded store path (qdrant: folder, default ./smar_data; milvus: ./smar.db) or a "
                          "server URL such as http://localhost:6333."),
        click.option("--collection", default="products", show_default=True, envvar="SMAR_COLLECTION",
                     help="Collection (table) holding the item vectors."),
        click.option("--api-key", default=None, envvar="SMAR_API_KEY",
                     help="API key or token for a store server (or set SMAR_API_KEY); never printed."),
        click.option("--retry-seconds", type=click.FloatRange(min=0), default=None, envvar="SMAR_RETRY_SECONDS",
                     help="How long each call retries, with backoff, while a Milvus server is unreachable or "
                          "restarting [default: 60; 0: fail at once]; ignored by connectors that do not retry."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), fn)


def model_option(fn: Callable) -> Callable:
    return click.option("--model", "model_dir", default=None, envvar="SMAR_MODEL",
                        type=click.Path(file_okay=False, path_type=Path),
                        help="Trained model directory (config.json + model.safetensors); "
                             "default: the shipped model.")(fn)


def mapping_options(fn: Callable) -> Callable:
    options = [
        click.option("--id-field", default="id", show_default=True, help="Catalog field holding the product id."),
        click.option("--text-fields", default=None,
                     help="Comma-separated catalog fields joined into the item text (default: the model's, title)."),
        click.option("--image-field", default="image", show_default=True,
                     help="Catalog field holding the image path or URL (the shared data also has `thumbnail`)."),
    ]
    return functools.reduce(lambda f, option: option(f), reversed(options), fn)


def only_option(fn: Callable) -> Callable:
    return click.option("--only", "only", multiple=True, metavar="FIELD=VALUE",
                        help="Use only catalog rows whose FIELD equals VALUE (repeatable), e.g. --only split=test.")(fn)


def query_synonyms(path: Path | None) -> Any:
    """The ``--synonyms`` file's ``QuerySynonyms``, read before the model loads (None without the option)."""
    from .query_synonyms import QuerySynonyms

    return QuerySynonyms.from_file(path) if path else None


synonyms_option = click.option(
    "--synonyms", "synonyms_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Shop synonyms for queries: one comma-separated group per line, the catalog's word first "
         "(\"sunglasses, sunnies\"); later words in a query are searched as the first.")
