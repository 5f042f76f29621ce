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
SAMPLE_ROWS = 32  # sampled rows per generate call (prompts x k)


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
    """``k`` completions of one prompt (see :func:`sample_batch`)."""
    return sample_batch(
        model,
        tokenizer,
        [prompt_ids],
        k=k,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=seed,
    )[0]


def sample_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[int]],
    *,
    k: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> list[list[list[int]]]:
    """``k`` completions of each prompt at ``temperature`` with no top-k/top-p, each cut after
    its first EOS: one ``generate`` call per ``SAMPLE_ROWS`` rows (prompts left-padded), not
    one per prompt (on CPU the per-step overhead of ``generate``, not the arithmetic, was
    most of the cost). Seeded once per call from ``seed``: same prompts, same seed, same
    random numbers (the held-out metric samples base and student alike)."""
    import torch
    from transformers import GenerationConfig

    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    gen = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        num_return_sequences=k,
        pad_token_id=pad,
        eos_token_id=eos,
    )
    per_call = max(1, SAMPLE_ROWS // k)
    out: list[list[list[int]]] = []
    for start in range(0, len(prompts), per_call):
        chunk = prompts[start : start + per_call]
        width = max(len(p) for p in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        att = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, p in enumerate(chunk):
            ids[i, width - len(p) :] = torch.tensor(p)
            att[i, width - len(p) :] = 1
        torch.manual_seed(seed if start == 0 else sample_seed(seed, start))
        with torch.no_grad():
            rows = model.generate(
                input_ids=ids.to(model.device),
                attention_mask=att.to(model.device),
                generation_config=gen,
            )[:, width:].tolist()
        cut = [row[: row.index(eos) + 1] if eos in row else row for row in rows]
        out.extend(cut[i * k : (i + 1) * k] for i in range(len(chunk)))
    return out


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


def _completion_lp(model: Any, pad: int, chunk: Sequence[tuple[list[int], list[int]]]) -> Any:
    """``log pi(y_j)`` of each completion token, ``[n, C]`` (C: the longest completion; a
    shorter one's tail is padding). Logits only at completion positions (``logits_to_keep``
    with per-row positions): the vocabulary projection and log-softmax skip the prompt."""
    import torch

    from stillroom.train._onpolicy_loss import token_logprobs

    ids, att = _batch(chunk, pad, model.device)
    width, longest = ids.shape[1], max(len(c) for _, c in chunk)
    # position t of the logits predicts token t + 1: completion token j sits at len(p)-1+j
    pos = torch.tensor(
        [[min(len(p) - 1 + j, width - 2) for j in range(longest)] for p, _ in chunk],
        dtype=torch.long,
        device=ids.device,
    )
    logits = model(input_ids=ids, attention_mask=att, logits_to_keep=pos).logits
    return token_logprobs(logits, ids.gather(1, pos + 1))


def completion_logprobs(model: Any, pad: int, seqs: Sequence[tuple[list[int], list[int]]]):
    """Per completion token log pi(y_t), one list per sequence (no gradient)."""
    import torch

    out: list[list[float]] = []
    for i in range(0, len(seqs), MICRO_BATCH):
        chunk = seqs[i : i + MICRO_BATCH]
        with torch.no_grad():
            lp = _completion_lp(model, pad, chunk)
        out.extend(row[: len(c)].tolist() for row, (_, c) in zip(lp, chunk, strict=True))
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

    from stillroom.train._onpolicy_loss import onpolicy_loss

    total = sum(v is not None for row in teacher for v in row)
    optimizer.zero_grad(set_to_none=True)
    kl_sum, loss_sum = 0.0, 0.0
    for i in range(0, len(seqs), MICRO_BATCH):
        chunk, scores = seqs[i : i + MICRO_BATCH], teacher[i : i + MICRO_BATCH]
        lp = _completion_lp(model, pad, chunk)
        lt = torch.zeros(lp.shape)
        mask = torch.zeros_like(lt)
        for r, ((_, c), row) in enumerate(zip(chunk, scores, strict=True)):
            for t, v in enumerate(row[: len(c)]):
                if v is not None:
                    lt[r, t] = v
                    mask[r, t] = 1
        lt, mask = lt.to(lp.device), mask.to(lp.device)
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
