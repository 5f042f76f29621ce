"""Detection quality of ``stillroom.detect.scan`` on simulated traffic: training vs held-out wording.

Four columns per method, pooled over seeds (1000+, never used while tuning):

* ``training``: the current simulator (``world="current"``) with every family drawn from the
  training families (what the lexicon, the classifier's seed corpus and any tuning may see);
* ``held_out``: the same populations with every family (wording, pacing, pool, language,
  construction) held out, plus the held-out kinds (``HELD_OUT_KINDS``), which only this
  column has;
* ``adversarial``: wording from ``bench/detect_adversarial_asks.jsonl``, a frozen set written
  independently of the simulator (66 reasoning and 21 grading asks, 7 languages), with the
  held-out families (and kinds) for everything else;
* ``frozen``: the simulator as it was before issue 26 (``world="frozen"``), for comparison.

The current simulator samples dataset questions from one half of the corpora; the other half
(``public_sets_index``) is what a provider's index of public sets would hold.

Each line is a campaign kind (share of its accounts flagged) or a benign kind (share flagged),
plus recall, benign FPR and fragmentation (campaigns reported per true campaign, counting only
reported campaigns holding at least one of its accounts; a lone account counts as one).  The
adversarial set's benign controls are also scored at the prompt level by the content signals.

    .venv/bin/python bench/detect_quality.py --seeds 1000 1001 --scale 1 --no-baselines

Targets (issue 11, on held-out families): recall >= 0.95, benign FPR <= 0.5%, every campaign
kind >= 80% of its accounts, every benign kind <= 1% flagged, fragmentation <= 1.2.
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

from stillroom import detect  # noqa: E402
from stillroom.detect._baselines import PradaDetector, SeatDetector  # noqa: E402
from stillroom.detect.simulator import (  # noqa: E402
    HELD_OUT_KINDS,
    KINDS,
    Phrasing,
    public_index_prompts,
    read_truth,
    score_against_truth,
    simulate,
)

ADVERSARIAL = ROOT / "bench" / "detect_adversarial_asks.jsonl"
# training / held_out / adversarial: the current simulator (issue 26's kinds included);
# frozen: the simulator as it was before issue 26, scored beside it
SPLITS = ("training", "held_out", "adversarial", "frozen")

ORACLE_FPR = 0.10
TARGETS = {"recall": 0.95, "benign_fpr": 0.005, "campaign_kind": 0.80, "hard_negative_kind": 0.01}
CAMPAIGN_KINDS = tuple(k for k, label in KINDS.items() if label == "campaign")
HARD_KINDS = tuple(k for k, label in KINDS.items() if label == "hard_negative")


def content_rates() -> list[str]:
    """Prompt-level content figures on the frozen adversarial set (scored, never tuned on):
    share of asks the ingest lexicon matches and the intent classifier flags, per kind."""
    from stillroom.detect._content import PromptIntentClassifier
    from stillroom.detect._lexicon import (
        GRADING_REGEX,
        REASONING_DEMAND_REGEX,
        REASONING_OBJECT_REGEX,
        REASONING_REGEX,
    )

    rows = [json.loads(line) for line in ADVERSARIAL.read_text(encoding="utf-8").splitlines()]
    task = "A train travels 60 km in 45 minutes. What is its average speed?"
    texts = [f"{r['text']}\n\n{task}" for r in rows]
    con = duckdb.connect()
    con.register("asks", pd.DataFrame({"prompt": texts}))
    hits = con.execute(  # the same expression ingest applies to every row
        "SELECT regexp_matches(prompt, $1, 'i') OR (regexp_matches(prompt, $2, 'i') AND "
        "regexp_matches(prompt, $3, 'i')) OR regexp_matches(prompt, $4, 'i') FROM asks",
        [REASONING_REGEX, REASONING_OBJECT_REGEX, REASONING_DEMAND_REGEX, GRADING_REGEX],
    ).fetchnumpy()
    lexicon = list(next(iter(hits.values())))
    chars = PromptIntentClassifier(analyzer="char_wb", ngram_range=(3, 5)).fit().predict(texts)
    words = PromptIntentClassifier().fit().predict(texts)
    frame = pd.DataFrame(
        {
            "kind": [r["kind"] for r in rows],
            "lang": [r["lang"] for r in rows],
            "lexicon": lexicon,
            "classifier": chars != "none",
            "words": words != "none",
        }
    )
    out = ["content signals on the frozen adversarial asks (share flagged per ask):"]
    for kind, part in frame.groupby("kind"):
        langs = part.groupby("lang")[["lexicon", "classifier"]].mean()
        per_lang = ", ".join(
            f"{lang} {row.lexicon:.2f}/{row.classifier:.2f}" for lang, row in langs.iterrows()
        )
        out.append(
            f"  {kind:<10} n={len(part):<3} lexicon {part.lexicon.mean():.2f}  classifier "
            f"char n-grams {part.classifier.mean():.2f} (word n-grams {part.words.mean():.2f})"
            f"   lexicon/char classifier by language: {per_lang}"
        )
    return out


def adversarial_phrasing() -> Phrasing:
    rows = [json.loads(line) for line in ADVERSARIAL.read_text(encoding="utf-8").splitlines()]
    return Phrasing.from_asks(
        reasoning=[r["text"] for r in rows if r["kind"] == "reasoning"],
        grading=[r["text"] for r in rows if r["kind"] == "grading"],
    )


def public_sets_index(corpora: Path | None) -> list[str]:
    """What a provider's public-sets index holds: the half of the dataset pools the current
    simulator never samples, so provenance has to work by similarity, not membership."""
    return public_index_prompts(corpora)


def simulate_split(seed: int, scale: float, corpora: Path | None, workdir: Path, split: str):
    """One log of ``split``: the current world's training, held-out or adversarial families,
    or the frozen pre-issue-26 world (training wording)."""
    phrasing = {"adversarial": adversarial_phrasing(), "frozen": "training"}.get(split, split)
    return simulate(
        workdir / f"traffic-{split}-{seed}.parquet",
        seed=seed,
        scale=scale,
        corpora=corpora,
        phrasing=phrasing,
        world="frozen" if split == "frozen" else "current",
    )


def run_seed(
    seed: int, scale: float, corpora: Path | None, workdir: Path, baselines: bool, split: str
) -> dict:
    sim = simulate_split(seed, scale, corpora, workdir, split)
    truth = read_truth(sim.truth_path)
    t0 = time.perf_counter()
    report = detect.scan([sim.traffic_path]).report
    scan_s = time.perf_counter() - t0
    flags = pd.DataFrame(index=truth.index)
    flags["stillroom"] = pd.Series(
        {a["account_id"]: bool(a["flagged"]) for a in report["accounts"]}
    )
    found = pd.Series({a["account_id"]: a["campaign"] for a in report["accounts"]})
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
        "found": found,
        "split": split,
        "seed": seed,
        "rows": sim.rows,
        "truth": truth,
        "flags": flags,
        "timings": timings,
        "campaigns_reported": len(report["campaigns"]),
        "served_before_detection": served,
        "campaign_requests": sum(int(c["requests"]) for c in report["campaigns"]),
    }


def fragmentation(truth: pd.DataFrame, found: pd.Series) -> float:
    """Reported campaigns per true campaign (lone flagged accounts count one each)."""
    j = truth[truth.label == "campaign"].assign(found=found.reindex(truth.index))
    j = j[j["found"].notna()]
    if j.empty:
        return float("nan")
    per = j.groupby("campaign_id")["found"].nunique()
    return float(per.mean())


def merging(truth: pd.DataFrame, found: pd.Series) -> float:
    """True campaigns per reported campaign holding campaign accounts (1.0: none merged)."""
    j = truth[truth.label == "campaign"].assign(found=found.reindex(truth.index))
    j = j[j["found"].notna()]
    if j.empty:
        return float("nan")
    return float(j.groupby("found")["campaign_id"].nunique().mean())


def pooled(runs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Truth, flags and reported campaign ids of several runs, account ids made unique."""
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
    found = pd.concat(
        [
            r["found"]
            .set_axis(r["found"].index + f"@{r['seed']}")
            .map(lambda c, s=r["seed"]: None if c is None else f"{c}@{s}")
            for r in runs
        ]
    )
    return truth, flags, found


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
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    args = parser.parse_args(argv)
    if any(s < 1000 for s in args.seeds):
        parser.error("seeds below 1000 are tuning seeds; benchmark on 1000+")
    corpora = None if args.no_corpora else args.corpora
    splits = args.splits
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for split in splits:
            runs[split] = [
                run_seed(s, args.scale, corpora, Path(tmp), not args.no_baselines, split)
                for s in args.seeds
            ]
    tables, frag, merged = {}, {}, {}
    for split in splits:
        truth, flags, found = pooled(runs[split])
        tables[split] = {
            m: score_against_truth(truth, flags[m], CAMPAIGN_KINDS + HARD_KINDS)
            for m in flags.columns
        }
        frag[split] = fragmentation(truth, found)
        merged[split] = merging(truth, found)
    first = runs[splits[0]]
    truth0 = first[0]["truth"]
    print(
        f"seeds {args.seeds}  scale {args.scale}  corpora {corpora or 'built-in'}  rows/log "
        f"{first[0]['rows']:,}  accounts/log {len(truth0):,}"
    )
    print(f"held-out kinds (only in the held_out column): {', '.join(HELD_OUT_KINDS)}")
    methods = list(tables[splits[0]])
    header = "".join(f"{f'{m}:{sp}':>24}" for m in methods for sp in splits)
    print(f"{'metric':<22}{header}   target (held_out)")
    for name in tables[splits[0]]["stillroom"]:
        cells = []
        for m in methods:
            for sp in splits:
                v = tables[sp][m][name]
                cells.append(f"{v:>24.4f}" if isinstance(v, float) else f"{v!s:>24}")
        target = {"recall": ">= 0.95", "benign_fpr": "<= 0.005"}.get(
            name, ">= 0.80" if name in CAMPAIGN_KINDS else "<= 0.01" if name in HARD_KINDS else ""
        )
        held = tables.get("held_out", tables[splits[0]])["stillroom"][name]
        print(f"{name:<22}{''.join(cells)}   {target:<9}{verdict(name, held)}")
    print(
        f"{'fragmentation':<22}"
        + "".join(f"{frag[sp]:>24.3f}" for sp in splits)
        + "   <= 1.2 (stillroom; reported campaigns per true campaign)"
    )
    print(
        f"{'merging':<22}"
        + "".join(f"{merged[sp]:>24.3f}" for sp in splits)
        + "   (true campaigns per reported campaign; 1.0 = none merged)"
    )
    if "adversarial" in splits:
        print("\n".join(content_rates()))
    for split in splits:
        for r in runs[split]:
            print(
                f"{split} seed {r['seed']}: {r['rows']:,} rows, {r['campaigns_reported']} campaigns "
                "reported, " + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items())
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seeds": args.seeds,
                    "scale": args.scale,
                    "metrics": tables,
                    "fragmentation": frag,
                    "merging": merged,
                },
                indent=2,
                default=float,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
