"""Offline evaluation: index a catalog into a temporary embedded store, run labelled queries, score with ranx."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from .catalog import FieldMapping, item_id_text
from .errors import CatalogError
from .indexer import IndexReport, SMARIndexer
from .model import SMARModel
from .query_synonyms import QuerySynonyms
from .retriever import SMARRetriever
from .store import Hit

METRICS = ("ndcg@10", "recall@10", "recall@50", "mrr@10")
SEARCH_DEPTH = 100
logger = logging.getLogger(__name__)


class LabelledQuery(BaseModel):
    """A query and the ids that answer it (at least one: a query nothing answers would score 0 and pull every
    mean down)."""

    query: str
    relevant: list[str] = Field(min_length=1)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is blank")
        return value

    @field_validator("relevant", mode="before")
    @classmethod
    def _ids_as_strings(cls, value: Any) -> Any:
        """Integer ids, as catalogs and pairs files allow them, become the strings the store returns."""
        if isinstance(value, list):
            return [v if (text := item_id_text(v)) is None else text for v in value]
        return value


class EvalReport(BaseModel):
    metrics: dict[str, float]
    queries: int
    indexed: int
    rejected: int
    index_seconds: float
    search_seconds: float
    unanswerable: int = Field(0, description="queries none of whose relevant products was indexed: each scores 0 "
                              "whatever the model does (check --only and the queries file)")
    missing_relevant: int = Field(0, description="relevant ids of the queries that were not indexed: each counts "
                                  "as a miss")


def read_queries(path: str | Path) -> list[LabelledQuery]:
    """Read ``{"query", "relevant": [ids]}`` lines."""
    queries = []
    try:
        # a byte-order mark is skipped; only "\n" ends a line (JSON text may hold U+2028 or U+0085 unescaped)
        lines = Path(path).read_text(encoding="utf-8-sig").split("\n")
    except OSError as exc:
        raise CatalogError(f"cannot read queries file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogError(f"queries file {path} is not UTF-8 text (invalid byte at offset {exc.start}); "
                           "re-save it as UTF-8") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            queries.append(LabelledQuery.model_validate_json(line))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'the line'}: {e['msg']}" for e in exc.errors())
            raise CatalogError(f"{path} line {number}: expected {{\"query\", \"relevant\": [ids, at least one]}} "
                               f"({problems})") from exc
    if not queries:
        raise CatalogError(f"queries file {path} is empty")
    return queries


def score_rankings(queries: Sequence[LabelledQuery], rankings: Sequence[Sequence[tuple[str, float]]],
                   metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Mean IR metrics (ranx) of ranked ``(id, score)`` lists against each query's relevant ids."""
    from ranx import Qrels, Run, evaluate

    qrels = {f"q{i}": {doc: 1 for doc in q.relevant} for i, q in enumerate(queries)}
    run = {}
    for i, ranking in enumerate(rankings):
        # ranx sorts by score; keep our order when scores tie by nudging with the rank
        run[f"q{i}"] = {doc: float(score) - rank * 1e-9 for rank, (doc, score) in enumerate(ranking)} or {"": 0.0}
    values = evaluate(Qrels(qrels), Run(run), list(metrics), make_comparable=True)
    if len(metrics) == 1:  # ranx returns a bare number for a single metric
        return {metrics[0]: float(values)}
    return {m: float(values[m]) for m in metrics}


def evaluate_model(model: SMARModel, catalog: str | Path, queries_path: str | Path,
                   only: dict[str, Any] | None = None, mapping: FieldMapping | None = None,
                   view: str | None = None, progress: bool = True,
                   synonyms: QuerySynonyms | None = None) -> EvalReport:
    """Index ``catalog`` (rows matching ``only``) into a throwaway embedded Qdrant and score the queries;
    ``view``: the item vector indexed (default: the model's ``stored_view``); ``synonyms`` rewrite the queries as
    ``SMARRetriever`` does."""
    queries = read_queries(queries_path)
    with (tempfile.TemporaryDirectory(prefix="smar-eval-") as tmp,
          SMARIndexer(model, store="qdrant", uri=tmp, collection="eval", mapping=mapping, view=view) as indexer):
        report: IndexReport = indexer.index(catalog, only=only, progress=progress)
        first = (f"; the first, line {report.rejections[0].line}: {report.rejections[0].reason}"
                 if report.rejections else "")
        if not report.indexed:
            raise CatalogError(f"no product of {catalog} was indexed ({report.rejected} rejected{first}"
                               f"{'; --only ' + str(only) + ' matched nothing else' if only else ''}); "
                               "there is nothing to score: check the catalog path, the field options and --only")
        if report.rejected:
            logger.warning("%d catalog rows were rejected and are not scored%s (smar-sdk index --rejects FILE "
                           "lists them all)", report.rejected, first)
        present = indexer.store.stored_hashes(sorted({i for q in queries for i in q.relevant}))
        unanswerable = [n for n, q in enumerate(queries, start=1) if not any(i in present for i in q.relevant)]
        if unanswerable:
            first = queries[unanswerable[0] - 1]
            logger.warning("%d of %d queries have no relevant product among the %d indexed; each scores 0 (the first, "
                           "query %d %r, names %s; check --only, and that the queries file writes ids as the "
                           "catalog's id field does)", len(unanswerable), len(queries), report.indexed,
                           unanswerable[0], first.query, ", ".join(map(repr, first.relevant[:5])))
        missing = sorted({i for q in queries for i in q.relevant} - set(present))
        if partly := sum(0 < sum(i in present for i in q.relevant) < len(q.relevant) for q in queries):
            logger.warning("%d queries have relevant products that were not indexed (of %d such ids, the first %r); "
                           "each counts as a miss and lowers recall (check --only and the queries file)", partly,
                           len(missing), missing[0])
        started = time.perf_counter()
        retriever = SMARRetriever(model, store=indexer.store, synonyms=synonyms)
        hits: list[list[Hit]] = retriever.search_many([q.query for q in queries], k=SEARCH_DEPTH)
        search_seconds = time.perf_counter() - started
    metrics = score_rankings(queries, [[(h.id, h.score) for h in ranked] for ranked in hits])
    return EvalReport(metrics=metrics, queries=len(queries), indexed=report.indexed, rejected=report.rejected,
                      index_seconds=report.seconds, search_seconds=search_seconds, unanswerable=len(unanswerable),
                      missing_relevant=len(missing))


def to_json(report: EvalReport) -> str:
    return json.dumps(report.model_dump(), indent=2)
