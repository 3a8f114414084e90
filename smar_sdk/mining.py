"""Hard negatives mined from the model being trained.

Every epoch after the first, each training query's items are ranked by the current model; the best-scoring
items that are *known* wrong answers become that query's hard negatives. An item is known wrong when it is not
paired with the query and differs from the query's paired items in a labelled field they all share (e.g.
another colour or article type). Unlabelled look-alikes are never used: in attribute-made pairs most unpaired
items that match a query are right answers that the pairs file simply does not list.
"""

from __future__ import annotations

import torch

from .labels import batch_positives, known_wrong


@torch.no_grad()
def mine_hard_negatives(query_vectors: torch.Tensor, item_vectors: torch.Tensor, query_codes: torch.Tensor,
                        item_codes: torch.Tensor, paired: torch.Tensor, pool: int, chunk: int = 1024) -> torch.Tensor:
    """``(queries, pool)`` item indices: per query, its ``pool`` best-scoring known wrong items, best first.

    ``query_codes`` / ``item_codes`` are ``relevance_codes`` of the negative fields, ``paired`` the sorted
    (query, item) keys of ``pair_keys``. Rows with fewer known wrong items are padded with -1.
    """
    item_count = len(item_vectors)
    pool = min(pool, item_count)
    items = torch.arange(item_count)
    mined = []
    for start in range(0, len(query_vectors), chunk):
        rows = torch.arange(start, min(start + chunk, len(query_vectors)))
        scores = query_vectors[rows] @ item_vectors.T
        wrong = known_wrong(query_codes[rows], item_codes) & ~batch_positives(rows, items, paired, item_count)
        top = scores.masked_fill(~wrong, float("-inf")).topk(pool, dim=1)
        mined.append(top.indices.masked_fill(torch.isinf(top.values), -1))
    return torch.cat(mined) if mined else torch.empty(0, pool, dtype=torch.long)


def sample_negatives(mined: torch.Tensor, queries: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One of each query's mined negatives, uniformly at random; -1 where the query has none."""
    rows = mined[queries]
    available = (rows >= 0).sum(dim=1)
    pick = (torch.rand(len(queries), generator=generator) * available.clamp(min=1)).long()
    chosen = rows.gather(1, pick.unsqueeze(1)).squeeze(1)  # mined rows are best first, so valid entries lead
    return torch.where(available > 0, chosen, torch.full_like(chosen, -1))
