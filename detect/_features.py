"""Per-account behaviour features, computed in DuckDB SQL over the ``traffic`` table.

One row per account: volume, active hours and days, round-the-clock activity, inter-arrival
regularity, output/input token ratio, max_tokens and logprob use, system-prompt reuse,
duplicate and template rates, intent rates (reasoning demands, grading), and how widely the
account's templates are shared with other accounts.  Optional columns that are absent give
NULL features, which later stages skip.
"""

from __future__ import annotations

import pandas as pd

FEATURE_DESCRIPTIONS = {
    "requests": "requests in the log",
    "active_hours": "distinct clock hours with traffic",
    "active_days": "distinct days with traffic",
    "hour_coverage": "share of the 24 hours of the day with traffic",
    "quiet_share": "share of requests in the 6 quietest hours of the day (high = round the clock)",
    "gap_cv": "coefficient of variation of inter-arrival gaps (low = machine-regular)",
    "gap_median_s": "median inter-arrival gap in seconds",
    "token_ratio": "completion tokens per prompt token",
    "max_tokens_mean": "mean max_tokens asked for",
    "max_tokens_top_share": "share of requests asking for max_tokens near the log's top",
    "logprob_rate": "share of requests asking for top_logprobs",
    "system_top_share": "share of requests using the account's most common system prompt",
    "duplicate_rate": "share of requests repeating an earlier prompt of the account",
    "template_rate": "share of prompt openings and endings that repeat in the account",
    "shared_template_rate": "share of prompt openings and endings other accounts also use",
    "reasoning_rate": "share of prompts demanding the model's full reasoning",
    "grading_rate": "share of prompts asking to grade or judge a response",
    "distinct_ips": "distinct IP addresses",
    "distinct_subnets": "distinct /24 subnets",
}

_TEMPLATE_KEYS_SQL = """
SELECT key, count(DISTINCT account_id) AS accounts, count(*) AS uses FROM (
  SELECT account_id, tkey_head AS key FROM traffic
  UNION ALL SELECT account_id, tkey_tail FROM traffic
) GROUP BY key HAVING count(*) > 1
"""

_HOURLY_SQL = """
SELECT account_id, date_trunc('hour', ts) AS hour, count(*) AS c,
       sum(is_reasoning::INTEGER) AS r, sum(is_grading::INTEGER) AS g,
       sum(CASE WHEN coalesce(top_logprobs, 0) > 0 THEN 1 ELSE 0 END) AS l
FROM traffic GROUP BY ALL
"""

_FEATURES_SQL = """
WITH gaps AS (
  SELECT account_id,
         epoch_us(ts) / 1e6 - lag(epoch_us(ts) / 1e6) OVER (PARTITION BY account_id ORDER BY ts) AS gap
  FROM traffic
),
gap_stats AS (
  SELECT account_id, stddev_pop(gap) / nullif(avg(gap), 0) AS gap_cv,
         median(gap) AS gap_median_s
  FROM gaps WHERE gap IS NOT NULL GROUP BY account_id
),
hours AS (
  SELECT account_id, count(*) AS active_hours,
         count(DISTINCT date_trunc('day', hour)) AS active_days,
         count(DISTINCT hour(hour)) / 24.0 AS hour_coverage,
         count(DISTINCT date_trunc('day', hour)) FILTER (WHERE r > 0) AS reasoning_days,
         count(DISTINCT date_trunc('day', hour)) FILTER (WHERE g > 0) AS grading_days,
         count(DISTINCT date_trunc('day', hour)) FILTER (WHERE l > 0) AS logprob_days
  FROM account_hours GROUP BY account_id
),
hod AS (SELECT account_id, hour(hour) AS h, sum(c) AS c FROM account_hours GROUP BY ALL),
quiet AS (
  SELECT account_id,
         coalesce(sum(c) FILTER (WHERE rn <= 6 - (24 - d)), 0) / sum(c) AS quiet_share
  FROM (SELECT account_id, c, row_number() OVER (PARTITION BY account_id ORDER BY c) AS rn,
               count(*) OVER (PARTITION BY account_id) AS d FROM hod)
  GROUP BY account_id
),
sys AS (
  SELECT account_id, max(c) AS sys_top FROM (
    SELECT account_id, sys_hash, count(*) AS c FROM traffic
    WHERE sys_hash IS NOT NULL GROUP BY ALL
  ) GROUP BY account_id
),
head AS (SELECT account_id, tkey_head AS key, count(*) AS c FROM traffic GROUP BY ALL),
tail AS (SELECT account_id, tkey_tail AS key, count(*) AS c FROM traffic GROUP BY ALL),
tmpl AS (
  SELECT account_id, sum(c) FILTER (WHERE c > 1) AS repeated,
         sum(c) FILTER (WHERE shared >= {min_share}) AS shared
  FROM (
    SELECT h.account_id, h.c, coalesce(k.accounts, 0) AS shared
    FROM head h LEFT JOIN template_keys k USING (key)
    UNION ALL
    SELECT t.account_id, t.c, coalesce(k.accounts, 0) FROM tail t LEFT JOIN template_keys k USING (key)
  ) GROUP BY account_id
),
base AS (
  SELECT account_id,
    count(*) AS requests,
    min(ts) AS first_seen, max(ts) AS last_seen,
    sum(completion_tokens) / nullif(sum(prompt_tokens), 0) AS token_ratio,
    avg(max_tokens) AS max_tokens_mean,
    avg(CASE WHEN max_tokens >= (SELECT greatest({min_top}, 0.5 * max(max_tokens)) FROM traffic)
        THEN 1.0 WHEN max_tokens IS NOT NULL THEN 0.0 END) AS max_tokens_top_share,
    CASE WHEN count(top_logprobs) = 0 AND {has_logprobs} = 0 THEN NULL
         ELSE avg(CASE WHEN coalesce(top_logprobs, 0) > 0 THEN 1.0 ELSE 0.0 END) END
      AS logprob_rate,
    1.0 - count(DISTINCT phash) / count(*) AS duplicate_rate,
    sum(is_reasoning::INTEGER) AS reasoning_requests,
    sum(is_grading::INTEGER) AS grading_requests,
    sum(CASE WHEN coalesce(top_logprobs, 0) > 0 THEN 1 ELSE 0 END) AS logprob_requests,
    count(DISTINCT ip) AS distinct_ips,
    count(DISTINCT ip24) AS distinct_subnets,
    count(sys_hash) AS sys_requests,
    avg(prompt_chars) AS prompt_chars_mean
  FROM traffic GROUP BY account_id
)
SELECT b.*, h.* EXCLUDE (account_id), q.quiet_share, g.gap_cv, g.gap_median_s,
       CASE WHEN b.sys_requests = 0 THEN NULL ELSE s.sys_top / b.requests END AS system_top_share,
       least(1.0, coalesce(t.repeated, 0) / (2.0 * b.requests)) AS template_rate,
       least(1.0, coalesce(t.shared, 0) / (2.0 * b.requests)) AS shared_template_rate
FROM base b
LEFT JOIN hours h USING (account_id)
LEFT JOIN quiet q USING (account_id)
LEFT JOIN gap_stats g USING (account_id)
LEFT JOIN sys s USING (account_id)
LEFT JOIN tmpl t USING (account_id)
ORDER BY account_id
"""


def account_features(
    engine,
    *,
    columns_present: set[str],
    min_share: int = 3,
    min_top_tokens: float = 2048.0,
) -> pd.DataFrame:
    """One row per account (indexed by ``account_id``) with the features above.

    ``min_share`` is how many accounts must use a template before it counts as shared;
    ``max_tokens`` "near the top" is at least half the log's largest and ``min_top_tokens``.
    """
    engine.table("template_keys", _TEMPLATE_KEYS_SQL)
    engine.table("account_hours", _HOURLY_SQL)
    sql = _FEATURES_SQL.format(
        min_share=int(min_share),
        has_logprobs=int("top_logprobs" in columns_present),
        min_top=float(min_top_tokens),
    )
    frame = engine.frame(sql).set_index("account_id")
    for col, needed in (
        ("token_ratio", "completion_tokens"),
        ("max_tokens_mean", "max_tokens"),
        ("max_tokens_top_share", "max_tokens"),
        ("distinct_ips", "ip"),
        ("distinct_subnets", "ip"),
    ):
        if needed not in columns_present:
            frame[col] = float("nan")
    return frame
