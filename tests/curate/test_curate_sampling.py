"""Rejection sampling as pure functions: pass@k, keep one/all, drop all-fail/all-pass prompts."""

import pytest

from stillroom.curate import ConfigError, SamplingConfig, pass_at_k, select_samples


def test_pass_at_k_matches_the_codex_estimator():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(8, 2, 4) == pytest.approx(1 - 15 / 70)
    with pytest.raises(ConfigError):
        pass_at_k(2, 1, 3)


KEYS = ["a", "a", "a", "b", "b", "c", "c"]
OK = [True, False, True, False, False, True, True]
IDS = ["a0", "a1", "a2", "b0", "b1", "c0", "c1"]


def test_keep_all_verified_and_drop_all_fail():
    drops, stats = select_samples(KEYS, OK, SamplingConfig(keep="all"), IDS)
    assert sorted(i for i in range(7) if i not in drops) == [0, 2, 5, 6]
    assert drops[1].stage == "verify"
    assert drops[3].reason == "every sample failed (0/2)"
    assert stats["a"].pass_rate == pytest.approx(2 / 3) and stats["a"].pass_at[1] == pytest.approx(
        2 / 3
    )
    assert 4 not in stats["a"].pass_at  # pass@4 needs 4 samples


def test_keep_one_names_the_kept_sample():
    drops, _ = select_samples(KEYS, OK, SamplingConfig(keep="one"), IDS)
    assert sorted(i for i in range(7) if i not in drops) == [0, 5]
    assert drops[2].matched == "a0" and drops[6].matched == "c0"


def test_drop_all_pass_and_keep_all_fail_when_asked():
    drops, _ = select_samples(KEYS, OK, SamplingConfig(drop_all_pass=True, drop_all_fail=False))
    assert drops[5].reason.startswith("every sample passed")
    assert drops[3].stage == "verify"  # still failed, just not filtered as a prompt


def test_bad_config():
    with pytest.raises(ConfigError):
        SamplingConfig(keep="best")
    with pytest.raises(ConfigError):
        select_samples(["a"], [True, False])
