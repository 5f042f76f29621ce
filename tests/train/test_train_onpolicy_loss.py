"""The on-policy estimator on a 3-token vocabulary: its expected gradient is the gradient of
the exact per-token reverse KL; the naive loss's is not. Exact expectations, no sampling."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")

from stillroom.train._onpolicy_loss import onpolicy_loss, sampled_reverse_kl  # noqa: E402

V, L = 3, 2


def _toy(seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(1 + V, V, generator=g, dtype=torch.float64).requires_grad_()
    teacher = torch.randn(1 + V, V, generator=g, dtype=torch.float64)
    return theta, teacher


def _logp(table, seq):
    """Per-token log-probs of a length-2 sequence under a bigram table (row 0 = first token)."""
    rows = torch.stack([table[0], table[1 + seq[0]]])
    return torch.log_softmax(rows, -1)[torch.arange(L), torch.tensor(seq)]


def _exact_reverse_kl(theta, teacher):
    """sum over positions of E_{context ~ pi (held fixed)} KL(pi_theta(.|ctx) || p_T(.|ctx)) / L."""
    ls, lt = torch.log_softmax(theta, -1), torch.log_softmax(teacher, -1)
    kl = (ls.exp() * (ls - lt)).sum(-1)  # per context row
    first = ls[0].exp().detach()
    return (kl[0] + (first * kl[1:]).sum()) / L


def _expected_grad(theta, teacher, loss_of):
    total = torch.zeros((), dtype=torch.float64)
    for seq in itertools.product(range(V), repeat=L):
        weight = _logp(theta, seq).sum().exp().detach()  # pi_old(sequence)
        total = total + weight * loss_of(theta, teacher, list(seq))
    (grad,) = torch.autograd.grad(total, theta)
    return grad


def _estimator(theta, teacher, seq):
    lp = _logp(theta, seq).unsqueeze(0)
    return onpolicy_loss(lp, lp.detach(), _logp(teacher, seq).unsqueeze(0), torch.ones(1, L))


def _naive(theta, teacher, seq):
    return (_logp(theta, seq) - _logp(teacher, seq)).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expected_gradient_is_the_reverse_kl_gradient(seed):
    theta, teacher = _toy(seed)
    (want,) = torch.autograd.grad(_exact_reverse_kl(theta, teacher), theta)
    got = _expected_grad(theta, teacher, _estimator)
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_naive_mean_logratio_fails_the_same_check():
    theta, teacher = _toy(0)
    (want,) = torch.autograd.grad(_exact_reverse_kl(theta, teacher), theta)
    got = _expected_grad(theta, teacher, _naive)
    assert not torch.allclose(got, want, rtol=1e-3, atol=1e-4)
    assert (got - want).abs().max() > 0.05


def test_kl_coef_scales_the_gradient():
    theta, teacher = _toy(1)
    seq = [2, 0]
    lp = _logp(theta, seq).unsqueeze(0)
    lt = _logp(teacher, seq).unsqueeze(0)
    loss1 = onpolicy_loss(lp, lp.detach(), lt, torch.ones(1, L))
    (g1,) = torch.autograd.grad(loss1, theta, retain_graph=True)
    (g3,) = torch.autograd.grad(
        onpolicy_loss(lp, lp.detach(), lt, torch.ones(1, L), kl_coef=3.0), theta
    )
    torch.testing.assert_close(g3, 3 * g1)


def test_masked_positions_neither_count_nor_get_gradient():
    logp = torch.tensor([[-1.0, -2.0, -0.5, -3.0], [-0.1, -0.2, -9.0, -9.0]], requires_grad=True)
    old = logp.detach().clone()
    teacher = torch.tensor([[-5.0, -1.0, -1.5, -0.2], [-0.3, -0.4, 0.0, 0.0]])
    mask = torch.tensor([[0, 1, 1, 0], [0, 1, 0, 0]])  # prompt, completion, padding
    loss = onpolicy_loss(logp, old, teacher, mask)
    (grad,) = torch.autograd.grad(loss, logp)
    assert torch.all(grad[mask == 0] == 0)
    # only the 3 completion tokens count, each with weight 1/3: grad = -A_t / 3
    adv = -(old - teacher)
    torch.testing.assert_close(grad[mask == 1], -adv[mask == 1] / 3)
    # changing what sits under the mask changes nothing
    teacher2 = teacher.clone()
    teacher2[mask == 0] = 42.0
    assert onpolicy_loss(logp, old, teacher2, mask).item() == pytest.approx(loss.item())
    kl = sampled_reverse_kl(old, teacher, mask)
    assert kl == pytest.approx(float(((old - teacher) * mask).sum() / 3))
