"""The on-policy distillation estimator: per-token reverse KL on the student's own samples.

For each sampled token ``y_t`` (sampled at temperature 1, no top-k/top-p truncation) the
advantage is ``A_t = -kl_coef * (log pi_old(y_t) - log p_T(y_t))``, detached, and the loss is
the importance-sampling policy-gradient loss
``-sum_t m_t * exp(log pi_theta(y_t) - log pi_old(y_t)) * A_t / sum_t m_t``
(Thinking Machines, "On-Policy Distillation", 2025; discount 0). Its expected gradient is the
gradient of the exact per-token reverse KL ``KL(pi_theta || p_T)``; the naive
``mean(log pi_theta - log p_T)`` is not (it drops the score-function term).
``tests/train/test_train_onpolicy_loss.py`` checks both on a 3-token vocabulary.
"""

from __future__ import annotations

from typing import Any


def token_logprobs(logits: Any, tokens: Any) -> Any:
    """``log softmax(logits)[t, tokens[t]]`` in float32: logits ``[B, T, V]``, tokens ``[B, T]``."""
    import torch

    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def advantages(logp_old: Any, logp_teacher: Any, kl_coef: float = 1.0) -> Any:
    """``A_t = -kl_coef * (log pi_old - log p_T)``, detached."""
    return (-kl_coef * (logp_old - logp_teacher)).detach()


def onpolicy_loss(
    logp_theta: Any, logp_old: Any, logp_teacher: Any, mask: Any, kl_coef: float = 1.0
) -> Any:
    """The importance-sampling loss over masked tokens (prompt and padding have ``mask`` 0).

    All four tensors have one shape (``[B, T]``); ``logp_old`` and ``logp_teacher`` carry no
    gradient. With no masked token the loss is 0 (and has a zero gradient).
    """
    mask = mask.to(logp_theta.dtype)
    adv = advantages(logp_old, logp_teacher, kl_coef)
    ratio = (logp_theta - logp_old.detach()).exp()
    return -(mask * ratio * adv).sum() / mask.sum().clamp(min=1.0)


def sampled_reverse_kl(logp_old: Any, logp_teacher: Any, mask: Any) -> float:
    """Mean over masked tokens of ``log pi_old(y_t) - log p_T(y_t)``: the reverse KL estimate."""
    mask = mask.to(logp_old.dtype)
    total = mask.sum().clamp(min=1.0)
    return float(((logp_old - logp_teacher) * mask).sum() / total)
