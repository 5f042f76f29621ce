"""Shared state of one simulation: accounts, ids, IP space, user agents and the row chunks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stillroom.detect._ingest import SCHEMA_V1
from stillroom.detect.simulator._families import Phrasing
from stillroom.detect.simulator._text import PromptBank

COLUMNS = SCHEMA_V1  # the simulator writes exactly what ingest reads

# First octets that look like consumer ISPs, clouds and residential-proxy resellers.
RESIDENTIAL_OCTETS = (24, 67, 68, 71, 73, 76, 98, 174, 2, 5, 31, 37, 46, 78, 81, 86, 90, 92, 176)
CLOUD_OCTETS = (3, 13, 18, 34, 35, 52, 54, 104, 138, 143, 159, 165)
PROXY_OCTETS = (45, 89, 103, 154, 185, 193, 194)

BENIGN_UAS = (
    "OpenAI/Python 1.54.3",
    "OpenAI/Python 1.58.1",
    "OpenAI/Python 1.61.0",
    "OpenAI/NodeJS 4.77.0",
    "OpenAI/NodeJS 4.85.1",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "python-httpx/0.28.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/132.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)
MODELS = ("atlas-mini", "atlas-large", "atlas-reasoning")


@dataclass
class World:
    """Accumulates accounts and columnar row chunks for one seeded simulation."""

    rng: np.random.Generator
    bank: PromptBank
    start: float  # epoch seconds of day 0 (a Monday, 00:00 UTC)
    days: int
    scale: float
    phrasing: Phrasing = field(default_factory=Phrasing)
    family: dict[str, str] = field(default_factory=dict)  # campaign id -> phrasing family
    kind_family: dict[str, str] = field(default_factory=dict)  # account id -> its kind's family
    held_out_axes: bool = False  # current world, held-out split: old kinds' held-out pools/pacing
    truth: list[tuple[str, str, str, str]] = field(default_factory=list)
    chunks: list[pa.Table] = field(default_factory=list)
    _used: set[int] = field(default_factory=set)
    _mobile: np.ndarray | None = None
    _isp: np.ndarray | None = None

    # --- ids -------------------------------------------------------------------------
    def ids(self, prefix: str, n: int) -> np.ndarray:
        out = []
        while len(out) < n:
            for v in self.rng.integers(1 << 40, 1 << 48, n - len(out)).tolist():
                if v not in self._used:
                    self._used.add(v)
                    out.append(f"{prefix}_{v:012x}")
        return np.asarray(out, dtype=object)

    def accounts(self, n: int, label: str, kind: str, campaign_id: str = "") -> np.ndarray:
        ids = self.ids("acct", n)
        self.truth.extend((a, label, kind, campaign_id) for a in ids)
        return ids

    def count(self, base: float, minimum: int = 1) -> int:
        return max(minimum, round(base * self.scale))

    # --- network ---------------------------------------------------------------------
    def subnets(self, n: int, octets: tuple[int, ...]) -> np.ndarray:
        first = np.asarray(octets)[self.rng.integers(0, len(octets), n)]
        return (first << 16) | self.rng.integers(0, 1 << 16, n)

    def residential(self, n: int) -> np.ndarray:
        """Home /24s drawn from a finite set of ISP blocks, so unrelated users share some."""
        if self._isp is None:
            self._isp = self.subnets(max(50, int(1200 * self.scale)), RESIDENTIAL_OCTETS)
        return self._isp[self.rng.integers(0, len(self._isp), n)]

    def hosts(self, subnet: np.ndarray) -> np.ndarray:
        """A random host address inside each /24 of ``subnet`` (an int array)."""
        return (np.asarray(subnet) << 8) | self.rng.integers(2, 254, len(subnet))

    def mobile_ips(self, n: int) -> np.ndarray:
        """Carrier-grade NAT exits: a small pool many unrelated phone users share."""
        if self._mobile is None:
            self._mobile = self.hosts(self.subnets(max(20, int(60 * self.scale)), (100, 172, 39)))
        return self._mobile[self.rng.integers(0, len(self._mobile), n)]

    # --- rows ------------------------------------------------------------------------
    def add(self, acc: np.ndarray, ts: np.ndarray, prompt: list[str] | np.ndarray, **cols) -> None:
        """Append rows; each column is an array (one value a row) or one scalar for all rows."""
        n = len(acc)
        arrays = {
            "timestamp": pa.array(np.asarray(ts, float)),
            "account_id": _strings(acc, n),
            "prompt": _strings(prompt, n),
        }
        for name in COLUMNS[4:]:
            value = cols.pop(name, None)
            if name == "prompt_tokens":
                continue
            if name == "ip":
                arrays[name] = pa.array(np.asarray(value, dtype=np.int64))
            elif name in _STR_COLS:
                arrays[name] = _strings(value, n)
            else:
                v = np.broadcast_to(np.asarray(np.nan if value is None else value, float), (n,))
                arrays[name] = pa.array(v, pa.float64(), mask=np.isnan(v))
        if cols:
            raise TypeError(f"unknown columns: {sorted(cols)}")
        chars = pc.add(
            pc.utf8_length(arrays["prompt"]),
            pc.fill_null(pc.utf8_length(arrays["system_prompt"]), 0),
        )
        arrays["prompt_tokens"] = pc.add(pc.divide(chars, 4), 7).cast(pa.float64())
        self.chunks.append(pa.table(arrays))

    def pick(self, options, n: int) -> np.ndarray:
        return np.asarray(options, dtype=object)[self.rng.integers(0, len(options), n)]

    def draw(self, pool: list[str], n: int) -> np.ndarray:
        return np.asarray(pool, dtype=object)[self.rng.integers(0, len(pool), n)]

    def completions(self, n: int, median: float, sigma: float = 0.6, cap=None) -> np.ndarray:
        out = np.round(self.rng.lognormal(np.log(median), sigma, n)) + 1
        if cap is not None:
            out = np.fmin(out, np.asarray(cap, dtype=float))
        return out


_STR_COLS = {"user_agent", "model", "system_prompt", "org_id", "payment_id"}


def _strings(value, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, pa.string())
    if isinstance(value, str):
        return pa.repeat(pa.scalar(value, pa.string()), n)
    return pa.array(value, pa.string(), from_pandas=True)


def ip_strings(ips: np.ndarray) -> list[str]:
    ips = np.asarray(ips, dtype=np.int64)
    a, b, c, d = ips >> 24, (ips >> 16) & 255, (ips >> 8) & 255, ips & 255
    return [
        f"{w}.{x}.{y}.{z}"
        for w, x, y, z in zip(a.tolist(), b.tolist(), c.tolist(), d.tolist(), strict=True)
    ]
