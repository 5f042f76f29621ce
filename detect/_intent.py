"""Evidence of intent: *what* an account asks, not how its traffic arrives.

Extraction wants the model's own knowledge and reasoning written out, over a task space;
a product serves its users, mostly by transforming text they supply.  Per account, from the
scan's capped prompt sample (so an incremental scan computes it the same way from the
window's sample) and the prompt embeddings of :mod:`stillroom.detect._embed`:

* ``supplied_share``: share of sampled prompts whose answer's job is mostly given by text
  the request carries (a pasted document, quoted block or code after a short instruction):
  see :func:`supplied_content`.
* ``fresh_share``: share of sampled prompts that are fresh self-contained tasks: distinct in
  the account, not a short follow-up, not supplied content.
* ``spread``: topic spread normalised to a fixed sample size (rarefaction): the mean cosine
  distance between the embeddings of the account's first ``spread_k`` distinct prompts, so
  accounts of any volume are compared on the same number of prompts.
* ``novelty``: mean distance of the account's prompts to their nearest prompt of *other*
  accounts in a reference sample of the population (low: it asks what others ask).
* ``provenance``: with a public index (``index_vectors``), the share of the account's
  prompts whose nearest index prompt is closer than the log's own calibrated line.

And across accounts, from every row's prompt hash (the per-day partials, so nothing is
sampled): *shared rare prompts*, exact prompts that between 2 and ``max_accounts`` accounts
send, which link accounts by what they ask with no IP, payment or rhythm in common.

Thresholds are calibrated on the log itself (:func:`robust_threshold`): robust upper
quantiles (median + z * 1.4826 * MAD) per volume stratum at a target false-positive rate,
so a handful of campaign accounts cannot drag the line up.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy.stats import norm

INTENT_COLUMNS = ("supplied_share", "fresh_share", "spread", "novelty", "provenance")
_FENCE = re.compile(r"```|^\s*>|^( {4}|\t)\S", re.M)
_HEAD = re.compile(r"^[^\n]{0,200}?(:\s|\n)")
# A line that declares a callable: a bare signature ``name(arg, ...)`` at the start of a line
# (code inside a pasted block is indented or prefixed, as in a diff).
_TOOL_DECLARATION = re.compile(r"^[A-Za-z_][\w.]*\((?:\s*\w+\s*(?:,\s*\w+\s*)*)?\)[ \t]*$", re.M)


def request_text(text: str) -> str:
    """The part of a prompt that is the request itself: after the last tool declaration.

    A tool or function specification (a description and a signature ``name(args)``) tells
    the model what it may call; the answer is still the model's own work (choosing the call,
    composing the result), so the declaration is the asker's frame, not content the answer
    is made from.  Without a declaration, the whole prompt."""
    ends = [m.end() for m in _TOOL_DECLARATION.finditer(text)]
    return text[ends[-1] :].strip() if ends else text


def supplied_content(texts) -> np.ndarray:
    """Per prompt, the share (0..1) of its characters that is user-supplied content.

    A prompt carries supplied content when, after a short instruction (its first line, or
    its text up to a colon within the first 200 characters), comes a body at least
    ``3x`` as long and 300 characters or more, or when it holds a fenced / quoted / indented
    block.  A tool declaration before the request is not supplied content (see
    :func:`request_text`).  Language-agnostic: it reads structure and length, not words."""
    out = np.zeros(len(texts), dtype=float)
    for i, text in enumerate(texts):
        text = str(text)
        if len(text) < 300:
            continue
        if ")\n" in text:  # a signature line ends there: only then can a declaration lead
            text = request_text(text)
        total = len(text)
        if total < 300:
            continue
        head = _HEAD.match(text)
        head_len = head.end() if head else total
        body = total - head_len
        if body >= 300 and body >= 3 * head_len:
            out[i] = body / total
        elif _FENCE.search(text):
            out[i] = 0.5
    return out


def _prompt_kinds(sample: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sampled prompt: supplied content, first use in its account, fresh task."""
    texts = sample["prompt"].astype(str)
    supplied = supplied_content(texts.tolist()) >= 0.5
    words = texts.str.split().str.len().fillna(0).to_numpy()
    first = ~sample.duplicated(["account_id", "phash"]).to_numpy()
    return supplied, first, first & (words >= 8) & ~supplied


def fresh_tasks(sample: pd.DataFrame) -> np.ndarray:
    """Per sampled prompt: a fresh self-contained task (distinct in its account, eight
    words or more, not supplied content)."""
    return _prompt_kinds(sample)[2]


def intent_features(
    sample: pd.DataFrame,
    vectors: np.ndarray,
    *,
    spread_k: int = 8,
    reference: int = 500,
    index_vectors: np.ndarray | None = None,
    target_fpr: float = 0.005,
    random_state: int = 0,
) -> pd.DataFrame:
    """Per account (index ``account_id``): the columns of ``INTENT_COLUMNS``."""
    if sample.empty:
        return pd.DataFrame(columns=list(INTENT_COLUMNS))
    supplied, first, fresh = _prompt_kinds(sample)
    frame = pd.DataFrame(
        {"account_id": sample["account_id"].to_numpy(), "supplied": supplied, "fresh": fresh}
    )
    out = frame.groupby("account_id", sort=True)[["supplied", "fresh"]].mean()
    out.columns = ["supplied_share", "fresh_share"]
    out["spread"] = _spread(frame["account_id"].to_numpy(), first, vectors, spread_k)
    out["novelty"] = _novelty(frame["account_id"].to_numpy(), vectors, reference, random_state)
    if index_vectors is not None and len(index_vectors):
        closest = _nearest(vectors, index_vectors)
        line = max(0.8, float(robust_threshold(closest, None, target_fpr)[0]))
        out["provenance"] = (
            pd.Series(closest >= line).groupby(frame["account_id"].to_numpy()).mean()
        )
    else:
        out["provenance"] = np.nan
    return out


_SENTENCE_END = re.compile(r"([.?!\u3002\uff1f\uff01])\s+")


def wrapped_asks(sample: pd.DataFrame, *, min_chars: int = 16) -> pd.DataFrame:
    """Per account: ``wrapped_k``, its distinct sampled prompts that wrap a recurring
    instruction around a different task, of ``wrapped_n`` sampled.

    An ask of how to answer ("show all your working", in any language or wording) is sent
    again and again around different questions; a person's chat rarely repeats a sentence.
    Prompts are cut into sentences and lines (punctuation of any script, line breaks); a
    segment of four words or ``min_chars`` characters that recurs in two or more of the
    account's distinct prompts is an instruction, and a prompt that holds one beside a
    segment of its own is wrapped.  Structure, not words: no language is assumed."""
    if sample.empty:
        return pd.DataFrame(columns=["wrapped_k", "wrapped_n"], dtype=float)
    distinct = sample.drop_duplicates(["account_id", "phash"])
    by_account: dict[str, list[set[str]]] = {}
    accounts, texts = distinct["account_id"].tolist(), distinct["prompt"].tolist()
    cut: dict[str, set[str]] = {}  # a prompt many accounts send is cut once
    for account, text in zip(accounts, texts, strict=True):
        text = str(text)
        segments = cut.get(text)
        if segments is None:
            segments = cut[text] = _segments(text)
        by_account.setdefault(account, []).append(segments)
    out = {}
    for account, segments in by_account.items():
        counts: dict[str, int] = {}
        for segs in segments:
            for x in segs:
                if len(x) >= min_chars or x.count(" ") >= 3:
                    counts[x] = counts.get(x, 0) + 1
        recurring = {x for x, c in counts.items() if c >= 2}
        k = sum(
            1
            for segs in segments
            if segs & recurring and any(len(x) >= min_chars for x in segs - recurring)
        )
        out[account] = (k, len(segments))
    frame = pd.DataFrame.from_dict(out, orient="index", columns=["wrapped_k", "wrapped_n"])
    return frame.sort_index()


def _segments(text: str) -> set[str]:
    """A prompt's sentences and lines, lower-cased."""
    parts = _SENTENCE_END.sub("\\1\n", text).split("\n")
    return {x for x in (t.strip().lower() for t in parts) if x}


def wrapped_requests(
    wrapped: pd.DataFrame,
    requests: pd.Series,
    askers,
    *,
    alpha: float,
    min_hits: int = 3,
    row_floor: float = 0.01,
) -> pd.Series:
    """Per account (``requests``' index): its estimated wrapped requests, the larger of two
    readings of one recurring instruction, each counted only for ``askers`` (a mask of
    accounts asking fresh tasks for long answers) and beyond the bulk by a binomial test at
    ``alpha`` corrected for the number of accounts; else 0.

    * The sample (``wrapped_k`` of ``wrapped_n``, see :func:`wrapped_asks`): ``min_hits``
      wrapped prompts or more; the estimate is its share times the account's requests.  The
      bulk: askers at or below their median rate, pooled, and at least one wrapped prompt in
      all their samples (a log may hold many campaigns, and a person's chat rarely repeats a
      sentence).
    * Every row, where ``wrapped`` carries ``template_rate`` and ``duplicate_rate`` (the
      share of prompt openings and endings, 40 characters each, that recur in the account,
      and of repeated prompts): an ask sent around different questions, before or after
      them, makes an opening or an ending recur across *distinct* prompts.  Rows: twice the
      requests times ``template_rate`` (openings and endings) less four times the repeated
      prompts (each repeat and its first send recur at both ends), at least 0.  A sample of a
      dozen prompts rarely holds an ask twice when a person rotates several wordings; every
      row does.  The bulk: the same median pool, its rate floored at ``row_floor`` (a
      person's habitual opener, one request in a hundred).  The rows say *that* openings
      or endings recur; they count only where the sample shows *what* recurs is a segment
      standing beside a task of its own (``wrapped_k`` of 1 or more), not an opener that
      runs into the question (a person's habit, or a template's first words)."""
    frame = wrapped.reindex(requests.index).fillna(0.0)
    n_req = requests.to_numpy(float)
    askers = np.asarray(askers, dtype=bool)
    line = -np.log10(alpha / max(1, len(n_req)))
    k, n = frame["wrapped_k"].to_numpy(float), frame["wrapped_n"].to_numpy(float)
    estimate = _beyond_bulk(k, n, askers, line, min_hits, floor=0.0)
    estimate = estimate * n_req  # the sample's share times the requests
    if {"template_rate", "duplicate_rate"} <= set(frame.columns):
        recurring = 2.0 * frame["template_rate"].to_numpy(float) - 4.0 * frame[
            "duplicate_rate"
        ].to_numpy(float)
        k_rows = np.clip(np.round(recurring * n_req), 0.0, n_req)
        rows = _beyond_bulk(k_rows, n_req, askers, line, min_hits, floor=row_floor) * n_req
        rows[~_corroborated(frame, k, n_req, askers, line, min_hits, row_floor)] = 0.0
        estimate = np.maximum(estimate, rows)
    return pd.Series(np.round(estimate), index=requests.index).astype(int)


def _corroborated(frame, k, n_req, askers, line: float, min_hits: int, floor: float):
    """Per account: whether what recurs is a segment standing beside a task of its own.

    The sample shows one (``k``, its wrapped prompts, 1 or more); or every row does, where
    ``frame`` carries ``segment_rate`` (the share of first and last sentences or lines that
    stand beside a task of the prompt's own and recur in the account, see
    :func:`stillroom.detect._ingest._segment_keys`), tested beyond the bulk as the rows are.
    A sample of a dozen prompts may hold no ask twice when a person rotates its wordings."""
    seen = k >= 1
    if "segment_rate" not in frame.columns:
        return seen
    k_seg = np.clip(np.round(2.0 * frame["segment_rate"].to_numpy(float) * n_req), 0.0, n_req)
    return seen | (_beyond_bulk(k_seg, n_req, askers, line, min_hits, floor=floor) > 0)


def _beyond_bulk(k, n, askers, line: float, min_hits: int, floor: float) -> np.ndarray:
    """Per account: its rate ``k / n`` where it is an asker with ``min_hits`` hits or more
    and beyond the bulk's pooled rate (askers at or below their median rate; at least
    ``floor``) at the significance ``line`` (``-log10``); else 0."""
    from stillroom.detect._scoring import log_significance

    rate = k / np.maximum(n, 1.0)
    bulk = askers & (rate <= np.median(rate[askers])) if askers.any() else askers
    q = max(max(k[bulk].sum(), 1.0) / max(n[bulk].sum(), 1.0), floor)
    ok = askers & (k >= min_hits) & (log_significance(k, n, q) >= line)
    return np.where(ok, rate, 0.0)


def _spread(accounts: np.ndarray, first: np.ndarray, vectors: np.ndarray, k: int) -> pd.Series:
    """Mean pairwise cosine distance of each account's first ``k`` distinct prompts (NaN
    below 4 prompts): rarefied to ``k`` so volume does not inflate it."""
    frame = pd.DataFrame({"account_id": accounts, "row": np.arange(len(accounts))})[first]
    frame = frame[frame.groupby("account_id").cumcount() < k]
    out = {}
    for account, rows in frame.groupby("account_id")["row"]:
        if len(rows) < 4:
            out[account] = np.nan
            continue
        v = vectors[rows.to_numpy()]
        sims = v @ v.T
        m = len(rows)
        out[account] = float(1.0 - (sims.sum() - np.trace(sims)) / (m * (m - 1)))
    return pd.Series(out, dtype=float)


def _novelty(accounts: np.ndarray, vectors: np.ndarray, reference: int, seed: int) -> pd.Series:
    """Mean over an account's prompts of 1 - cosine to the nearest reference prompt of
    another account (the reference: a fixed-size random draw of the whole sample)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(vectors), min(reference, len(vectors)), replace=False)
    ref, ref_acc = vectors[pick], accounts[pick]
    best = np.full(len(vectors), -1.0, dtype=np.float32)
    for start in range(0, len(vectors), 4096):
        sims = vectors[start : start + 4096] @ ref.T
        sims[accounts[start : start + 4096, None] == ref_acc[None, :]] = -1.0
        best[start : start + 4096] = sims.max(axis=1)
    return pd.Series(1.0 - best).groupby(accounts).mean()


def _nearest(vectors: np.ndarray, index: np.ndarray) -> np.ndarray:
    best = np.full(len(vectors), -1.0, dtype=np.float32)
    for start in range(0, len(vectors), 4096):
        best[start : start + 4096] = (vectors[start : start + 4096] @ index.T).max(axis=1)
    return best


def robust_threshold(values, volume=None, target_fpr: float = 0.005, strata: int = 3):
    """Per value, the line above which it is an outlier at ``target_fpr``: median +
    ``z * 1.4826 * MAD`` of its volume stratum (``strata`` quantile bins of ``volume``;
    one stratum when ``volume`` is None), NaNs ignored."""
    values = np.asarray(values, dtype=float)
    z = float(norm.isf(target_fpr))
    if volume is None or len(values) < 3 * strata * 10:
        bins = np.zeros(len(values), dtype=int)
    else:
        bins = pd.qcut(np.asarray(volume, dtype=float), strata, labels=False, duplicates="drop")
        bins = np.asarray(bins, dtype=int)
    out = np.full(len(values), np.nan)
    for b in np.unique(bins):
        at = bins == b
        x = values[at][~np.isnan(values[at])]
        if len(x) == 0:
            continue
        med = np.median(x)
        mad = 1.4826 * np.median(np.abs(x - med))
        out[at] = med + z * max(mad, 1e-6)
    return out


_SHARED_SQL = """
WITH used AS (
  SELECT account_id, value FROM part_keys WHERE kind = 'prompt' GROUP BY ALL
),
sizes AS (SELECT value, count(*) AS c FROM used GROUP BY value HAVING count(*) <= {max_accounts}),
eligible AS (SELECT u.account_id, u.value, s.c FROM used u JOIN sizes s USING (value)),
counts AS (SELECT account_id, count(*) AS n FROM eligible GROUP BY ALL),
shared AS (SELECT account_id, value FROM eligible WHERE c >= 2),
pairs AS (
  SELECT x.account_id AS source, y.account_id AS target, count(*) AS shared
  FROM shared x JOIN shared y ON x.value = y.value AND x.account_id < y.account_id
  GROUP BY ALL
)
SELECT p.source, p.target, p.shared, nx.n AS n_source, ny.n AS n_target,
       (SELECT sum(c * c) / (sum(c) * sum(c)) FROM sizes) AS q
FROM pairs p JOIN counts nx ON nx.account_id = p.source JOIN counts ny ON ny.account_id = p.target
"""


def shared_prompt_links(engine, *, max_accounts: int, alpha: float = 0.01) -> pd.DataFrame:
    """Account pairs that share more rare exact prompts than chance, over every row.

    A prompt is rare when 2 to ``max_accounts`` accounts send it.  Two accounts sending
    ``n_a`` and ``n_b`` distinct prompts drawn from the log's own prompt popularity share
    ``n_a * n_b * q`` by chance (``q``: the collision probability, sum of squared shares);
    a pair is linked when its shared count is beyond that at ``alpha`` with a Bonferroni
    correction over the pairs that share any.  Columns: source, target, shared, log10_p."""
    from scipy.stats import poisson

    pairs = engine.frame(_SHARED_SQL.format(max_accounts=int(max_accounts)))
    if pairs.empty:
        return pairs.assign(log10_p=[])[["source", "target", "shared", "log10_p"]]
    expected = pairs["n_source"] * pairs["n_target"] * pairs["q"]
    tail = poisson.logsf(pairs["shared"] - 1, expected.clip(lower=1e-12)) / np.log(10)
    pairs["log10_p"] = np.minimum(-tail, 1000.0)
    line = -np.log10(alpha / len(pairs))
    keep = (pairs["log10_p"] >= line) & (pairs["shared"] >= 2)
    return pairs.loc[keep, ["source", "target", "shared", "log10_p"]].reset_index(drop=True)


def load_public_index(path, limit: int = 50_000) -> list[str]:
    """Public prompts a provider indexes (instruction and benchmark sets): a text file with
    one prompt a line, or JSONL whose lines carry ``prompt``, ``text``, ``question`` or
    ``instruction``; ``.gz`` either way.  At most ``limit`` prompts are read."""
    import gzip
    import json
    from pathlib import Path

    from stillroom.detect.errors import LogFormatError

    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    out: list[str] = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                if line.startswith("{"):
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise LogFormatError(f"{path}:{number}: not JSON ({exc.msg})") from exc
                    line = next(
                        (
                            str(row[k])
                            for k in ("prompt", "text", "question", "instruction")
                            if k in row
                        ),
                        "",
                    )
                if line:
                    out.append(line)
                if len(out) >= limit:
                    break
    except OSError as exc:
        raise LogFormatError(f"public index {path}: {exc}") from exc
    if not out:
        raise LogFormatError(f"public index {path}: no prompts")
    return out
