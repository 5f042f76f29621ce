"""Work items: one (prompt, sample index) pair, its exact request and its idempotency key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stillroom.harvest._dialect import RequestOptions
from stillroom.harvest._prompts import Prompt, canonical_json, load_prompts

if TYPE_CHECKING:
    from stillroom.harvest._config import HarvestConfig


@dataclass(slots=True)
class WorkItem:
    """One request to make: ``params`` are sent as-is (``model`` and ``messages`` included)."""

    key: str
    prompt_id: str
    sample_index: int
    messages: tuple[dict[str, str], ...]
    params: dict[str, Any]  # sampling params, never the key
    est_prompt_tokens: int
    messages_json: str
    params_json: str

    @property
    def system_prompt(self) -> str | None:
        first = self.messages[0]
        return first["content"] if first["role"] == "system" else None


def sampling_params(
    *,
    model: str,
    max_tokens: int,
    temperature: float,
    top_p: float | None,
    top_logprobs: int | None,
) -> dict[str, Any]:
    """The neutral request parameters (``RequestOptions.params``): keyed on, and stored
    verbatim as ``request_params``; each dialect maps them to its wire body."""
    options = RequestOptions(
        max_tokens=max_tokens, temperature=temperature, top_p=top_p, top_logprobs=top_logprobs
    )
    return options.params(model)


def estimate_tokens(messages: Sequence[dict[str, str]]) -> int:
    """A provider-independent guess: ~4 characters a token plus 4 tokens a message."""
    return sum(len(m["content"]) // 4 + 4 for m in messages) + 3


def idempotency_key(
    messages: Sequence[dict[str, str]], params: dict[str, Any], sample_index: int
) -> str:
    """sha256 over canonical messages, model, sampling params and the sample index."""
    body = canonical_json({"messages": list(messages), "params": params, "sample": sample_index})
    return hashlib.sha256(body.encode()).hexdigest()


def plan_work(prompts: Sequence[Prompt], params: dict[str, Any], samples: int) -> list[WorkItem]:
    """Every (prompt, sample) pair in input order, each with its key, each key once.

    Two prompts with different ids but the same messages make the same requests: the first
    one's items are kept (they would be asked, and stored, once anyway).
    """
    params_json = canonical_json(params)
    items = []
    keys: set[str] = set()
    for prompt in prompts:
        messages_json = json.dumps(list(prompt.messages), ensure_ascii=False)
        est = estimate_tokens(prompt.messages)
        for index in range(samples):
            key = idempotency_key(prompt.messages, params, index)
            if key in keys:
                continue
            keys.add(key)
            items.append(
                WorkItem(
                    key=key,
                    prompt_id=prompt.id,
                    sample_index=index,
                    messages=prompt.messages,
                    params=params,
                    est_prompt_tokens=est,
                    messages_json=messages_json,
                    params_json=params_json,
                )
            )
    return items


def plan_config(cfg: HarvestConfig) -> list[WorkItem]:
    """The work a harvest config asks for: its prompts (with ``cfg.system``), its neutral
    request params (``cfg.request_options()``, and the API) and ``cfg.samples`` samples
    each, every key once. Sync, batch and readers of a run's replies plan through this, so
    they agree on the keys."""
    params = cfg.request_options().params(cfg.model, cfg.api)
    return plan_work(load_prompts(cfg.prompts, system=cfg.system), params, cfg.samples)
