"""Writes ``math_labelled.jsonl``: responses to the 80 shipped GSM8K prompts, labelled right or wrong.

Run from the repository root: ``python tests/curate/data/make_math_labelled.py``. Deterministic.

The label is the truth about the response's *final stated answer* against the reference in
``stillroom/data/references.jsonl``, decided by how the response was built, not by any verifier.
Half the generated responses are wrong, and the wrong ones are built to fool a careless check:
digits of the reference transposed or repeated, the reference stated as an intermediate step,
a hedge between the right number and another, a correction after a right answer, a cut-off
response. Some right ones are built to be hard: a trailing number after the answer, units,
thousands separators, ``72.00``. The hand-written family (``hand_*``) was written separately
as edge cases: negatives, fractions, percentages, mixed numbers, spelled-out numbers.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).with_name("math_labelled.jsonl")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _comma(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.2f}"


def _wrong_values(r: int, rng: random.Random) -> list[float]:
    s = str(r)
    out = []
    if len(s) > 1 and s[::-1] != s and s[-1] != "0":
        out.append(int(s[::-1]))  # 72 -> 27
    out += [r * 10, r + 1, r - 1 if r > 1 else r + 2, int(s + s[-1]), r / 10]
    if len(s) > 1:
        out.append(int(s[0] + "0" + s[1:]))  # 72 -> 702
    rng.shuffle(out)
    return [v for v in out if v != r]


def _steps(r: int, rng: random.Random) -> str:
    a = rng.randint(2, 9)
    return f"First I work out the smaller part: {a} times the amount given.\nThen I add the parts together."


def right(r: int, style: str, rng: random.Random) -> str:
    steps = _steps(r, rng)
    return {
        "hashes": f"{steps}\n#### {r}",
        "boxed": f"{steps}\nSo the result is $\\boxed{{{r}}}$.",
        "phrase_units": f"{steps}\nThe answer is {_comma(r)} in total.",
        "phrase_money": f"{steps}\nThe final answer is ${_comma(r)}.",
        "last_number": f"{steps} Altogether that comes to {_comma(r)}.",
        "decimal": f"{steps}\n#### {r}.00",
        "trailing_number": f"{steps}\nThe answer is {r}, which I checked 2 times.",
        "trailing_plain": f"{steps} So it is {r} in the end, after 3 steps.",
    }[style]


def wrong(r: int, w: float, style: str, rng: random.Random) -> str:
    steps = _steps(r, rng)
    return {
        "shared_digits": f"{steps}\n#### {_fmt(w)}",
        "shared_digits_boxed": f"{steps}\nSo the result is $\\boxed{{{_fmt(w)}}}$.",
        "ref_as_step": f"{steps}\nThat step gives {r}, and then one more step.\nThe answer is {_fmt(w)}.",
        "hedge": f"{steps}\n#### {r} or {_fmt(w)}",
        "correction": f"{steps}\n#### {r}\nWait, I made a mistake. Redoing it:\n#### {_fmt(w)}",
        "cut_off": f"{steps}\nNow I compute {r // 2 if r > 3 else r + 5} plus the",
        "ref_in_question_restated": f"The question gives {r + 7} and asks for a total. I am not sure how to finish.",
    }[style]


RIGHT_STYLES = ["hashes", "boxed", "phrase_units", "phrase_money", "last_number", "decimal"]
HARD_RIGHT = ["trailing_number", "trailing_plain"]
WRONG_STYLES = ["shared_digits", "shared_digits_boxed", "ref_as_step", "hedge", "correction"]
HARD_WRONG = ["cut_off", "ref_in_question_restated"]

# Hand-written edge cases: (response, reference, label, note)
HAND = [
    ("The temperature drops to \\boxed{-5} degrees.", "-5", True, "negative boxed"),
    ("The balance is −12 dollars.", "-12", True, "unicode minus"),
    ("#### -3", "3", False, "sign flipped"),
    ("#### 3", "-3", False, "sign dropped"),
    ("Each gets 3/4 of a pizza.\n#### 3/4", "0.75", True, "fraction vs decimal"),
    ("The share is $\\frac{3}{4}$, so \\boxed{\\frac{3}{4}}", "3/4", True, "latex frac"),
    ("\\boxed{\\dfrac{3}{4}}", "0.75", True, "dfrac"),
    ("\\boxed{\\frac{4}{3}}", "3/4", False, "inverted fraction"),
    ("#### 0.34", "3/4", False, "digits of fraction"),
    ("It takes 2 1/2 hours.\n#### 2 1/2", "2.5", True, "mixed number"),
    ("#### 2.5", "5/2", True, "decimal vs fraction"),
    ("#### 21/2", "2.5", False, "mixed number without space"),
    ("The answer is 75%.", "75", True, "percent sign"),
    ("The answer is 7.5%.", "75", False, "percent shifted"),
    ("#### $1,000,000", "1000000", True, "millions with commas"),
    ("#### 100,000", "1000000", False, "a zero short"),
    ("#### 1,000.50", "1000.5", True, "commas and decimals"),
    ("#### 10,005", "1000.5", False, "comma as decimal separator misread"),
    ("The answer is 5 hours.", "5", True, "units after number"),
    ("The answer is 300 minutes.", "5", False, "other unit"),
    ("He ends up with five apples.\n#### 5", "5", True, "word then hashes"),
    ("He ends up with five apples.", "5", True, "spelled out only"),
    ("The final answer is: 42", "42", True, "colon"),
    ("Answer: 42.", "42", True, "answer colon"),
    ("Answer: 24.", "42", False, "reversed"),
    ("\\boxed{42 \\text{ apples}}", "42", True, "text in box"),
    ("\\boxed{4 2}", "42", False, "split digits"),
    ("#### 042", "42", True, "leading zero"),
    ("#### 0.42", "42", False, "decimal shifted"),
    ("#### 4.2e1", "42", True, "scientific notation"),
    (
        "She pays $18.00 per hour, so for 10 hours she pays $180.00.",
        "180",
        True,
        "money last number",
    ),
    (
        "She pays $18.00 per hour, so for 10 hours she pays $180.00 in 2 days.",
        "180",
        True,
        "trailing count",
    ),
    ("I think 50, no wait, 60. The answer is 60.", "60", True, "self correction to right"),
    ("I think 60, no wait, 50. The answer is 50.", "60", False, "self correction to wrong"),
    ("The answer is 33.3 repeating.", "100/3", True, "repeating decimal in words"),
    ("The answer is 33.333333333.", "100/3", True, "rounded within 1e-6"),
    ("#### 1/0", "5", False, "division by zero"),
    ("#### ", "5", False, "empty hashes"),
    ("The answer is \\boxed{", "5", False, "unbalanced box"),
    (
        "There are 15 left, out of 60 at the start, so 45 are gone.\nThe answer is 45.",
        "45",
        True,
        "numbers after phrase-free text",
    ),
]


def build() -> list[dict]:
    refs = [json.loads(line) for line in (ROOT / "stillroom/data/references.jsonl").open()]
    rng = random.Random(12)
    rows = []
    for i, ref in enumerate(refs):
        r = int(ref["answer"])
        wrongs = _wrong_values(r, rng)
        picks = [
            ("right", RIGHT_STYLES[i % len(RIGHT_STYLES)], True),
            ("wrong", WRONG_STYLES[i % len(WRONG_STYLES)], False),
        ]
        if i % 2 == 0:
            picks.append(("right", HARD_RIGHT[(i // 2) % 2], True))
            picks.append(("wrong", HARD_WRONG[(i // 2) % 2], False))
        for n, (kind, style, label) in enumerate(picks):
            w = wrongs[n % len(wrongs)]
            text = right(r, style, rng) if kind == "right" else wrong(r, w, style, rng)
            rows.append(
                {
                    "id": ref["id"],
                    "reference": ref["answer"],
                    "response": text,
                    "label": label,
                    "family": f"{kind}_{style}",
                }
            )
    for n, (text, reference, label, note) in enumerate(HAND):
        rows.append(
            {
                "id": f"hand-{n:02d}",
                "reference": reference,
                "response": text,
                "label": label,
                "family": "hand_right" if label else "hand_wrong",
                "note": note,
            }
        )
    return rows


if __name__ == "__main__":
    rows = build()
    with OUT.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    right_n = sum(r["label"] for r in rows)
    print(f"wrote {len(rows)} rows ({right_n} right, {len(rows) - right_n} wrong) to {OUT}")
