"""Per-account behaviour features, merged in SQL from the per-day partials of the window.

One row per account: volume, active hours and days, round-the-clock activity, inter-arrival
regularity, output/input token ratio, max_tokens and logprob use, system-prompt reuse,
duplicate and template rates, intent rates (reasoning demands, grading), and how widely the
account's templates are shared with other accounts.  Optional columns that are absent give
NULL features, which later stages skip.
"""

from __future__ import annotations

import pandas as pd

from stillroom.detect._partials import gap_bin, gap_bin_value

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
    "segment_token_ratio": "completion tokens per prompt token on prompts with a first or last "
    "sentence beside a task",
    "template_rate": "share of prompt openings and endings that repeat in the account",
    "segment_rate": "share of first and last sentences, beside a task, that repeat in the account",
    "shared_template_rate": "share of prompt openings and endings other accounts also use",
    "reasoning_rate": "share of prompts demanding the model's full reasoning",
    "grading_rate": "share of prompts asking to grade or judge a response",
    "distinct_ips": "distinct IP addresses",
    "distinct_subnets": "distinct /24 subnets",
}

_FEATURES_SQL = """
WITH totals AS (
  SELECT account_id, sum(requests) AS requests, min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    sum(completion_tokens) / nullif(sum(prompt_tokens), 0) AS token_ratio,
    sum(max_tokens_sum) / nullif(sum(max_tokens_n), 0) AS max_tokens_mean,
    sum(top_logprobs_n) AS top_logprobs_n,
    sum(reasoning_requests) AS reasoning_requests,
    sum(grading_requests) AS grading_requests,
    sum(logprob_requests) AS logprob_requests,
    sum(sys_requests) AS sys_requests,
    sum(prompt_chars) / sum(requests) AS prompt_chars_mean,
    sum(seg_completion_tokens) / nullif(sum(seg_prompt_tokens), 0) AS segment_token_ratio
  FROM part_totals GROUP BY account_id
),
crossing AS (  -- the gaps that cross midnight: a day's last request to the next active day's first
  SELECT account_id, epoch_us(next_first) / 1e6 - epoch_us(last_seen) / 1e6 AS gap FROM (
    SELECT account_id, last_seen,
           lead(first_seen) OVER (PARTITION BY account_id ORDER BY day) AS next_first
    FROM part_totals
  ) WHERE next_first IS NOT NULL
),
gap_parts AS (
  SELECT account_id, gap_n AS n, gap_sum / gap_n AS mean, gap_m2 AS m2
  FROM part_totals WHERE gap_n > 0
  UNION ALL SELECT account_id, 1, gap, 0.0 FROM crossing
),
gap_pooled AS (
  SELECT *, sum(n * mean) OVER (PARTITION BY account_id)
            / sum(n) OVER (PARTITION BY account_id) AS grand
  FROM gap_parts
),
gap_stats AS (  -- Chan et al.'s pooled variance: exact up to float rounding
  SELECT account_id,
         sqrt((sum(m2) + sum(n * (mean - grand) * (mean - grand))) / sum(n))
           / nullif(max(grand), 0) AS gap_cv
  FROM gap_pooled GROUP BY account_id
),
gap_bins AS (
  SELECT account_id, gap_bin, sum(n) AS n FROM (
    SELECT account_id, gap_bin, n FROM part_gap_bins
    UNION ALL SELECT account_id, {crossing_bin}, 1 FROM crossing
  ) GROUP BY account_id, gap_bin
),
gap_median AS (  -- the middle gap(s)' bins, as DuckDB's median() interpolates two middles
  SELECT account_id,
         ({lo_value} + {hi_value}) / 2.0 AS gap_median_s FROM (
    SELECT account_id, gap_bin,
           sum(n) OVER (PARTITION BY account_id ORDER BY gap_bin
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS below,
           sum(n) OVER (PARTITION BY account_id) AS total
    FROM gap_bins
  ) GROUP BY account_id
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
    SELECT account_id, value, sum(n) AS c FROM part_keys
    WHERE kind = 'system_prompt' GROUP BY account_id, value
  ) GROUP BY account_id
),
prompts AS (
  SELECT account_id, count(DISTINCT value) AS distinct_prompts FROM part_keys
  WHERE kind = 'prompt' GROUP BY account_id
),
segs AS (  -- first / last sentences beside a task that recur in the account
  SELECT account_id, sum(c) FILTER (WHERE c > 1) AS seg_repeated FROM (
    SELECT account_id, kind, value, sum(n) AS c FROM part_keys
    WHERE kind IN ('seg_head', 'seg_tail') GROUP BY ALL
  ) GROUP BY account_id
),
max_tokens AS (
  SELECT account_id, value, sum(n) AS n FROM part_keys
  WHERE kind = 'max_tokens' GROUP BY account_id, value
),
top_tokens AS (SELECT greatest({min_top}, 0.5 * max(value)) AS top FROM max_tokens),
tokens_top AS (
  SELECT account_id, sum(CASE WHEN value >= top THEN n ELSE 0 END) / sum(n) AS max_tokens_top_share
  FROM max_tokens CROSS JOIN top_tokens GROUP BY account_id
),
ips AS (
  SELECT account_id, count(DISTINCT value) FILTER (WHERE kind = 'ip') AS distinct_ips,
         count(DISTINCT value) FILTER (WHERE kind = 'subnet') AS distinct_subnets
  FROM part_artifacts WHERE kind IN ('ip', 'subnet') GROUP BY account_id
),
tmpl AS (
  SELECT u.account_id, sum(u.c) FILTER (WHERE u.c > 1) AS repeated,
         sum(u.c) FILTER (WHERE coalesce(k.accounts, 0) >= {min_share}) AS shared
  FROM template_uses u LEFT JOIN template_keys k USING (key) GROUP BY u.account_id
),
base AS (
  SELECT t.account_id, t.requests, t.first_seen, t.last_seen, t.token_ratio, t.max_tokens_mean,
    m.max_tokens_top_share,
    CASE WHEN t.top_logprobs_n = 0 AND {has_logprobs} = 0 THEN NULL
         ELSE t.logprob_requests / t.requests END AS logprob_rate,
    1.0 - p.distinct_prompts / t.requests AS duplicate_rate,
    -- a prompt sent again and its first send recur at both ends: four per repeat
    greatest(0, coalesce(sg.seg_repeated, 0) - 4 * (t.requests - p.distinct_prompts))
      / (2.0 * t.requests) AS segment_rate,
    t.reasoning_requests, t.grading_requests, t.logprob_requests,
    coalesce(i.distinct_ips, 0) AS distinct_ips,
    coalesce(i.distinct_subnets, 0) AS distinct_subnets,
    t.sys_requests, t.prompt_chars_mean, t.segment_token_ratio
  FROM totals t
  LEFT JOIN tokens_top m USING (account_id)
  LEFT JOIN prompts p USING (account_id)
  LEFT JOIN segs sg USING (account_id)
  LEFT JOIN ips i USING (account_id)
)
SELECT b.*, h.* EXCLUDE (account_id), q.quiet_share, g.gap_cv, gm.gap_median_s,
       CASE WHEN b.sys_requests = 0 THEN NULL ELSE s.sys_top / b.requests END AS system_top_share,
       least(1.0, coalesce(t.repeated, 0) / (2.0 * b.requests)) AS template_rate,
       least(1.0, coalesce(t.shared, 0) / (2.0 * b.requests)) AS shared_template_rate
FROM base b
LEFT JOIN hours h USING (account_id)
LEFT JOIN quiet q USING (account_id)
LEFT JOIN gap_stats g USING (account_id)
LEFT JOIN gap_median gm USING (account_id)
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
    sql = _FEATURES_SQL.format(
        crossing_bin=gap_bin("gap"),
        lo_value=gap_bin_value("min(gap_bin) FILTER (WHERE below >= floor((total + 1) / 2))"),
        hi_value=gap_bin_value("min(gap_bin) FILTER (WHERE below >= floor(total / 2) + 1)"),
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
