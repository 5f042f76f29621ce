"""Per-(account, UTC day) partials: the one intermediate between the rows and every feature.

Row-level SQL (DuckDB dialect; Spark runs the same text through :mod:`stillroom.detect._engine`) turns
the ``traffic`` rows into mergeable per-day partial tables, every one keyed by ``day``:

* ``part_totals`` (day, account): counts and sums (requests, first/last request, tokens,
  ``max_tokens``, logprob / reasoning / grading / system-prompt counts, prompt characters)
  and the moments of the inter-arrival gaps *within* the day (count, sum, centred sum of
  squares).  Gaps that cross midnight are stitched at merge from each active day's last
  request and the next active day's first, so gap moments are exact.
* ``part_hours`` (day, account, hour): requests and reasoning / grading / logprob counts.
* ``part_gap_bins`` (day, account, gap_bin): a log-binned histogram of the within-day gaps
  (bins ``GAP_BIN_RATIO`` wide), merged by addition; the median gap is read from it.
* ``part_keys`` (day, account, kind, value BIGINT, n): multiplicities of hashed values that
  are only compared: system-prompt hashes, template head / tail keys, prompt hashes
  (distinct prompts, for ``duplicate_rate``), ``max_tokens`` values and the first / last
  sentence keys (``seg_head`` / ``seg_tail``) of account-days of ``SEGMENT_DAY_CAP``
  requests or fewer.
* ``part_artifacts`` (day, account, kind, value, n): multiplicities of the graph's shown
  artifacts: IPs, /24 subnets, payment and org ids, user agents.
* ``part_sync`` (day, account, bucket): the SynchroTrap action buckets: minutes in which the
  account sent a prompt whose opening or ending another account also sent *that day*.
* ``part_sample`` (day, account, ord, prompt, phash): the account-day's first ``cap`` prompts
  in the sampling order (``ord``, a ``stable_hash``); the window's sample is the first ``cap``
  of their union, which is exactly the sample of the window's rows.

Within a day the gap moments and bins, the sync buckets (keys matched across accounts) and
the sample are not sums of the partials of parts of the day's rows; a day that gets more rows
is recomputed from all of them (:mod:`stillroom.detect._state` keeps recent days' rows for that).

:func:`build_partials` runs these on an engine; :func:`merge_window` turns the partials of a
window (one log, or the days kept in a state store) into the account-level tables later
stages read: ``account_hours``, ``template_uses`` and ``template_keys``.  The per-account
features themselves are merged in :mod:`stillroom.detect._features`.
"""

from __future__ import annotations

import math

PARTIALS = (
    "part_totals",
    "part_hours",
    "part_gap_bins",
    "part_keys",
    "part_artifacts",
    "part_sync",
    "part_sample",
)
# ``traffic`` columns no partial reads (a state store keeps recent rows without them), and
# the one only ``part_sample`` reads (kept only for rows whose prompt is in their day's sample)
UNREAD_COLUMNS = ("request_id", "model", "system_prompt", "temperature")
SAMPLE_ONLY_COLUMN = "prompt"
# sentence keys are kept only for account-days of at most this many requests: a person's
# day, whose ask a dozen sampled prompts may not hold twice; a heavier day's recurring ask
# recurs in its sample too, and keys of every sentence of every row would not fit in memory
SEGMENT_DAY_CAP = 100
GAP_BIN_RATIO = 1.02  # median gap within +-1% (the bin's half-width), gaps under 1 ms read as 1 ms
_LN_RATIO = math.log(GAP_BIN_RATIO)


def gap_bin(gap: str) -> str:
    """SQL: the histogram bin of a gap in seconds (gaps under 1 ms share the lowest bin)."""
    return f"CAST(floor(ln(greatest({gap}, 0.001)) / {_LN_RATIO!r}) AS INTEGER)"


def gap_bin_value(bin_sql: str) -> str:
    """SQL: a bin's representative gap in seconds (its geometric centre)."""
    return f"exp(({bin_sql} + 0.5) * {_LN_RATIO!r})"


_ROWS = "rows AS (SELECT *, CAST(ts AS DATE) AS day, epoch_us(ts) / 1e6 AS sec FROM {source})"
_GAPS = (
    "gaps AS (SELECT day, account_id, "
    "sec - lag(sec) OVER (PARTITION BY account_id, day ORDER BY ts) AS gap FROM rows)"
)

_SQL = {
    "part_totals": f"""
WITH {_ROWS}, {_GAPS},
gap_moments AS (
  SELECT day, account_id, count(gap) AS gap_n, sum(gap) AS gap_sum,
         var_pop(gap) * count(gap) AS gap_m2
  FROM gaps WHERE gap IS NOT NULL GROUP BY day, account_id
),
totals AS (
  SELECT day, account_id, count(*) AS requests, min(ts) AS first_seen, max(ts) AS last_seen,
    sum(completion_tokens) AS completion_tokens, sum(prompt_tokens) AS prompt_tokens,
    count(max_tokens) AS max_tokens_n, sum(max_tokens) AS max_tokens_sum,
    count(top_logprobs) AS top_logprobs_n,
    sum(CASE WHEN coalesce(top_logprobs, 0) > 0 THEN 1 ELSE 0 END) AS logprob_requests,
    sum(is_reasoning::INTEGER) AS reasoning_requests,
    sum(is_grading::INTEGER) AS grading_requests,
    count(sys_hash) AS sys_requests, sum(prompt_chars) AS prompt_chars
  FROM rows GROUP BY day, account_id
),
segment_tokens AS (  -- rows holding a first or last sentence beside a task
  SELECT day, account_id, sum(completion_tokens) AS seg_completion_tokens,
         sum(prompt_tokens) AS seg_prompt_tokens
  FROM rows WHERE seg_head IS NOT NULL OR seg_tail IS NOT NULL GROUP BY day, account_id
)
SELECT t.*, coalesce(g.gap_n, 0) AS gap_n, g.gap_sum, g.gap_m2,
       s.seg_completion_tokens, s.seg_prompt_tokens
FROM totals t LEFT JOIN gap_moments g USING (day, account_id)
LEFT JOIN segment_tokens s USING (day, account_id)
""",
    "part_hours": """
WITH {_ROWS}
SELECT day, account_id, date_trunc('hour', ts) AS hour, count(*) AS c,
       sum(is_reasoning::INTEGER) AS r, sum(is_grading::INTEGER) AS g,
       sum(CASE WHEN coalesce(top_logprobs, 0) > 0 THEN 1 ELSE 0 END) AS l
FROM rows GROUP BY ALL
""".replace("{_ROWS}", _ROWS),
    "part_gap_bins": f"""
WITH {_ROWS}, {_GAPS}
SELECT day, account_id, {gap_bin("gap")} AS gap_bin, count(*) AS n
FROM gaps WHERE gap IS NOT NULL GROUP BY ALL
""",
    "part_keys": f"""
WITH {_ROWS},
paced AS (  -- account-days at a human pace: their sentence keys are read
  SELECT day, account_id FROM rows GROUP BY day, account_id HAVING count(*) <= {SEGMENT_DAY_CAP}
),
segs AS (SELECT r.* FROM rows r JOIN paced USING (day, account_id))
SELECT day, account_id, kind, value, count(*) AS n FROM (
  SELECT day, account_id, 'system_prompt' AS kind, sys_hash AS value FROM rows
  WHERE sys_hash IS NOT NULL
  UNION ALL SELECT day, account_id, 'head', tkey_head FROM rows
  UNION ALL SELECT day, account_id, 'tail', tkey_tail FROM rows
  UNION ALL SELECT day, account_id, 'prompt', phash FROM rows
  UNION ALL SELECT day, account_id, 'max_tokens', CAST(max_tokens AS BIGINT) FROM rows
  WHERE max_tokens IS NOT NULL
  UNION ALL SELECT day, account_id, 'seg_head', seg_head FROM segs WHERE seg_head IS NOT NULL
  UNION ALL SELECT day, account_id, 'seg_tail', seg_tail FROM segs WHERE seg_tail IS NOT NULL
) GROUP BY ALL
""",
    "part_artifacts": f"""
WITH {_ROWS}
SELECT day, account_id, kind, value, count(*) AS n FROM (
  SELECT day, account_id, 'ip' AS kind, ip AS value FROM rows WHERE ip IS NOT NULL
  UNION ALL SELECT day, account_id, 'subnet', ip24 FROM rows WHERE ip24 IS NOT NULL
  UNION ALL SELECT day, account_id, 'payment', payment_id FROM rows WHERE payment_id IS NOT NULL
  UNION ALL SELECT day, account_id, 'org', org_id FROM rows WHERE org_id IS NOT NULL
  UNION ALL SELECT day, account_id, 'user_agent', user_agent FROM rows
  WHERE user_agent IS NOT NULL
) GROUP BY ALL
""",
    "part_sync": f"""
WITH {_ROWS},
uses AS (
  SELECT day, account_id, tkey_head AS key FROM rows
  UNION ALL SELECT day, account_id, tkey_tail FROM rows
),
shared AS (SELECT day, key FROM uses GROUP BY day, key HAVING count(DISTINCT account_id) >= 2)
SELECT DISTINCT r.day, r.account_id,
       CAST(floor(epoch_us(r.ts) / ({{bucket_s}} * 1e6)) AS BIGINT) * {{bucket_s}} AS bucket
FROM rows r
LEFT JOIN shared h ON h.day = r.day AND h.key = r.tkey_head
LEFT JOIN shared t ON t.day = r.day AND t.key = r.tkey_tail
WHERE h.key IS NOT NULL OR t.key IS NOT NULL
""",
    "part_sample": f"""
WITH {_ROWS}
SELECT day, account_id, ord, prompt, phash FROM (
  SELECT day, account_id, ord, prompt, phash,
         row_number() OVER (PARTITION BY account_id, day ORDER BY ord, prompt) AS rn
  FROM (
    SELECT day, account_id, prompt, phash,
           stable_hash(concat_ws('|', CAST(phash AS VARCHAR), CAST(epoch_us(ts) AS VARCHAR))) AS ord
    FROM rows
  )
) WHERE rn <= {{cap}}
""",
}


def partial_sql(name: str, *, sample_cap: int, bucket_s: int, source: str = "traffic") -> str:
    """The SQL of partial table ``name`` over the rows in ``source`` (``traffic`` by default)."""
    return _SQL[name].format(source=source, cap=max(2, int(sample_cap)), bucket_s=int(bucket_s))


def build_partials(engine, *, sample_cap: int, bucket_s: int) -> None:
    """Every partial table of ``traffic`` as a temp table of the same name."""
    for name in PARTIALS:
        engine.table(name, partial_sql(name, sample_cap=sample_cap, bucket_s=bucket_s))
    engine.materialize(PARTIALS)


_MERGED = {
    "account_hours": """
SELECT account_id, hour, sum(c) AS c, sum(r) AS r, sum(g) AS g, sum(l) AS l
FROM part_hours GROUP BY account_id, hour
""",
    "template_uses": """
SELECT account_id, kind, value AS key, sum(n) AS c FROM part_keys
WHERE kind IN ('head', 'tail') GROUP BY account_id, kind, value
""",
    "template_keys": """
SELECT key, count(DISTINCT account_id) AS accounts, sum(c) AS uses
FROM template_uses GROUP BY key HAVING sum(c) > 1
""",
}


def merge_window(engine) -> None:
    """The window's account-level tables from its partials (``account_hours``, templates)."""
    for name, sql in _MERGED.items():
        engine.table(name, sql)
