"""The LLM judge: a verifier that asks a model whether an answer agrees with its reference.

This module owns the grading prompt (:data:`JUDGE_TEMPLATE`) and the one parser of the
judge's reply (:func:`read_verdict`): the last ``VERDICT: PASS`` / ``VERDICT: FAIL`` line
decides, and a reply without one fails closed. Two judges use them:

- :class:`JudgeVerifier` takes any callable ``ask(prompt) -> str`` (a local model, a test);
- :class:`HarvestJudge` (``--verifier judge``) asks a teacher through harvest itself. Curation
  hands it every (question, answer, reference) triple still to judge (``prepare``); it renders each
  grading prompt and runs them as one harvest run into its own DuckDB file (``db``, never
  the harvest being curated), so harvest's policy check, pacing, retries, idempotency keys
  and resume apply unchanged. The judge's policy is checked with ``purpose`` (default
  ``evaluation``) and ``accept`` before any request leaves: a policy that forbids the use
  raises :class:`stillroom.policies.PolicyRefused` and nothing is sent. A killed or stopped judging
  run resumes on the next curation without asking again what was stored (harvest skips the
  stored keys); a run that stopped with pairs unanswered raises :class:`JudgeIncompleteError`
  before any verdict is made. The replies are read back by harvest's own idempotency key
  (``stillroom.harvest.read_completions``); a request harvest recorded as failed fails closed, with
  harvest's reason.

The template shows the judge the question, so an answer that is right for another question
(its final number happens to equal the reference) can be failed. A verdict's version is
``2:MODEL``: the judge model is part of who judged, and ``2`` is the template with the question
(version 1 showed only reference and answer; its stored verdicts are not reused).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stillroom.curate._verdict import Verdict, Verifier, failed, passed
from stillroom.curate.errors import JudgeIncompleteError

JUDGE_TEMPLATE = """You are grading an answer to a question against a reference answer.
Question:
{prompt}

Reference answer:
{reference}

Answer to grade:
{answer}

Is the answer a correct answer to this question, and consistent with the reference? Reply with
one short reason, then a last line that is exactly `VERDICT: PASS` or `VERDICT: FAIL`."""

_VERDICT = re.compile(r"VERDICT:\s*(PASS|FAIL)\b", re.IGNORECASE)


def read_verdict(verifier: Verifier, reply: str, judge_model: str) -> Verdict:
    """The verdict in a judge's ``reply``: its last ``VERDICT:`` line; none fails closed."""
    found = _VERDICT.findall(reply)
    if not found:
        return failed(verifier, f"judge {judge_model} gave no VERDICT line", reply[-200:])
    if found[-1].upper() == "PASS":
        return passed(verifier, reply[-200:])
    reason = reply.strip().splitlines()[0][:200]
    return failed(verifier, f"judge {judge_model}: {reason}", reply[-200:])


@dataclass(frozen=True)
class JudgeVerifier:
    """``ask`` sends one prompt to the judge model and returns its reply text."""

    ask: Callable[[str], str]
    judge_model: str
    template: str = JUDGE_TEMPLATE
    name: str = "judge"
    version: str = "2"

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict:
        reply = self.ask(self.template.format(prompt=prompt, reference=reference, answer=answer))
        return read_verdict(self, reply, self.judge_model)


@dataclass
class HarvestJudge:
    """A judge asked through a harvest run: the teacher's endpoint, model and policy, and
    the DuckDB file its replies go to. The limits are harvest's (``rpm``, ``tpm``, ``rpd``,
    ``concurrency``); ``temperature`` 0 so that asking again would give the same verdict."""

    db: str | Path
    base_url: str
    model: str
    policy: str | None = None
    accept: Sequence[str] = ()
    purpose: str | None = "evaluation"
    api_key_env: str = "OPENAI_API_KEY"
    rpm: int | None = None
    tpm: int | None = None
    rpd: int | None = None
    concurrency: int = 8
    max_tokens: int = 256
    temperature: float = 0.0
    template: str = JUDGE_TEMPLATE
    progress: bool = False
    name: str = "judge"
    replies: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    failures: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    requests: int = field(default=0, init=False)

    @property
    def version(self) -> str:
        return f"2:{self.model}"

    def identity(self) -> dict[str, Any]:
        """What makes two judges' verdicts the same (not limits, files or acceptance)."""
        return {
            "base_url": self.base_url,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "template": self.template,
        }

    def _messages(self, prompt: str, answer: str, reference: Any) -> list[dict[str, str]]:
        text = self.template.format(prompt=prompt, reference=reference, answer=answer)
        return [{"role": "user", "content": text}]

    def _config(self, prompts: list[dict[str, Any]]) -> Any:
        from stillroom.harvest import HarvestConfig

        return HarvestConfig(
            prompts=prompts, db=Path(self.db), base_url=self.base_url, model=self.model,
            policy=self.policy, accept=tuple(self.accept), purpose=self.purpose,
            api_key_env=self.api_key_env, rpm=self.rpm, tpm=self.tpm, rpd=self.rpd,
            concurrency=self.concurrency, max_tokens=self.max_tokens,
            temperature=self.temperature,
        )  # fmt: skip

    def prepare(self, triples: Sequence[tuple[str, str, Any]]) -> None:
        """Ask the judge about every ``(prompt, answer, reference)`` triple not yet in ``db``,
        as one harvest run, then read every triple's reply (or harvest's failure) back."""
        from stillroom.harvest import run_harvest
        from stillroom.harvest._prompts import messages_hash

        prompts = list(
            {
                messages_hash(m): {"id": messages_hash(m), "messages": m}
                for m in (self._messages(q, a, r) for q, a, r in triples)
            }.values()
        )
        if not prompts:
            return
        cfg = self._config(prompts)
        result = run_harvest(cfg, progress=self.progress)
        self.requests += result.requests
        if result.pending:
            raise JudgeIncompleteError(
                f"judging stopped with {result.pending} of {result.planned} grading prompts "
                f"unanswered ({result.message or result.stopped_reason}); the {result.completed}"
                f" replies are stored in {self.db}: run the same command again to resume"
            )
        self._read_back(cfg)

    def _read_back(self, cfg: Any) -> None:
        from stillroom.harvest import read_completions
        from stillroom.harvest._completions import connect
        from stillroom.harvest._work import plan_config

        keys = {i.key: i.prompt_id for i in plan_config(cfg)}
        for row in read_completions(
            self.db, {"idempotency_key": list(keys)}, order_by=(), with_logprobs=False
        ):
            self.replies[keys[row.idempotency_key]] = row.content or ""
        con = connect(self.db, read_only=True)
        try:
            marks = ", ".join("?" for _ in keys)
            for key, reason in con.execute(
                f"SELECT idempotency_key, reason FROM failures WHERE idempotency_key IN ({marks})",
                list(keys),
            ).fetchall():
                self.failures[keys[key]] = str(reason)
        finally:
            con.close()

    def verify(self, prompt: str, answer: str, reference: Any) -> Verdict:
        """The verdict on one answer from its stored reply (``prepare`` asks for it first)."""
        from stillroom.harvest._prompts import messages_hash

        pid = messages_hash(self._messages(prompt, answer, reference))
        if pid not in self.replies and pid not in self.failures:
            self.prepare([(prompt, answer, reference)])
        if pid in self.replies:
            return read_verdict(self, self.replies[pid], self.model)
        why = self.failures.get(pid, "no reply stored")
        return failed(self, f"judge {self.model}: request failed ({why[:160]})")
