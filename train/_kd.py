"""Sparse knowledge distillation from stored API top-k logprobs.

An API gives, per generated token, the sampled token and up to ~20 alternatives with
logprobs, as strings or bytes (negligible ones as a ``-9999`` sentinel). Here they are
mapped onto the student: teacher tokens are aligned to the student's completion tokens by
their bytes (difflib matching blocks over the two token-bytes sequences), each alternative
becomes a student token id when its bytes are exactly one student token, and the mass that
does not map (plus what lies beyond the top-k) is a tail bucket. The loss at a position is

    KL(q || p) = sum_k q_k log(q_k / p_k) + q_tail log(q_tail / p_tail)

with ``q`` the teacher's top-k (renormalised when its mass exceeds one) and ``p`` the
student's softmax on the same ids, ``p_tail = 1 - sum_k p_k``. Each row's loss is
``(1 - alpha) * CE + alpha * mean KL`` when the row has mapped positions, CE alone if not.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from stillroom._core import byte_decoder

SENTINEL_LOGPROB = -9000.0  # APIs report negligible alternatives as -9999 (or lower)
KD_COLUMNS = ("kd_pos", "kd_ids", "kd_q")


def _is_byte_level(tokenizer: Any) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    if decoder is not None and "ByteLevel" in repr(decoder):
        return True
    vocab = tokenizer.get_vocab()
    return sum(1 for t in vocab if t.startswith("Ġ")) > 0.01 * max(len(vocab), 1)


def token_bytes_table(tokenizer: Any) -> list[bytes | None]:
    """The bytes each student token id stands for (``None`` where it cannot be known)."""
    n = len(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    table: list[bytes | None] = []
    if _is_byte_level(tokenizer):
        dec = byte_decoder()
        for piece in pieces:
            if piece is None:
                table.append(None)
            elif piece in special or not all(ch in dec for ch in piece):
                table.append(piece.encode())
            else:
                table.append(bytes(dec[ch] for ch in piece))
        return table
    for piece in pieces:  # SentencePiece style: ▁ is a space, <0xNN> a raw byte
        if piece is None:
            table.append(None)
        elif len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            table.append(bytes([int(piece[3:5], 16)]))
        else:
            table.append(piece.replace("▁", " ").encode())
    return table


def bytes_lookup(table: Sequence[bytes | None]) -> dict[bytes, int]:
    lookup: dict[bytes, int] = {}
    for idx, b in enumerate(table):
        if b and b not in lookup:
            lookup[b] = idx
    return lookup


def _entry_bytes(entry: dict[str, Any]) -> bytes:
    raw = entry.get("bytes")
    if raw:
        return bytes(int(x) & 0xFF for x in raw)
    return str(entry.get("token", "")).encode()


@dataclass(frozen=True)
class KDTargets:
    """Per-row KD targets: label positions, student ids and teacher probs at each."""

    positions: list[int]
    ids: list[list[int]]
    probs: list[list[float]]

    def as_columns(self) -> dict[str, Any]:
        return {"kd_pos": self.positions, "kd_ids": self.ids, "kd_q": self.probs}


def _teacher_distribution(entry: dict[str, Any], lookup: dict[bytes, int]) -> dict[int, float]:
    alts = list(entry.get("top_logprobs") or [])
    alts.append({k: entry.get(k) for k in ("token", "logprob", "bytes")})
    dist: dict[int, float] = {}
    for alt in alts:
        lp = alt.get("logprob")
        if lp is None or not math.isfinite(lp) or lp <= SENTINEL_LOGPROB:
            continue
        sid = lookup.get(_entry_bytes(alt))
        if sid is not None:
            dist[sid] = max(dist.get(sid, 0.0), math.exp(min(lp, 0.0)))
    total = sum(dist.values())
    if total > 1.0:  # rounding in the API's logprobs: renormalise, no tail
        dist = {k: v / total for k, v in dist.items()}
    return dist


def align_targets(
    input_ids: Sequence[int],
    labels: Sequence[int],
    teacher: Sequence[dict[str, Any]] | None,
    table: Sequence[bytes | None],
    lookup: dict[bytes, int],
) -> KDTargets:
    """Map a row's teacher tokens onto its student label positions (unmappable ones skipped)."""
    if not teacher:
        return KDTargets([], [], [])
    positions = [i for i, lab in enumerate(labels) if lab != -100 and i > 0]
    student = [table[input_ids[i]] or b"\x00<unknown>" for i in positions]
    teacher_bytes = [_entry_bytes(t) for t in teacher]
    matcher = difflib.SequenceMatcher(None, teacher_bytes, student, autojunk=False)
    out = KDTargets([], [], [])
    for block in matcher.get_matching_blocks():
        for t in range(block.size):
            pos = positions[block.b + t]
            dist = _teacher_distribution(teacher[block.a + t], lookup)
            if input_ids[pos] not in dist:  # the sampled token must be among the targets
                continue
            out.positions.append(pos)
            out.ids.append(list(dist))
            out.probs.append(list(dist.values()))
    return out


def add_kd_columns(dataset: Any, tokenizer: Any) -> tuple[Any, int]:
    """Add ``kd_pos``/``kd_ids``/``kd_q`` to a tokenized dataset; return it and the mapped count."""
    table = token_bytes_table(tokenizer)
    lookup = bytes_lookup(table)

    def fn(example: dict[str, Any]) -> dict[str, Any]:
        raw = example.get("teacher_logprobs")
        teacher = json.loads(raw) if raw else None
        return align_targets(
            example["input_ids"], example["labels"], teacher, table, lookup
        ).as_columns()

    dataset = dataset.map(fn, desc="Mapping teacher logprobs onto student tokens")
    mapped = sum(len(p) for p in dataset["kd_pos"])
    return dataset, mapped


class KDCollator:
    """Wraps TRL's collator; pads the KD columns into ``[B, P]`` / ``[B, P, K]`` tensors."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        kd = [{k: ex.pop(k, []) for k in KD_COLUMNS} for ex in examples]
        batch = self.inner(examples)
        n_pos = max((len(r["kd_pos"]) for r in kd), default=0)
        n_k = max((len(ids) for r in kd for ids in r["kd_ids"]), default=0)
        pos = torch.full((len(kd), max(n_pos, 1)), -1, dtype=torch.long)
        ids = torch.zeros((len(kd), max(n_pos, 1), max(n_k, 1)), dtype=torch.long)
        q = torch.zeros((len(kd), max(n_pos, 1), max(n_k, 1)), dtype=torch.float32)
        for b, row in enumerate(kd):
            for j, (p, row_ids, row_q) in enumerate(
                zip(row["kd_pos"], row["kd_ids"], row["kd_q"], strict=True)
            ):
                pos[b, j] = p
                ids[b, j, : len(row_ids)] = torch.tensor(row_ids, dtype=torch.long)
                q[b, j, : len(row_q)] = torch.tensor(row_q, dtype=torch.float32)
        batch.update(kd_pos=pos, kd_ids=ids, kd_q=q)
        return batch


def sparse_kd_loss(logits: Any, kd_pos: Any, kd_ids: Any, kd_q: Any) -> tuple[Any, Any]:
    """Per-row mean KL over mapped positions and the per-row count of mapped positions.

    ``logits`` ``[B, T, V]``; ``kd_pos`` ``[B, P]`` label positions (-1 = padding); the
    distribution predicting position ``p`` is ``logits[:, p - 1]``.
    """
    import torch

    valid = kd_pos > 0
    gather_at = (kd_pos - 1).clamp(min=0)
    row_logits = logits.gather(1, gather_at.unsqueeze(-1).expand(-1, -1, logits.size(-1)))
    logp_all = torch.log_softmax(row_logits.float(), dim=-1)  # [B, P, V]
    logp = logp_all.gather(-1, kd_ids)  # [B, P, K]
    has_q = kd_q > 0
    q_tail = (1.0 - kd_q.sum(-1)).clamp(min=0.0)
    p_mass = (logp.exp() * has_q).sum(-1).clamp(max=1.0 - 1e-6)
    log_p_tail = torch.log1p(-p_mass)
    q_safe = torch.where(has_q, kd_q, torch.ones_like(kd_q))
    kl_top = (kd_q * (torch.log(q_safe) - logp) * has_q).sum(-1)
    kl_tail = torch.where(
        q_tail > 0, q_tail * (torch.log(q_tail.clamp(min=1e-12)) - log_p_tail), 0.0
    )
    kl = (kl_top + kl_tail) * valid
    count = valid.sum(-1)
    return kl.sum(-1) / count.clamp(min=1), count


@lru_cache(maxsize=1)
def kd_trainer_class() -> type:
    """``SFTTrainer`` with the sparse-KD term in ``compute_loss`` (built lazily: needs trl)."""
    import torch
    from trl import SFTTrainer

    class KDSFTTrainer(SFTTrainer):
        """SFTTrainer whose training loss mixes per-row CE with sparse KD on stored logprobs."""

        kd_alpha: float = 0.0

        def _set_signature_columns_if_needed(self) -> None:
            super()._set_signature_columns_if_needed()
            self._signature_columns = list(self._signature_columns) + list(KD_COLUMNS)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            kd = {k: inputs.pop(k) for k in KD_COLUMNS if k in inputs}
            if not kd or not model.training or self.kd_alpha <= 0:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"]
            fwd = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**fwd, use_cache=False)
            logits = outputs.logits
            shift_labels = labels[:, 1:]
            ce = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().transpose(1, 2),
                shift_labels,
                ignore_index=-100,
                reduction="none",
            )
            mask = shift_labels != -100
            row_ce = (ce * mask).sum(1) / mask.sum(1).clamp(min=1)
            row_kd, count = sparse_kd_loss(logits, kd["kd_pos"], kd["kd_ids"], kd["kd_q"])
            mixed = (1 - self.kd_alpha) * row_ce + self.kd_alpha * row_kd
            loss = torch.where(count > 0, mixed, row_ce).mean()
            if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
                loss = loss / self.current_gradient_accumulation_steps  # Trainer will not
            self._record_kd(row_ce, row_kd, count, inputs)
            return (loss, outputs) if return_outputs else loss

        def _record_kd(self, row_ce, row_kd, count, inputs) -> None:
            metrics = self._metrics["train"]
            with_kd = count > 0
            metrics["ce_loss"].append(row_ce.detach().mean().item())
            if bool(with_kd.any()):
                metrics["kd_loss"].append(row_kd.detach()[with_kd].mean().item())
            metrics["kd_positions"].append(float(count.sum().item()))
            if "attention_mask" in inputs:
                self._total_train_tokens += int(inputs["attention_mask"].sum().item())
            metrics["num_tokens"] = [self._total_train_tokens]

    return KDSFTTrainer
