"""Where each account sits in the report's coordination graph: a spring layout in numpy.

Each connected component is laid out on its own by Fruchterman-Reingold (edge weight pulls
linked accounts together), then the components are packed in rows, largest first, shrinking
the unit until the picture fits the page. Deterministic for a given ``seed``.
"""

from __future__ import annotations

import numpy as np


def spring_layout(
    ids: list[str],
    edges: list[tuple[str, str, float]],
    *,
    width: float = 1000.0,
    unit: float = 22.0,
    max_height: float = 900.0,
    seed: int = 0,
) -> tuple[dict[str, tuple[float, float]], float]:
    """Positions (px) and canvas height: each connected component laid out by
    Fruchterman-Reingold on its own, components packed in rows, largest first."""
    index = {a: i for i, a in enumerate(ids)}
    parent = list(range(len(ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = [(index[s], index[t], w) for s, t, w in edges if s in index and t in index]
    for a, b, _ in pairs:
        parent[find(a)] = find(b)
    comps: dict[int, list[int]] = {}
    for i in range(len(ids)):
        comps.setdefault(find(i), []).append(i)
    order = sorted(comps.values(), key=lambda c: (-len(c), ids[c[0]]))
    rng = np.random.default_rng(seed)
    local, radius = {}, {}
    for comp in order:
        where = {g: j for j, g in enumerate(comp)}
        sub = [(where[a], where[b], w) for a, b, w in pairs if a in where]
        xy = _fruchterman_reingold(len(comp), sub, rng) if len(comp) > 1 else np.zeros((1, 2))
        local[comp[0]], radius[comp[0]] = xy, float(np.linalg.norm(xy, axis=1).max()) + 0.6
    for size in (unit, unit * 0.75, unit * 0.55, unit * 0.4):  # shrink until it fits the page
        out, height = _pack(ids, order, local, radius, width, size)
        if height <= max_height:
            break
    return out, height


def _pack(ids, order, local, radius, width: float, unit: float):
    cols = (width - 20.0) / unit
    scale = min(1.0, cols / max(2 * r + 1 for r in radius.values()))
    x = y = row = 0.0
    out: dict[str, tuple[float, float]] = {}
    for comp in order:
        d = (2 * radius[comp[0]] + 1) * scale
        if x + d > cols and x > 0:
            x, y, row = 0.0, y + row, 0.0
        cx, cy = x + d / 2, y + d / 2
        for j, g in enumerate(comp):
            px, py = local[comp[0]][j] * scale
            out[ids[g]] = (10.0 + (cx + px) * unit, 10.0 + (cy + py) * unit)
        x, row = x + d, max(row, d)
    return out, (y + row) * unit + 20.0


def _fruchterman_reingold(m: int, edges: list, rng, iterations: int = 150) -> np.ndarray:
    """Layout of one connected component, ideal edge length 1, centred on the origin."""
    pos = rng.normal(0, np.sqrt(m) / 2, (m, 2))
    src = np.array([a for a, _, _ in edges], dtype=np.int64)
    dst = np.array([b for _, b, _ in edges], dtype=np.int64)
    w = np.array([min(1.0, max(0.1, float(x))) for _, _, x in edges])
    w = w * m / max(1.0, 2.0 * w.sum())  # dense cliques would otherwise collapse to a point
    temp = np.sqrt(m) / 2
    for _ in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist2 = np.maximum((delta**2).sum(axis=2), 1e-4)
        disp = (delta / dist2[:, :, None]).sum(axis=1)  # repulsion k^2/d along the unit vector
        d = pos[src] - pos[dst]
        f = d * (np.linalg.norm(d, axis=1) * w)[:, None]  # attraction d^2/k
        np.add.at(disp, src, -f)
        np.add.at(disp, dst, f)
        norm = np.maximum(np.linalg.norm(disp, axis=1), 1e-9)
        pos += disp / norm[:, None] * np.minimum(norm, temp)[:, None]
        temp = max(temp * 0.95, 0.01)
    return pos - pos.mean(axis=0)
