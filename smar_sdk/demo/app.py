"""The demo web app: a JSON API and a static shop page (plain HTML/JS/CSS, all served by the app)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from ..errors import FilterError, SMARError
from .images import CatalogImages
from .search import DemoSearch, SearchResult

STATIC_DIR = Path(__file__).parent / "static"
MAX_K = 100
SEARCH_PARAMS = frozenset({"q", "k", "mode"})
NAMES_SHOWN = 5  # unknown parameters named in an error, at most


class ErrorBody(BaseModel):
    """Every error the API answers: one line saying what is wrong and what to do."""

    detail: str


ERRORS = {422: {"model": ErrorBody, "description": "a parameter is wrong (the detail says which)"},
          503: {"model": ErrorBody, "description": "the store or the model failed (the detail says what to do)"}}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' http: https:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(search: DemoSearch, images: CatalogImages | None = None, info: dict[str, Any] | None = None) -> FastAPI:
    """Build the app around a ready :class:`DemoSearch` (and the catalog images it may serve)."""
    if clash := sorted(SEARCH_PARAMS & set(search.facets)):
        raise ValueError(f"{', '.join(clash)} cannot be a facet: the search API uses that parameter")
    # no /api/docs: FastAPI's interactive docs page loads its scripts from a CDN, and the demo works offline
    app = FastAPI(title="smar-sdk shop demo", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    details = {**(info or {}), "facets": search.facets, "attributes": search.attributes, "pool": search.pool,
               "modes": {m: search.mode_label(m) for m in ("fused", "text")},
               "images": "catalog" if images is not None else "http(s) payload URLs only"}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(SMARError)
    async def smar_error(_: Request, exc: SMARError) -> JSONResponse:  # the store or model failed
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(FilterError)
    async def filter_error(_: Request, exc: FilterError) -> JSONResponse:  # the request's filter is at fault
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_detail(exc)}, status_code=422)  # never the input echoed back

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/info")
    def api_info() -> dict[str, Any]:
        """The model, store and collection behind the demo, the facets and what each mode means."""
        return {**details, "count": search.count()}

    facet_params = [{"name": f, "in": "query", "required": False, "schema": {"type": "string", "minLength": 1},
                     "description": f"only products whose {f} is this value (exact match)"} for f in search.facets]

    @app.get("/api/search", response_model=SearchResult, responses=ERRORS,  # type: ignore[arg-type]
             openapi_extra={"parameters": facet_params})
    def api_search(request: Request, q: str = Query(min_length=1, max_length=500),
                   k: int = Query(24, ge=1, le=MAX_K),
                   mode: Literal["fused", "text"] = "fused") -> SearchResult:
        """Products for query ``q``; every facet field (``gender``, ``article_type``, ...) is an equality filter."""
        if not "".join(c for c in q if c.isprintable()).strip():  # spaces, or control characters such as NUL
            raise HTTPException(422, "the query q is blank")
        if unknown := sorted(set(request.query_params) - SEARCH_PARAMS - set(search.facets)):
            more = f" and {len(unknown) - NAMES_SHOWN} more" if len(unknown) > NAMES_SHOWN else ""
            raise HTTPException(422, f"unknown parameter {', '.join(map(repr, unknown[:NAMES_SHOWN]))}{more}: filters "
                                     f"are the facets {search.facets} (see /api/info)")
        if repeated := sorted(f for f in request.query_params if len(request.query_params.getlist(f)) > 1):
            raise HTTPException(422, f"parameter {repeated[0]!r} is given more than once; it takes one value")
        if empty := sorted(f for f in search.facets if f in request.query_params and not request.query_params[f]):
            raise HTTPException(422, f"facet {empty[0]!r} is empty; leave it out to search every value")
        filters = {f: request.query_params[f] for f in search.facets if f in request.query_params}
        return search.search(q, k=k, mode=mode, filters=filters)

    @app.api_route("/images/{item_id:path}", methods=["GET", "HEAD"], include_in_schema=False)
    def image(item_id: str) -> FileResponse:
        path = images.path(item_id) if images is not None else None
        if path is None:
            raise HTTPException(404, f"no servable image for product {item_id!r}")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def validation_detail(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line naming each parameter, without the input it received."""
    return "; ".join(f"{'.'.join(str(part) for part in error['loc'][1:]) or 'request'}: {error['msg']}"
                     for error in exc.errors())
