"""The run's policy, the limits that apply (the tighter of user's and policy's) and the caps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from stillroom import policies
from stillroom.harvest._config import HarvestConfig


def _tighter(user: int | float | None, policy: int | float | None):
    if user is None:
        return policy
    if policy is None:
        return user
    return min(user, policy)


@dataclass
class RunLimits:
    rpm: int | None
    tpm: int | None
    rpd: int | None
    max_spend_usd: float | None
    usd_per_mtok_in: float | None
    usd_per_mtok_out: float | None
    usd_per_mtok_batch_in: float | None = None
    usd_per_mtok_batch_out: float | None = None
    headers_profile: str | None = None
    usd_per_mtok_cached_in: float | None = None  # cached input (None: at the input price)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def resolve_policy(cfg: HarvestConfig, now: datetime | None = None) -> policies.RunPolicy:
    """Ask ``policies`` before anything else; a refusal raises and nothing is sent.

    ``now`` is the run's clock reading, recorded as the time of any acceptance.
    """
    return policies.resolve_for_harvest(
        policy_id=cfg.policy,
        base_url=cfg.base_url,
        model=cfg.model,
        accept=list(cfg.accept),
        purpose=cfg.purpose,
        now=now,
    )


def run_limits(cfg: HarvestConfig, policy_limits: policies.Limits) -> RunLimits:
    return limits_within(
        policy_limits,
        rpm=cfg.rpm,
        tpm=cfg.tpm,
        rpd=cfg.rpd,
        max_spend_usd=cfg.max_spend_usd,
        limits_profile=cfg.limits_profile,
    )


def limits_within(
    policy_limits: policies.Limits,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    rpd: int | None = None,
    max_spend_usd: float | None = None,
    limits_profile: str | None = None,
) -> RunLimits:
    """The limits a run keeps: the tighter of the user's and the policy's, and its prices."""
    return RunLimits(
        rpm=_tighter(rpm, policy_limits.rpm),
        tpm=_tighter(tpm, policy_limits.tpm),
        rpd=_tighter(rpd, policy_limits.rpd),
        max_spend_usd=_tighter(max_spend_usd, policy_limits.max_spend_usd),
        usd_per_mtok_in=policy_limits.usd_per_mtok_in,
        usd_per_mtok_out=policy_limits.usd_per_mtok_out,
        usd_per_mtok_batch_in=policy_limits.usd_per_mtok_batch_in,
        usd_per_mtok_batch_out=policy_limits.usd_per_mtok_batch_out,
        usd_per_mtok_cached_in=policy_limits.usd_per_mtok_cached_in,
        headers_profile=_profile_name(limits_profile or policy_limits.headers_profile),
    )


class Caps:
    """The daily request cap and the spend cap, checked before each request.

    ``requests_today`` counts every request sent on the current UTC day in any mode (stored
    in the database, so it survives runs); ``spent_usd`` is what the stored answers of this
    policy cost, and in-flight requests (or batch files) reserve their worst case first.
    """

    def __init__(self, limits: RunLimits, *, today: date, requests_today: int, spent_usd: float):
        self.limits = limits
        self.today = today
        self.requests_today = requests_today
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        if limits.max_spend_usd is not None and (
            limits.usd_per_mtok_in is None or limits.usd_per_mtok_out is None
        ):
            # A cap without prices cannot be enforced; refuse rather than overspend.
            from stillroom.harvest.errors import HarvestConfigError

            raise HarvestConfigError(
                f"a spend cap of ${limits.max_spend_usd} needs per-token prices "
                "(usd_per_mtok_in/out in the policy's limits)"
            )

    def cost(self, tokens_in: float, tokens_out: float, cached_in: float = 0) -> float:
        """Dollars for these tokens: ``cached_in`` of ``tokens_in`` at the cached-input
        price where the policy lists one; output includes reasoning tokens (billed so)."""
        price_in = self.limits.usd_per_mtok_in or 0.0
        price_out = self.limits.usd_per_mtok_out or 0.0
        price_cached = self.limits.usd_per_mtok_cached_in
        cached = min(cached_in, tokens_in) if price_cached is not None else 0
        fresh = (tokens_in - cached) * price_in + cached * (price_cached or 0.0)
        return (fresh + tokens_out * price_out) / 1e6

    def requests_left(self) -> int | None:
        """Requests the daily cap still allows today; None without a daily cap."""
        rpd = self.limits.rpd
        return None if rpd is None else max(0, rpd - self.requests_today)

    def daily_cap_reached(self) -> bool:
        return self.requests_left() == 0

    def daily_cap_message(self, waiting: int | None = None) -> str:
        """Why the run stops at the daily cap; ``waiting``: requests left for a later day."""
        later = f"; {waiting} requests wait for a later day" if waiting else ""
        return (
            f"daily cap of {self.limits.rpd} requests reached for {self.today} (UTC): "
            f"{self.requests_today} sent today{later}; run the same command again after "
            "00:00 UTC to resume"
        )

    def reserve(self, est_in: float, max_out: int) -> float | None:
        """Reserve a request's worst-case cost; None when it would break the spend cap."""
        worst = self.cost(est_in, max_out)
        return worst if self.reserve_usd(worst) else None

    def reserve_usd(self, worst: float) -> bool:
        """Reserve a worst-case cost in dollars (a request's or a batch file's); False, and
        nothing reserved, when it would break the spend cap."""
        cap = self.limits.max_spend_usd
        if cap is not None and self.spent_usd + self.reserved_usd + worst > cap:
            return False
        self.reserved_usd += worst
        return True

    def settle(self, reserved: float, tokens_in: int, tokens_out: int, cached_in: int = 0) -> None:
        self.reserved_usd -= reserved
        self.spent_usd += self.cost(tokens_in, tokens_out, cached_in)

    def release(self, reserved: float) -> None:
        self.reserved_usd -= reserved


def _profile_name(name: str | None) -> str | None:
    """A limits profile name, checked before anything is sent."""
    if name is not None:
        from stillroom.harvest._header_profiles import get_profile

        get_profile(name)
    return name
