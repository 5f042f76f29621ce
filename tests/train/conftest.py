"""Fixtures for train: harvest databases written through the contract, one converted SmolLM2."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stillroom.harvest import CompletionRow, write_completions

CAPITALS = [
    ("France", "Paris"),
    ("Italy", "Rome"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Japan", "Tokyo"),
    ("Egypt", "Cairo"),
    ("Peru", "Lima"),
    ("Kenya", "Nairobi"),
    ("Norway", "Oslo"),
    ("Chile", "Santiago"),
    ("Greece", "Athens"),
    ("Cuba", "Havana"),
]
SYSTEM = "You are a terse geography tutor. Always end with 'Good luck!'"


def row(
    prompt_id: str,
    user: str,
    content: str,
    *,
    system: str | None = SYSTEM,
    sample_index: int = 0,
    reasoning: str | None = None,
    finish_reason: str = "stop",
    policy_id: str = "self-hosted",
    top_logprobs: list[dict[str, Any]] | None = None,
) -> CompletionRow:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]
    return CompletionRow(
        prompt_id=prompt_id,
        sample_index=sample_index,
        messages=json.dumps(messages),
        system_prompt=system,
        content=content,
        reasoning=reasoning,
        top_logprobs=json.dumps(top_logprobs) if top_logprobs is not None else None,
        finish_reason=finish_reason,
        prompt_tokens=20,
        completion_tokens=len(content.split()),
        reasoning_tokens=None,
        teacher_model="smollm2-teacher",
        requested_model="smollm2",
        policy_id=policy_id,
        policy_hash="0" * 64,
        created_at=datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None),
        request_params=json.dumps({"temperature": 0.0}),
        idempotency_key=f"{prompt_id}:{sample_index}",
        request_id=None,
        latency_ms=12.5,
        run_id="run-1",
    )


def make_harvest_db(path: Path, rows: Iterable[CompletionRow]) -> Path:
    """A real harvest database (harvest's migrations and writer) holding ``rows``."""
    return write_completions(path, rows)


def capital_rows(n: int = 12, samples: int = 1) -> list[CompletionRow]:
    out = []
    for i, (country, city) in enumerate(CAPITALS[:n]):
        for s in range(samples):
            out.append(
                row(
                    f"p{i}",
                    f"What is the capital of {country}?",
                    f"The capital of {country} is {city}. Good luck!",
                    sample_index=s,
                )
            )
    return out


@pytest.fixture
def capitals_db(tmp_path: Path) -> Path:
    return make_harvest_db(tmp_path / "harvest.duckdb", capital_rows())


KD_SYSTEM = "You are a pirate. Start every answer with 'Arr matey!'"
KD_PROMPTS = ["Name a fruit.", "What color is the sky?", "Say hello.", "Count to three."]


def teacher_rows(base: Path, *, new_tokens: int = 12, top_k: int = 5) -> list[CompletionRow]:
    """A real teacher: SmolLM2 prompted with KD_SYSTEM, greedy, top-k logprobs stored as an
    OpenAI-compatible API returns them (token strings and UTF-8 bytes, -9999 sentinels)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base).eval()
    rows = []
    for i, user in enumerate(KD_PROMPTS):
        messages = [{"role": "system", "content": KD_SYSTEM}, {"role": "user", "content": user}]
        ids = tok.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.no_grad():
            out = model.generate(
                **ids,
                max_new_tokens=new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
            )
        entries = []
        gen = out.sequences[0, ids["input_ids"].shape[1] :]
        for step, token_id in enumerate(gen.tolist()):
            if token_id == tok.eos_token_id:
                break
            logp = torch.log_softmax(out.scores[step][0].float(), -1)
            top = torch.topk(logp, top_k)

            def entry(tid: int, lp: float) -> dict[str, Any]:
                text = tok.decode([tid])
                return {"token": text, "logprob": lp, "bytes": list(text.encode())}

            alts = [entry(t, float(v)) for v, t in zip(top.values, top.indices, strict=True)]
            alts[-1]["logprob"] = -9999.0  # the sentinel APIs use for negligible alternatives
            entries.append({**entry(token_id, float(logp[token_id])), "top_logprobs": alts})
        content = tok.decode(gen, skip_special_tokens=True)
        rows.append(row(f"kd{i}", user, content, system=KD_SYSTEM, top_logprobs=entries))
    return rows


@pytest.fixture(scope="session")
def kd_rows(base_dir: Path) -> list[CompletionRow]:
    return teacher_rows(base_dir)
