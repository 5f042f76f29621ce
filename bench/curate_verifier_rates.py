"""False-accept and false-reject rates of the math verifier on the labelled set.

The set (tests/curate/data/math_labelled.jsonl, written by make_math_labelled.py there) holds
responses to the 80 shipped GSM8K prompts plus hand-written edge cases, each labelled right or
wrong by construction. Prints, per family and overall, for stillroom's builtin verifier and,
where installed, HuggingFace's ``math-verify`` (parse + verify on the whole response) as an
independent comparison. Run:

    .venv/bin/python bench/curate_verifier_rates.py
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from stillroom.curate import MathVerifier

SET = Path(__file__).resolve().parents[1] / "tests/curate/data/math_labelled.jsonl"


def _math_verify() -> Callable[[str, str], bool] | None:
    try:
        from math_verify import parse, verify
    except ImportError:
        return None

    def check(response: str, reference: str) -> bool:
        gold = parse(f"${reference}$")
        return bool(verify(gold, parse(response)))

    return check


def rates(rows: list[dict], check: Callable[[str, str], bool]) -> tuple[dict, dict]:
    per = defaultdict(lambda: [0, 0])  # family -> [n, errors]
    fa = fr = right = wrong = 0
    for row in rows:
        ok = check(row["response"], row["reference"])
        per[row["family"]][0] += 1
        per[row["family"]][1] += ok != row["label"]
        if row["label"]:
            right += 1
            fr += not ok
        else:
            wrong += 1
            fa += ok
    overall = {"false_accept": (fa, wrong), "false_reject": (fr, right)}
    return overall, dict(per)


def main() -> None:
    rows = [json.loads(line) for line in SET.open()]
    builtin = MathVerifier()
    checkers = {"stillroom math@1": lambda r, ref: builtin.verify("", r, ref).passed}
    mv = _math_verify()
    if mv is not None:
        checkers["math-verify (whole response)"] = mv
    print(
        f"{len(rows)} labelled responses: {sum(r['label'] for r in rows)} right, {sum(not r['label'] for r in rows)} wrong"
    )
    results = {name: rates(rows, fn) for name, fn in checkers.items()}
    for name, (overall, _) in results.items():
        fa, wrong = overall["false_accept"]
        fr, right = overall["false_reject"]
        print(
            f"{name:30s} false-accept {fa}/{wrong} = {fa / wrong:.1%}   false-reject {fr}/{right} = {fr / right:.1%}"
        )
    families = sorted({r["family"] for r in rows})
    print("\nerrors per family (" + " | ".join(results) + ")")
    for fam in families:
        cells = [f"{results[n][1][fam][1]}/{results[n][1][fam][0]}" for n in results]
        print(f"  {fam:32s} " + "  ".join(f"{c:>7s}" for c in cells))


if __name__ == "__main__":
    main()
