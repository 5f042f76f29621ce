"""Simulated provider traffic (schema v1) with ground truth, for tests, tuning and benchmarks.

``simulate(out, seed=, scale=, corpora=, phrasing=, world=)`` writes benign users, the hard
negatives (templated apps, evaluation harnesses, agents, enterprises behind NAT, logprob
researchers and the benign look-alikes) and campaigns (hydra, low-and-slow, logprob
extractor, grading farm, reseller, residential hydra, capability sweep), then
``<out stem>.truth.csv`` with one row per account:
``account_id,label,kind,campaign_id,phrasing`` (plus ``family,split`` in the current world).
``world="current"`` adds the kinds of issue 26 after those (content products, person-paced
extraction; see ``_products`` and ``_human``); ``world="frozen"``, the default, is the
pre-issue-26 simulator byte for byte.  ``scale=1.0`` is about 156k rows (frozen) or 190k
(current); account counts scale linearly.  Same seed, same bytes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stillroom.detect.errors import DetectError
from stillroom.detect.simulator._benign import (
    agents,
    benign_users,
    enterprises,
    eval_harnesses,
    logprob_researchers,
    templated_apps,
)
from stillroom.detect.simulator._campaigns import CAMPAIGNS as _REPORTED
from stillroom.detect.simulator._families import Phrasing
from stillroom.detect.simulator._human import HUMAN_CAMPAIGNS
from stillroom.detect.simulator._kind_families import split_for
from stillroom.detect.simulator._lookalikes import LOOKALIKES
from stillroom.detect.simulator._products import content_products
from stillroom.detect.simulator._split import SAMPLED, split_bank
from stillroom.detect.simulator._sweeps import capability_sweep, residential_hydra
from stillroom.detect.simulator._text import PromptBank
from stillroom.detect.simulator._world import COLUMNS, World, ip_strings

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DAYS = 14
HARD_NEGATIVES = (
    templated_apps,
    eval_harnesses,
    agents,
    enterprises,
    logprob_researchers,
    *LOOKALIKES,
)
CAMPAIGNS = {
    **_REPORTED,
    "residential_hydra": (residential_hydra, 1),
    "capability_sweep": (capability_sweep, 1),
}
WORLDS = ("current", "frozen")
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".gz": "jsonl.gz"}


@dataclass(frozen=True)
class SimulationResult:
    """Where the simulator wrote its files and how much it wrote."""

    traffic_path: Path
    truth_path: Path
    rows: int
    accounts: int
    campaigns: int


def truth_path_for(out: Path) -> Path:
    """``traffic.jsonl.gz`` -> ``traffic.truth.csv`` (every suffix of the name dropped)."""
    name = out.name
    for suffix in (".jsonl.gz", ".parquet", ".jsonl", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return out.with_name(f"{name}.truth.csv")


def _format(out: Path) -> str:
    if out.name.endswith(".jsonl.gz"):
        return "jsonl.gz"
    fmt = _FORMATS.get(out.suffix)
    if fmt is None or fmt == "jsonl.gz":
        raise DetectError(f"{out}: output must end in .parquet, .jsonl, .jsonl.gz or .csv")
    return fmt


def simulate(
    out: Path | str,
    *,
    seed: int = 0,
    scale: float = 1.0,
    corpora: Path | str | None = None,
    phrasing: str | Phrasing = "training",
    world: str = "frozen",
) -> SimulationResult:
    """Write simulated traffic to ``out`` and its ground truth beside it.

    ``phrasing`` picks the families: ``"training"`` (the families detect may be built
    from), ``"held_out"`` (families nothing in detect saw, and the held-out kinds) or a
    :class:`Phrasing` made from asks written elsewhere (the new kinds then use held-out
    families for everything but those asks).  ``world="current"`` adds the kinds of issue
    26 (content products, person-paced extraction) and samples dataset questions only from
    the half of the pools :func:`public_index_prompts` leaves out; ``world="frozen"`` (the
    default, so existing callers' logs do not change) writes the simulator as it was before
    issue 26, byte for byte.  The truth file names each campaign's wording
    family (``phrasing``) and, in the current world, each account's family and its split.
    """
    out = Path(out)
    fmt = _format(out)
    if not scale > 0:
        raise DetectError(f"scale must be positive, got {scale}")
    if world not in WORLDS:
        raise DetectError(f"world must be one of {', '.join(WORLDS)}, got {world!r}")
    bank = PromptBank.from_corpora(Path(corpora)) if corpora else PromptBank.builtin()
    if world == "current":  # dataset questions only from the half no public index holds
        bank = split_bank(bank, SAMPLED)
    if not isinstance(phrasing, Phrasing):
        phrasing = Phrasing(str(phrasing))
    w = World(np.random.default_rng(seed), bank, START.timestamp(), DAYS, scale, phrasing)
    w.held_out_axes = world == "current" and split_for(phrasing.split) == "held_out"
    n_campaigns = _populate(w, scale)
    if world == "current":
        n_campaigns += _populate_issue26(w, scale)
    table = _table(w)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write(table, out, fmt)
    truth = truth_path_for(out)
    _write_truth(w, truth, frozen=world == "frozen")
    return SimulationResult(out, truth, table.num_rows, len(w.truth), n_campaigns)


def _populate(w: World, scale: float) -> int:
    """The populations of the frozen world, in their original order (so its bytes hold)."""
    benign_users(w)
    for population in HARD_NEGATIVES:
        population(w)
    n_campaigns = 0
    for kind, (make, base) in CAMPAIGNS.items():
        for k in range(max(1, round(base * scale))):
            make(w, f"{kind}-{k + 1}")
            n_campaigns += 1
    return n_campaigns


def _populate_issue26(w: World, scale: float) -> int:
    """Content products and person-paced extraction, after the frozen populations."""
    split = split_for(w.phrasing.split)
    content_products(w, split)
    n_campaigns = 0
    for kind, (make, base) in HUMAN_CAMPAIGNS.items():
        for k in range(max(1, round(base * scale))):
            make(w, f"{kind}-{k + 1}", split)
            n_campaigns += 1
    return n_campaigns


def _write_truth(w: World, path: Path, *, frozen: bool) -> None:
    header = ["account_id", "label", "kind", "campaign_id", "phrasing"]
    rows = [(*t, w.family.get(t[3], "")) for t in w.truth]
    if not frozen:
        header += ["family", "split"]
        split = split_for(w.phrasing.split)
        rows = [
            (*r, w.kind_family.get(r[0], ""), split if r[0] in w.kind_family else "") for r in rows
        ]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(sorted(rows))


def _table(world: World) -> pa.Table:
    table = pa.concat_tables(world.chunks).combine_chunks()
    ts = table["timestamp"].to_numpy()
    end = world.start + world.days * 86400
    keep = np.flatnonzero((ts >= world.start) & (ts < end))
    order = keep[np.argsort(ts[keep], kind="stable")]
    table = table.take(pa.array(order))
    n = len(order)
    ms = np.round(table["timestamp"].to_numpy() * 1000).astype("datetime64[ms]")
    req = world.rng.permutation(n).astype(np.int64) + (int(world.rng.integers(1, 1 << 30)) << 24)
    arrays = {
        "timestamp": pa.array(ms, pa.timestamp("ms", tz="UTC")),
        "request_id": pa.array([f"req_{v:016x}" for v in req.tolist()], pa.string()),
        "ip": pa.array(ip_strings(table["ip"].to_numpy()), pa.string()),
    }
    for name in ("max_tokens", "top_logprobs", "prompt_tokens", "completion_tokens"):
        arrays[name] = table[name].cast(pa.int64())
    return pa.table(
        {
            name: arrays.get(name, table[name] if name in table.column_names else None)
            for name in COLUMNS
        }
    )


def _write(table: pa.Table, out: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, out, compression="zstd")
        return
    iso = table.set_column(
        0,
        "timestamp",
        pc.strftime(table["timestamp"], format="%Y-%m-%dT%H:%M:%SZ").cast(pa.string()),
    )
    if fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(iso, out)
        return
    import duckdb

    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.register("traffic", iso)
    compression = "gzip" if fmt == "jsonl.gz" else "none"
    target = str(out).replace("'", "''")
    con.execute(f"COPY traffic TO '{target}' (FORMAT json, COMPRESSION {compression})")
    con.close()
