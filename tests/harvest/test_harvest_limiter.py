"""The rate limiter with an injected clock: every assertion is on recorded sleeps."""

from __future__ import annotations

import asyncio

import pytest

from stillroom.harvest._limiter import Bucket, RateLimiter, parse_duration, retry_after_seconds
from tests.harvest.conftest import FakeTime


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("x", None)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_retry_after_prefers_ms_and_has_no_60s_cap():
    assert retry_after_seconds({"retry-after-ms": "2500", "retry-after": "9"}) == 2.5
    assert retry_after_seconds({"retry-after": "90"}) == 90.0
    assert retry_after_seconds({}) is None


def test_bucket_refills_and_allows_one_oversized_cost():
    b = Bucket(rate=10, capacity=20, now=0.0)
    b.take(20)
    assert b.wait_time(1, now=0.0) == pytest.approx(0.1)
    assert b.wait_time(1, now=0.1) == 0.0
    # a cost above capacity waits for a full bucket, then goes negative
    assert b.wait_time(50, now=0.1) == pytest.approx((20 - 1) / 10)


def test_own_rpm_paces_after_the_burst(fake_time: FakeTime):
    limiter = RateLimiter(
        rpm=60, burst_seconds=2, learn=False, clock=fake_time.clock, sleep=fake_time.sleep
    )

    async def go():
        for _ in range(5):
            await limiter.acquire(0)

    run(go())
    assert fake_time.sleeps == [1.0, 1.0, 1.0]  # 2 burst, then one a second


def test_own_tpm_costs_prompt_plus_max_tokens_and_refunds_unused(fake_time: FakeTime):
    limiter = RateLimiter(
        tpm=6000, burst_seconds=1, learn=False, clock=fake_time.clock, sleep=fake_time.sleep
    )

    async def go():
        t1 = await limiter.acquire(100)  # bucket 100 tokens: exactly empty
        limiter.correct_tokens(100, used=40)  # 60 tokens came back
        await limiter.acquire(100)  # needs 40 more at 100/s
        return t1

    run(go())
    assert fake_time.sleeps == [pytest.approx(0.4)]


def test_headers_teach_the_limit_and_pace_from_remaining(fake_time: FakeTime):
    limiter = RateLimiter(clock=fake_time.clock, sleep=fake_time.sleep)
    headers = {
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "1.8s",
    }

    async def go():
        ticket = await limiter.acquire(10)
        limiter.observe(ticket, headers)
        for _ in range(4):
            await limiter.acquire(10)

    run(go())
    assert limiter.learned["rpm"] == 600
    # 2 remaining go at once, then one every 0.1 s (600/min)
    assert fake_time.sleeps == [pytest.approx(0.1), pytest.approx(0.1)]
    assert limiter.mirror_requests.bucket.capacity == pytest.approx(2 + 1.8 * 10)


def test_remaining_discounts_requests_sent_after_the_observed_one(fake_time: FakeTime):
    limiter = RateLimiter(clock=fake_time.clock, sleep=fake_time.sleep)

    async def go():
        first = await limiter.acquire(1)
        limiter.observe(
            first, {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "50"}
        )
        a = await limiter.acquire(1)
        await limiter.acquire(1)  # b
        # the server answered ``a`` having counted it, but not ``b`` (sent later)
        limiter.observe(
            a, {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "1"}
        )
        await limiter.acquire(1)  # level = 1 - 1 (b) = 0 -> waits one second

    run(go())
    assert fake_time.sleeps == [pytest.approx(1.0)]


def test_a_429_pauses_every_request(fake_time: FakeTime):
    limiter = RateLimiter(clock=fake_time.clock, sleep=fake_time.sleep)

    async def go():
        ticket = await limiter.acquire(1)
        limiter.observe(ticket, {})
        limiter.rate_limited(retry_after=3.0)
        await asyncio.gather(limiter.acquire(1), limiter.acquire(1))

    run(go())
    assert fake_time.sleeps == [3.0]  # one shared pause, not one per request
    assert limiter.rate_limited_count == 1


def test_first_request_probes_alone_until_an_answer(fake_time: FakeTime):
    limiter = RateLimiter(clock=fake_time.clock, sleep=fake_time.sleep)
    order = []

    async def second():
        await limiter.acquire(1)
        order.append("second")

    async def go():
        ticket = await limiter.acquire(1)
        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        order.append("observe")
        limiter.observe(ticket, {})
        await task

    run(go())
    assert order == ["observe", "second"]
