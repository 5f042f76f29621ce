"""The student's side of on-policy distillation: render, sample, score its own tokens, and
save/restore the whole training state (adapter weights, optimiser, RNG) every step."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MICRO_BATCH = 4  # sequences per forward/backward (logits are [n, T, 49k] floats)


def render_student(tokenizer: Any, messages: Sequence[dict[str, Any]]) -> list[int]:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def teacher_messages(messages: Sequence[dict[str, Any]], system: str | None) -> list[dict]:
    """The teacher's conversation: ``system`` prepended (merged with a system message)."""
    if system is None:
        return list(messages)
    rest = [dict(m) for m in messages]
    if rest and rest[0]["role"] == "system":
        return [{"role": "system", "content": f"{system}\n\n{rest[0]['content']}"}, *rest[1:]]
    return [{"role": "system", "content": system}, *rest]


def render_teacher(tokenizer: Any, messages: Sequence[dict[str, Any]]) -> tuple[str, list[int]]:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return text, list(tokenizer(text, add_special_tokens=False)["input_ids"])


def sample_seed(*parts: Any) -> int:
    return int(hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def sample(
    model: Any,
    tokenizer: Any,
    prompt_ids: list[int],
    *,
    k: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> list[list[int]]:
    """``k`` completions at ``temperature`` with no top-k/top-p, cut after the first EOS."""
    import torch
    from transformers import GenerationConfig

    eos = tokenizer.eos_token_id
    gen = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        num_return_sequences=k,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos,
    )
    torch.manual_seed(seed)
    ids = torch.tensor([prompt_ids], device=model.device)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gen
        )
    completions = []
    for row in out[:, len(prompt_ids) :].tolist():
        cut = row.index(eos) + 1 if eos in row else len(row)
        completions.append(row[:cut])
    return completions


def _batch(seqs: Sequence[tuple[list[int], list[int]]], pad: int, device: Any) -> tuple[Any, Any]:
    """Right-padded ids and attention mask, on ``device``."""
    import torch

    width = max(len(p) + len(c) for p, c in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    att = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (p, c) in enumerate(seqs):
        n = len(p) + len(c)
        ids[i, :n] = torch.tensor(p + c)
        att[i, :n] = 1
    return ids.to(device), att.to(device)


def completion_logprobs(model: Any, pad: int, seqs: Sequence[tuple[list[int], list[int]]]):
    """Per completion token log pi(y_t), one list per sequence (no gradient)."""
    import torch

    from stillroom.train._onpolicy_loss import token_logprobs

    out: list[list[float]] = []
    for i in range(0, len(seqs), MICRO_BATCH):
        chunk = seqs[i : i + MICRO_BATCH]
        ids, att = _batch(chunk, pad, model.device)
        with torch.no_grad():
            lp = token_logprobs(model(input_ids=ids, attention_mask=att).logits[:, :-1], ids[:, 1:])
        for row, (p, c) in zip(lp, chunk, strict=True):
            out.append(row[len(p) - 1 : len(p) + len(c) - 1].tolist())
    return out


def train_step(
    model: Any,
    optimizer: Any,
    pad: int,
    seqs: Sequence[tuple[list[int], list[int]]],
    teacher: Sequence[Sequence[float | None]],
    kl_coef: float,
) -> dict[str, float]:
    """One optimiser step of the on-policy loss over all ``seqs``; the sampled reverse KL."""
    import torch

    from stillroom.train._onpolicy_loss import onpolicy_loss, token_logprobs

    total = sum(v is not None for row in teacher for v in row)
    optimizer.zero_grad(set_to_none=True)
    kl_sum, loss_sum = 0.0, 0.0
    for i in range(0, len(seqs), MICRO_BATCH):
        chunk, scores = seqs[i : i + MICRO_BATCH], teacher[i : i + MICRO_BATCH]
        ids, att = _batch(chunk, pad, model.device)
        # position t of the logits predicts token t + 1: completion token j sits at len(p)-1+j
        lt = torch.zeros((len(chunk), ids.shape[1] - 1))
        mask = torch.zeros_like(lt)
        for r, ((p, c), row) in enumerate(zip(chunk, scores, strict=True)):
            for t, v in enumerate(row[: len(c)]):
                if v is not None:
                    lt[r, len(p) - 1 + t] = v
                    mask[r, len(p) - 1 + t] = 1
        lt, mask = lt.to(ids.device), mask.to(ids.device)
        lp = token_logprobs(model(input_ids=ids, attention_mask=att).logits[:, :-1], ids[:, 1:])
        # normalise by the whole batch's token count: sum over micro-batches = the full loss
        loss = onpolicy_loss(lp, lp.detach(), lt, mask, kl_coef) * mask.sum() / max(total, 1)
        if mask.sum() > 0:
            loss.backward()
        kl_sum += float(((lp.detach() - lt) * mask).sum())
        loss_sum += float(loss.detach())
    optimizer.step()
    return {"reverse_kl": kl_sum / max(total, 1), "loss": loss_sum, "tokens": total}


# -- state ---------------------------------------------------------------------------------
def save_state(out: Path, model: Any, optimizer: Any, progress: dict[str, Any]) -> None:
    """Write ``out/state`` atomically: trainable weights, optimiser, RNG, progress."""
    import numpy as np
    import torch

    tmp, final, old = out / "state.tmp", out / "state", out / "state.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    torch.save(weights, tmp / "weights.pt")
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    rng = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": np.random.get_state(),
    }
    torch.save(rng, tmp / "rng.pt")
    (tmp / "progress.json").write_text(json.dumps(progress, indent=1) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def load_state(out: Path, model: Any, optimizer: Any) -> dict[str, Any] | None:
    """Restore the newest complete state; its progress, or None for a fresh run."""
    import numpy as np
    import torch

    for where in (out / "state", out / "state.old"):
        if (where / "progress.json").is_file():
            break
    else:
        return None
    weights = torch.load(where / "weights.pt", weights_only=True)
    missing = set(weights) - {n for n, _ in model.named_parameters()}
    if missing:
        from stillroom.train.errors import TrainConfigError

        raise TrainConfigError(
            f"{where}: saved weights do not fit this model ({len(missing)} names)"
        )
    model.load_state_dict(weights, strict=False)
    optimizer.load_state_dict(torch.load(where / "optimizer.pt", weights_only=True))
    rng = torch.load(where / "rng.pt", weights_only=False)
    torch.set_rng_state(rng["torch"])
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    return json.loads((where / "progress.json").read_text())
