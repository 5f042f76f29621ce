"""Vectorised timestamp generators for the traffic simulator (seconds since the epoch, float).

Human traffic comes in sessions placed by a diurnal profile in the user's own time zone;
machine traffic is a flat 24/7 stream, optionally snapped to a dispatcher's tick grid (the
load-balanced synchrony public reports describe); harnesses run in bursts; farms fire in
synchronized batches.
"""

from __future__ import annotations

import numpy as np

HOUR = 3600.0
DAY = 86400.0

# Relative request rate by local hour for people (low at night, peak late morning/evening).
HUMAN_PROFILE = np.array(
    [
        0.15,
        0.08,
        0.05,
        0.04,
        0.04,
        0.06,
        0.15,
        0.35,
        0.65,
        0.9,
        1.0,
        1.0,
        0.9,
        0.95,
        1.0,
        0.95,
        0.9,
        0.85,
        0.8,
        0.85,
        0.9,
        0.8,
        0.6,
        0.35,
    ]
)
OFFICE_PROFILE = np.array(
    [
        0.01,
        0.01,
        0.01,
        0.01,
        0.01,
        0.02,
        0.05,
        0.3,
        0.8,
        1.0,
        1.0,
        0.9,
        0.6,
        0.9,
        1.0,
        1.0,
        0.9,
        0.6,
        0.25,
        0.1,
        0.06,
        0.04,
        0.02,
        0.01,
    ]
)


def _local_hours(rng: np.random.Generator, n: int, profile: np.ndarray) -> np.ndarray:
    p = profile / profile.sum()
    return rng.choice(24, size=n, p=p).astype(float) + rng.random(n)


def group_positions(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (order, position of each sorted row within its run of equal keys)."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    starts = np.r_[True, sk[1:] != sk[:-1]]
    idx = np.arange(len(sk))
    first = np.maximum.accumulate(np.where(starts, idx, 0))
    return order, idx - first


def human_sessions(
    rng: np.random.Generator,
    counts: np.ndarray,
    tz_hours: np.ndarray,
    start: float,
    days: np.ndarray | float,
    first_day: np.ndarray | float = 0.0,
    *,
    profile: np.ndarray = HUMAN_PROFILE,
    session_len: float = 4.0,
    gap_s: float = 75.0,
    weekdays_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Requests of people: returns (account index per row, timestamp per row).

    ``counts[i]`` requests for account ``i``, grouped into sessions of about ``session_len``
    requests, each session started at a local hour drawn from ``profile`` on a day in
    ``[first_day, first_day + days)``, requests inside a session ``gap_s`` apart on average
    (log-normal, like reading and typing).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_acc = len(counts)
    acc = np.repeat(np.arange(n_acc), counts)
    n = len(acc)
    sessions = np.maximum(1, np.round(counts / session_len * rng.uniform(0.5, 1.5, n_acc)))
    sessions = sessions.astype(np.int64)
    offsets = np.r_[0, np.cumsum(sessions)[:-1]]
    sess = offsets[acc] + (rng.random(n) * sessions[acc]).astype(np.int64)
    n_sess = int(sessions.sum())
    sess_acc = np.repeat(np.arange(n_acc), sessions)
    days_a = np.broadcast_to(np.asarray(days, dtype=float), (n_acc,))
    first_a = np.broadcast_to(np.asarray(first_day, dtype=float), (n_acc,))
    day = np.floor(first_a[sess_acc] + rng.random(n_sess) * np.maximum(days_a[sess_acc], 1))
    if weekdays_only:  # the window starts on a Monday; push weekend sessions to Friday
        dow = day % 7
        day = day - np.where(dow == 5, 1, 0) - np.where(dow == 6, 2, 0)
    local = _local_hours(rng, n_sess, profile)
    sess_start = start + day * DAY + (local - np.asarray(tz_hours)[sess_acc]) * HOUR
    order, pos = group_positions(sess)
    cum = np.cumsum(rng.lognormal(np.log(gap_s), 0.9, n))
    first = np.maximum.accumulate(np.where(pos == 0, np.arange(n), 0))
    ts = np.empty(n)
    ts[order] = sess_start[sess[order]] + (cum - cum[first])
    return acc, ts


def machine_stream(
    rng: np.random.Generator,
    n: int,
    begin: np.ndarray | float,
    end: np.ndarray | float,
    *,
    tick_s: float | None = None,
    jitter_s: float = 1.5,
) -> np.ndarray:
    """``n`` timestamps spread flat over ``[begin, end)`` (per-row arrays allowed).

    With ``tick_s``, times snap to a shared dispatcher grid (multiples of ``tick_s`` since the
    epoch) plus a small jitter, so accounts fed by the same dispatcher line up.
    """
    t = np.asarray(begin, dtype=float) + rng.random(n) * (
        np.asarray(end, dtype=float) - np.asarray(begin, dtype=float)
    )
    if tick_s:
        t = np.floor(t / tick_s) * tick_s + rng.random(n) * jitter_s
    return t


def diurnal_stream(
    rng: np.random.Generator, n: int, start: float, days: float, tz: float, floor: float = 0.1
) -> np.ndarray:
    """Aggregate traffic of many end users behind one account (an app or a reseller)."""
    profile = HUMAN_PROFILE + floor
    day = np.floor(rng.random(n) * days)
    return start + day * DAY + (_local_hours(rng, n, profile) - tz) * HOUR


def bursts(
    rng: np.random.Generator, sizes: np.ndarray, starts: np.ndarray, gap_s: float = 1.2
) -> np.ndarray:
    """Back-to-back runs: burst ``k`` of ``sizes[k]`` requests starting at ``starts[k]``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    which = np.repeat(np.arange(len(sizes)), sizes)
    gaps = rng.exponential(gap_s, len(which))
    _, pos = group_positions(which)  # already sorted
    cum = np.cumsum(gaps)
    first = np.maximum.accumulate(np.where(pos == 0, np.arange(len(which)), 0))
    return np.asarray(starts, dtype=float)[which] + (cum - cum[first])
