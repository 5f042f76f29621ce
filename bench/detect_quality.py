"""Detection quality of ``detect.scan`` on simulated traffic, beside PRADA and SEAT baselines.

Seeds 1000+ are never used while tuning (tuning uses 0-9).  For each seed the simulator
writes a log and its ground truth; ``detect.scan`` and the two per-account baselines run on
the same rows; figures are pooled over all seeds:

    .venv/bin/python bench/detect_quality.py --seeds 1000 1001 1002 --scale 1 \
        --corpora ../shared/corpora

Targets (issue 5): account recall >= 0.95, benign FPR <= 0.5%, every campaign kind >= 80%
of its accounts, every hard-negative kind <= 1% flagged.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import detect  # noqa: E402
from detect._baselines import PradaDetector, SeatDetector  # noqa: E402
from detect.simulator import simulate  # noqa: E402

ORACLE_FPR = 0.10
TARGETS = {"recall": 0.95, "benign_fpr": 0.005, "campaign_kind": 0.80, "hard_negative_kind": 0.01}
CAMPAIGN_KINDS = ("hydra", "low_and_slow", "logprob_extractor", "grading_farm", "reseller")
HARD_KINDS = ("templated_app", "eval_harness", "agent", "enterprise_nat", "logprob_researcher")


def run_seed(seed: int, scale: float, corpora: Path | None, workdir: Path, baselines: bool) -> dict:
    sim = simulate(workdir / f"traffic-{seed}.parquet", seed=seed, scale=scale, corpora=corpora)
    truth = pd.read_csv(sim.truth_path, keep_default_na=False).set_index("account_id")
    t0 = time.perf_counter()
    report = detect.scan([sim.traffic_path]).report
    scan_s = time.perf_counter() - t0
    flags = pd.DataFrame(index=truth.index)
    flags["stillroom"] = pd.Series(
        {a["account_id"]: bool(a["flagged"]) for a in report["accounts"]}
    )
    timings = {"scan_s": scan_s}
    if baselines:
        rows = duckdb.sql(f"SELECT account_id, prompt, timestamp FROM '{sim.traffic_path}'").df()
        benign = truth.index[truth["label"] == "benign"]
        for name, det in (("PRADA", PradaDetector()), ("SEAT", SeatDetector())):
            t0 = time.perf_counter()
            scores = det.fit(rows).decision_function(rows).reindex(truth.index).fillna(0.0)
            flags[name] = det._flag(scores)
            timings[f"{name}_s"] = time.perf_counter() - t0
            # the operating point the literature reports (~10% FPR), with an oracle threshold
            cut = scores[benign].quantile(1 - ORACLE_FPR)
            flags[f"{name}@10%"] = scores > cut
    flags = flags.fillna(False).astype(bool)
    served = sum(
        int((c.get("evidence") or {}).get("requests_before_flag") or 0) for c in report["campaigns"]
    )
    return {
        "seed": seed,
        "rows": sim.rows,
        "truth": truth,
        "flags": flags,
        "timings": timings,
        "campaigns_reported": len(report["campaigns"]),
        "served_before_detection": served,
        "campaign_requests": sum(int(c["requests"]) for c in report["campaigns"]),
    }


def metrics(truth: pd.DataFrame, flagged: pd.Series) -> dict:
    j = truth.assign(flagged=flagged.reindex(truth.index).fillna(False).astype(bool))
    out = {
        "recall": j.loc[j.label == "campaign", "flagged"].mean(),
        "benign_fpr": j.loc[j.label == "benign", "flagged"].mean(),
        "all_negative_fpr": j.loc[j.label != "campaign", "flagged"].mean(),
        "precision": (j.flagged & (j.label == "campaign")).sum() / max(int(j.flagged.sum()), 1),
    }
    for kind in CAMPAIGN_KINDS + HARD_KINDS:
        out[kind] = j.loc[j.kind == kind, "flagged"].mean()
    # campaigns found: at least 80% of a campaign's accounts flagged
    per_campaign = j[j.label == "campaign"].groupby("campaign_id")["flagged"].mean()
    out["campaigns_found"] = f"{int((per_campaign >= 0.8).sum())}/{len(per_campaign)}"
    return out


def verdict(name: str, value) -> str:
    if not isinstance(value, float):
        return ""
    if name == "recall":
        return "ok" if value >= TARGETS["recall"] else "MISS"
    if name == "benign_fpr":
        return "ok" if value <= TARGETS["benign_fpr"] else "MISS"
    if name in CAMPAIGN_KINDS:
        return "ok" if value >= TARGETS["campaign_kind"] else "MISS"
    if name in HARD_KINDS:
        return "ok" if value <= TARGETS["hard_negative_kind"] else "MISS"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1001, 1002])
    parser.add_argument("--scale", type=float, default=1.0)
    default_corpora = ROOT.parent / "shared" / "corpora"
    parser.add_argument(
        "--corpora", type=Path, default=default_corpora if default_corpora.is_dir() else None
    )
    parser.add_argument("--no-corpora", action="store_true", help="use built-in prompts only")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if any(s < 1000 for s in args.seeds):
        parser.error("seeds below 1000 are tuning seeds; benchmark on 1000+")
    corpora = None if args.no_corpora else args.corpora
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            run_seed(s, args.scale, corpora, Path(tmp), not args.no_baselines) for s in args.seeds
        ]
    truth = pd.concat(
        [
            r["truth"]
            .set_index(r["truth"].index + f"@{r['seed']}")
            .assign(
                campaign_id=lambda t, s=r["seed"]: t["campaign_id"].where(
                    t["campaign_id"] == "", t["campaign_id"] + f"@{s}"
                )
            )
            for r in runs
        ]
    )
    flags = pd.concat([r["flags"].set_index(r["flags"].index + f"@{r['seed']}") for r in runs])
    methods = list(flags.columns)
    table = {m: metrics(truth, flags[m]) for m in methods}
    rows = sum(r["rows"] for r in runs)
    print(
        f"seeds {args.seeds}  scale {args.scale}  corpora {corpora or 'built-in'}  rows {rows:,}  "
        f"accounts {len(truth):,} (campaign {int((truth.label == 'campaign').sum())}, "
        f"hard negative {int((truth.label == 'hard_negative').sum())}, benign {int((truth.label == 'benign').sum())})"
    )
    print(f"{'metric':<20}" + "".join(f"{m:>12}" for m in methods) + "   target")
    if len(methods) > 1:
        print(
            f"(X@10% = baseline X at an oracle threshold giving {ORACLE_FPR:.0%} benign FPR, the "
            "operating point published PRADA/SEAT adaptations report)"
        )
    for name in table["stillroom"]:
        cells = []
        for m in methods:
            v = table[m][name]
            cells.append(f"{v:>12.4f}" if isinstance(v, float) else f"{v!s:>12}")
        target = {"recall": ">= 0.95", "benign_fpr": "<= 0.005"}.get(
            name, ">= 0.80" if name in CAMPAIGN_KINDS else "<= 0.01" if name in HARD_KINDS else ""
        )
        print(f"{name:<20}{''.join(cells)}   {target:<9}{verdict(name, table['stillroom'][name])}")
    for m in methods[1:]:
        r0, r1 = table["stillroom"]["recall"], table[m]["recall"]
        f0, f1 = table["stillroom"]["benign_fpr"], table[m]["benign_fpr"]
        print(
            f"vs {m}: recall ratio {r0 / max(r1, 1e-9):.2f}x, benign FPR ratio {f0 / max(f1, 1e-9):.3f}x"
        )
    served = sum(r["served_before_detection"] for r in runs)
    total = sum(r["campaign_requests"] for r in runs)
    print(
        f"campaign exchanges served before detection: {served:,} of {total:,} ({served / max(total, 1):.1%})"
    )
    for r in runs:
        print(
            f"seed {r['seed']}: {r['rows']:,} rows, {r['campaigns_reported']} campaigns reported, "
            + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items())
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"seeds": args.seeds, "scale": args.scale, "rows": rows, "metrics": table},
                indent=2,
                default=float,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
