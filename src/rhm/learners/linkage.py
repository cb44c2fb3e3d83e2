"""Single linkage on a cloud of embeddings: the minimum-spanning-tree edges that chaining and chaining+ cut."""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree


def mst_edges(points: np.ndarray, rng: np.random.Generator | None = None,
              max_points: int | None = None) -> tuple[int, np.ndarray]:
    """(number of distinct points, MST edge lengths longest first) of the distinct rows of `points`.

    Rows equal to 1e-9 count once; above `max_points` distinct rows a uniform sample of them (drawn with `rng`)
    is used. Zero-length edges do not occur (duplicates are removed first). Cutting the k - 1 longest edges gives
    the single-linkage clustering into k clusters; the shortest cut edge is their smallest separation.
    """
    pts = np.unique(np.round(points, 9), axis=0)
    if max_points is not None and len(pts) > max_points:
        pts = pts[rng.choice(len(pts), max_points, replace=False)]
    if len(pts) < 2:
        return len(pts), np.empty(0)
    dist = np.sqrt(np.maximum(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1), 0))
    return len(pts), np.sort(minimum_spanning_tree(dist).data)[::-1]
