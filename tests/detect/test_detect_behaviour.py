"""Behaviour ranks but never decides alone (issue 26): machine-paced, output-heavy accounts on
shared exits asking what everyone asks are not a campaign, and a benign app whose template
asks for step-by-step answers is not flagged for its words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stillroom.detect import scan
from stillroom.detect._behaviour import BehaviourParams, behaviour_flags

DAY = 86400.0
START = 1_767_571_200.0  # 2026-01-05 00:00 UTC


def _human_times(rng, n: int) -> np.ndarray:
    """Sessions at daytime hours (UTC+1), a few minutes apart, over two weeks."""
    sessions = max(1, n // 4)
    starts = START + rng.integers(0, 14, sessions) * DAY + rng.uniform(8, 22, sessions) * 3600
    which = rng.integers(0, sessions, n)
    return starts[which] + rng.lognormal(np.log(90), 0.9, n).cumsum() % 1800


def _rows(rng, account, ts, prompts, **cols) -> pd.DataFrame:
    n = len(ts)
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(np.asarray(ts), unit="s", utc=True),
            "account_id": account if not isinstance(account, str) else [account] * n,
            "prompt": prompts,
        }
    )
    for name, value in cols.items():
        frame[name] = value
    return frame


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    rng = np.random.default_rng(5)
    words = [
        "apple",
        "river",
        "code",
        "invoice",
        "garden",
        "paris",
        "tax",
        "poem",
        "chess",
        "recipe",
        "loan",
        "cloud",
    ]
    frames = []
    for i in range(300):  # people
        n = int(rng.integers(5, 120))
        prompts = [f"{' '.join(rng.choice(words, 5))} question {k}" for k in range(n)]
        frames.append(
            _rows(
                rng,
                f"user{i:03d}",
                _human_times(rng, n),
                prompts,
                ip=f"24.{i % 200}.{i % 7}.{i % 250 + 2}",
                max_tokens=int(rng.choice([256, 512, 1024])),
                prompt_tokens=30,
                completion_tokens=rng.integers(50, 400, n),
                payment_id=f"pm_user{i}",
            )
        )
    cgnat = [f"100.64.0.{k}" for k in range(4)]  # a carrier NAT: four exits for a city
    for i in range(120):  # phone users; some ask for long outputs (writers), all human-paced
        n = int(rng.integers(10, 80))
        prompts = [f"{' '.join(rng.choice(words, 5))} note {k}" for k in range(n)]
        frames.append(
            _rows(
                rng,
                f"phone{i:03d}",
                _human_times(rng, n),
                prompts,
                ip=rng.choice(cgnat, n),
                max_tokens=8192 if i % 8 == 0 else 1024,
                prompt_tokens=30,
                completion_tokens=rng.integers(50, 3000, n),
                payment_id=f"pm_phone{i}",
            )
        )
    pool = [f"73.{k}.9.{k + 10}" for k in range(12)]  # rented residential exits
    for i in range(24):  # the campaign: plain tasks, no coercion, no grading, no logprobs
        n = int(rng.integers(120, 200))
        ts = np.sort(START + rng.random(n) * 10 * DAY)
        prompts = [f"{' '.join(rng.choice(words, 6))} ({k})" for k in range(n)]
        frames.append(
            _rows(
                rng,
                f"acct{i:03d}",
                ts,
                prompts,
                ip=rng.choice(pool, n),
                max_tokens=8192,
                prompt_tokens=40,
                completion_tokens=rng.integers(3000, 8000, n),
                payment_id=f"pm_acct{i}",
            )
        )
    tutor = [
        f"Solve this step by step and show your full reasoning before the final answer, so the "
        f"student can follow: what is {a} + {b} times {c}?"
        for a, b, c in rng.integers(2, 99, (1500, 3))
    ]
    frames.append(
        _rows(
            rng,
            "tutoring_app",
            _human_times(rng, 1500),
            tutor,
            ip="34.1.2.3",
            max_tokens=2048,
            prompt_tokens=60,
            completion_tokens=rng.integers(200, 900, 1500),
            payment_id="pm_school",
        )
    )
    path = tmp_path_factory.mktemp("behaviour") / "traffic.parquet"
    pd.concat(frames, ignore_index=True).to_parquet(path)
    result = scan([path])
    return result, result.report


def test_behaviour_alone_decides_nothing(log):
    """Issue 26: pacing, volume and token economics rank; they never decide alone.  Machine
    paced, output-heavy accounts on shared exits that ask what everyone else asks (no
    reasoning, grading or logprob asks, no shared rare prompts, no source of their own) are
    what most paying API traffic looks like, so they are not a campaign."""
    result, report = log
    accounts = {a["account_id"]: a for a in report["accounts"]}
    machines = result.accounts.loc[[f"acct{i:03d}" for i in range(24)]]
    assert machines["b_pacing"].all() and machines["b_output_heavy"].all()  # the behaviours
    assert (machines["infra_group"] >= 3).all()  # and the shared exits are there
    assert not any(accounts[f"acct{i:03d}"]["flagged"] for i in range(24))
    assert not any(a["flagged"] for k, a in accounts.items() if k.startswith("user"))
    # output-heavy phone users behind one carrier NAT share IPs with 119 strangers: no campaign
    assert not any(a["flagged"] for k, a in accounts.items() if k.startswith("phone"))


def test_a_benign_app_asking_for_step_by_step_answers_is_not_flagged(log):
    result, report = log
    tutor = next(a for a in report["accounts"] if a["account_id"] == "tutoring_app")
    assert not tutor["flagged"]
    assert result.accounts.loc["tutoring_app", "reasoning_rate"] > 0.9  # the words are there
    assert report["summary"]["background_rates"]["reasoning"] < 0.05


def test_behaviour_flags_read_the_features():
    frame = pd.DataFrame(
        {
            "requests": [200, 200, 200, 5],
            "gap_cv": [0.9, 3.0, 3.0, 0.5],
            "quiet_share": [0.2, 0.0, 0.0, 0.3],
            "max_tokens_top_share": [1.0, 0.0, 1.0, 1.0],
            "token_ratio": [50.0, 2.0, 40.0, 30.0],
            "logprob_rate": [0.0, 0.9, 0.0, 0.0],
        },
        index=["machine", "researcher", "writer", "tiny"],
    )
    flags = behaviour_flags(frame, BehaviourParams())
    assert flags.loc["machine"].tolist() == [True, True, False]
    assert flags.loc["researcher"].tolist() == [False, False, False]  # logprobs, human-paced
    assert flags.loc["writer"].tolist() == [False, True, False]
    assert not flags.loc["tiny"].any()
