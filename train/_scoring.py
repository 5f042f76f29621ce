"""The scoring client: a teacher's log-probability of every token of the student's samples.

The request is harvest's ``scoring`` dialect (``dialect_for("scoring")``: the OpenAI legacy
``POST /v1/completions`` with ``echo`` + ``logprobs``; it builds the body, parses the echo,
aligns it by ``text_offset``, classifies errors, reads rate-limit headers and makes the
idempotency key). ``prompt`` is a list of token ids where the server accepts them (vLLM,
stillroom's embedded teacher), else the rendered text.

Every request goes through harvest's public machinery: the caller resolves the policy first
(:func:`stillroom.policies.resolve_for_harvest`), and :class:`ScoringClient` paces with
:class:`~stillroom.harvest.RateLimiter` (learning from the teacher's headers with the
dialect's ``limits``), retries with :func:`~stillroom.harvest.retrying`, stops at
:class:`~stillroom.harvest.Caps` and sends an ``Idempotency-Key`` over (teacher, rendered
text). This module adds only what needs the student's tokenizer: where each token starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx

from stillroom.harvest import (
    Caps,
    NoPromptLogprobs,
    PermanentError,
    RateLimiter,
    RequestOptions,
    ScoringEcho,
    TransientError,
    dialect_for,
    retrying,
)
from stillroom.train.errors import (
    TeacherNoLogprobs,
    TeacherScoringError,
    TeacherTokenizerMismatch,
)

PROBE_TEXT = "Ahoy! Naïve café, 東京 — 42 ✓ «quoted»\n"
SCORING = dialect_for("scoring")
_OPTIONS = RequestOptions(max_tokens=1, temperature=0.0)


def scoring_key(teacher: str, rendered: str | Sequence[int]) -> str:
    """The idempotency key of one scoring request (the dialect's, over teacher and text/ids)."""
    return SCORING.key(teacher, rendered)  # type: ignore[attr-defined]


def batch_key(keys: Sequence[str]) -> str:
    """The idempotency key of one request scoring several sequences: over their own keys."""
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def parse_echo(reply: Any, where: str) -> ScoringEcho:
    """The dialect's parse; a reply without logprobs is :class:`TeacherNoLogprobs`."""
    try:
        return SCORING.parse(reply, None, where)  # type: ignore[call-arg,return-value]
    except NoPromptLogprobs as exc:
        raise TeacherNoLogprobs(f"{exc}; it cannot score the student's samples") from exc


def decode_starts(tokenizer: Any, ids: Sequence[int], offset: int = 0) -> list[int]:
    """Each token's character start, as servers compute ``text_offset``: the length of the
    decoded text before it (a trailing partial UTF-8 character does not count, as with
    llama-cpp-python's ``errors="ignore"``)."""
    out = []
    for i in range(len(ids)):
        before = tokenizer.decode(list(ids[:i]), skip_special_tokens=False)
        out.append(offset + len(before.rstrip("\ufffd")))
    return out


def token_starts(tokenizer: Any, text: str) -> tuple[list[int], list[int]]:
    """The student's own tokenisation of ``text``: ids and each token's character start."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids, decode_starts(tokenizer, ids)


class ScoringClient:
    """Scores texts or token ids at one teacher; counts requests and prompt tokens.

    ``http`` is an ``httpx.AsyncClient`` (inject a transport in tests); ``sleep`` and ``rng``
    drive the retry waits (tests never sleep). Synchronous methods run on a private loop.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        http: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        caps: Caps | None = None,
        api_key: str | None = None,
        max_attempts: int = 5,
        max_wait: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.teacher = f"{self.base_url}|{model}"
        self._loop = asyncio.new_event_loop()
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0))
        self.limiter = limiter or RateLimiter(sleep=sleep, read=SCORING.limits)
        self.caps = caps
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_attempts, self.max_wait, self.sleep = max_attempts, max_wait, sleep
        self.rng = rng or random.Random(0)
        self.requests = 0
        self.prompt_tokens = 0
        self.accepts_ids: bool | None = None

    def close(self) -> None:
        self._loop.run_until_complete(self.http.aclose())
        self._loop.close()

    # -- one request --------------------------------------------------------------------
    def request(self, prompt: str | Sequence[int] | Sequence[Sequence[int]], key: str) -> Any:
        return self._loop.run_until_complete(self._request(prompt, key))

    async def _request(self, prompt: str | Sequence[Any], key: str) -> Any:
        if self.caps is not None and self.caps.daily_cap_reached():
            raise TeacherScoringError(self.caps.daily_cap_message())
        wire = SCORING.build(self.model, [{"role": "user", "content": prompt}], _OPTIONS)
        if isinstance(prompt, str):
            cost = len(prompt) / 4
        else:
            cost = sum(len(p) if isinstance(p, Sequence) else 1 for p in prompt)
        async for attempt in retrying(
            max_attempts=self.max_attempts, max_wait=self.max_wait, sleep=self.sleep, rng=self.rng
        ):
            with attempt:
                reply = await self._send(wire.path, wire.body, key, cost)
        if self.caps is not None:
            self.caps.requests_today += 1
            self.caps.settle(0.0, int((reply.get("usage") or {}).get("prompt_tokens") or 0), 1)
        return reply

    async def _send(self, path: str, body: dict[str, Any], key: str, cost: float) -> Any:
        ticket = await self.limiter.acquire(cost)
        try:
            resp = await self.http.post(
                f"{self.base_url}{path}",
                json=body,
                headers={**self.headers, "Idempotency-Key": key},
            )
        except httpx.TransportError as exc:
            self.limiter.observe(ticket, {})
            raise TransientError(f"connection: {type(exc).__name__}: {exc}") from exc
        self.limiter.observe(ticket, resp.headers)
        self.requests += 1
        status = resp.status_code
        if status >= 400:
            verdict = SCORING.classify(status, resp.content, resp.headers)
            if verdict.kind == "rate_limited":
                self.limiter.rate_limited(verdict.retry_after)
                raise TransientError(verdict.message, status, verdict.retry_after, True)
            if verdict.kind == "retry":
                raise TransientError(verdict.message, status, verdict.retry_after)
            if verdict.kind == "auth":
                raise TeacherScoringError(f"{self.base_url}: {verdict.message}")
            raise PermanentError(verdict.message, status)
        reply = resp.json()
        self.prompt_tokens += int((reply.get("usage") or {}).get("prompt_tokens") or 0)
        return reply

    # -- the up-front checks ---------------------------------------------------------------
    def probe(self, tokenizer: Any) -> dict[str, Any]:
        """Refuse a teacher without prompt logprobs or with another tokenizer; learn whether
        it takes token ids. Two requests; raises before any scoring request."""
        ids, starts = token_starts(tokenizer, PROBE_TEXT)
        where = f"teacher {self.model!r} at {self.base_url}"
        try:
            reply = self.request(PROBE_TEXT, scoring_key(self.teacher, PROBE_TEXT))
        except PermanentError as exc:
            raise TeacherNoLogprobs(
                f"{where} refused a /v1/completions echo+logprobs probe ({exc.reason}); closed "
                "APIs return no log-probabilities of a given text"
            ) from exc
        echo = parse_echo(reply, where)
        theirs = [o for o in echo.text_offset if o < len(PROBE_TEXT)]
        mismatches = sum(a != b for a, b in zip(theirs, starts, strict=False)) + abs(
            len(theirs) - len(starts)
        )
        if mismatches:
            raise TeacherTokenizerMismatch(
                f"{where} tokenises the probe text {PROBE_TEXT!r} into {len(theirs)} tokens, the "
                f"student into {len(starts)} ({mismatches} token boundaries differ); on-policy "
                "distillation needs the same tokenizer (cross-tokenizer is not supported yet)"
            )
        try:
            by_ids = parse_echo(self.request(ids, scoring_key(self.teacher, ids)), where)
            self.accepts_ids = len(by_ids.token_logprobs) >= len(ids)
        except (PermanentError, TeacherNoLogprobs):
            self.accepts_ids = False
        return {"probe_tokens": len(ids), "mismatches": mismatches, "ids": self.accepts_ids}

    # -- scoring ---------------------------------------------------------------------------
    def rendered(
        self, tokenizer: Any, prompt_text: str, prompt_ids: Sequence[int], completion: Sequence[int]
    ) -> str | list[int]:
        """What one scoring request sends: token ids where accepted, else the text."""
        if self.accepts_ids:
            return [*prompt_ids, *completion]
        return prompt_text + tokenizer.decode(list(completion), skip_special_tokens=False)

    def key_for(
        self, tokenizer: Any, prompt_text: str, prompt_ids: Sequence[int], completion: Sequence[int]
    ) -> str:
        """The idempotency key of scoring this sample (look it up before asking)."""
        return scoring_key(
            self.teacher, self.rendered(tokenizer, prompt_text, prompt_ids, completion)
        )

    def score(
        self, tokenizer: Any, prompt_text: str, prompt_ids: Sequence[int], completion: Sequence[int]
    ) -> tuple[dict[str, Any], str]:
        """Teacher logprobs of ``completion`` after the teacher's rendered prompt.

        Returns (``{"logprobs": [...], "mismatches": n, "prompt_tokens": n}``, key).
        """
        return self.score_many(tokenizer, [(prompt_text, prompt_ids, completion)])[0]

    def score_many(
        self, tokenizer: Any, items: Sequence[tuple[str, Sequence[int], Sequence[int]]]
    ) -> list[tuple[dict[str, Any], str]]:
        """:meth:`score` of each (prompt text, prompt ids, completion), in order: one request
        for all of them where the teacher takes token ids (a list of id lists, one choice
        each; its ``Idempotency-Key`` is over the items' keys), else one request each."""
        if self.accepts_ids is None:
            raise TeacherScoringError("probe() the teacher before scoring")
        if not self.accepts_ids:
            return [self._score_text(tokenizer, *item) for item in items]
        seqs = [[*p, *c] for _, p, c in items]
        keys = [scoring_key(self.teacher, ids) for ids in seqs]
        if len(seqs) == 1:
            echoes = [parse_echo(self.request(seqs[0], keys[0]), self.base_url)]
        else:
            reply = self.request(seqs, batch_key(keys))
            try:
                echoes = SCORING.parse_all(reply, len(seqs), self.base_url)  # type: ignore[attr-defined]
            except NoPromptLogprobs as exc:
                raise TeacherNoLogprobs(f"{exc}; it cannot score the student's samples") from exc
        return [
            (
                {
                    "logprobs": echo.token_logprobs[len(p) : len(p) + len(c)],
                    "mismatches": 0,
                    "prompt_tokens": len(ids),
                },
                key,
            )
            for (_, p, c), ids, key, echo in zip(items, seqs, keys, echoes, strict=True)
        ]

    def _score_text(
        self, tokenizer: Any, prompt_text: str, prompt_ids: Sequence[int], completion: Sequence[int]
    ) -> tuple[dict[str, Any], str]:
        text = self.rendered(tokenizer, prompt_text, prompt_ids, completion)
        assert isinstance(text, str)
        key = scoring_key(self.teacher, text)
        echo = parse_echo(self.request(text, key), self.base_url)
        starts = decode_starts(tokenizer, completion, offset=len(prompt_text))
        values, missing = SCORING.align(echo, starts, len(text))  # type: ignore[attr-defined]
        return {"logprobs": values, "mismatches": missing, "prompt_tokens": echo.prompt_tokens}, key
