"""``SplitRecord``: what decides which prompts a trained adapter held out.

``train_sft`` writes it into ``train_config.json`` (key ``"split"``) and reads the harvest
through it; ``evaluate_student`` reads it back and gets the same held-out prompts. A field
that is missing, renamed or of the wrong type is an error naming the file and the field,
never a silent default that would evaluate on the wrong split.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillroom.train.errors import TrainConfigError

if TYPE_CHECKING:
    from stillroom.train._config import TrainConfig
    from stillroom.train._data import Dataset

log = logging.getLogger("stillroom.train")

CONFIG_FILE = "train_config.json"


@dataclass(frozen=True)
class SplitRecord:
    """The filters and the split of one training run (see :func:`stillroom.train.load_dataset`)."""

    reasoning: str
    drop_system: bool
    finish_reasons: tuple[str, ...]
    eval_fraction: float
    seed: int

    @classmethod
    def of(cls, config: TrainConfig) -> SplitRecord:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    @classmethod
    def default(cls) -> SplitRecord:
        """``TrainConfig``'s defaults (for an adapter trained elsewhere, without a record)."""
        from stillroom.train._config import TrainConfig

        return cls.of(TrainConfig(db=Path(), out=Path()))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "finish_reasons": list(self.finish_reasons)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> SplitRecord:
        """Every field present and of its type; ``where`` names the file in errors."""
        checks = {
            "reasoning": lambda v: isinstance(v, str),
            "drop_system": lambda v: isinstance(v, bool),
            "finish_reasons": lambda v: (
                isinstance(v, list | tuple) and all(isinstance(x, str) for x in v)
            ),
            "eval_fraction": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
            "seed": lambda v: isinstance(v, int) and not isinstance(v, bool),
        }
        for name, ok in checks.items():
            if name not in data:
                raise TrainConfigError(f"{where}: the split record lacks field {name!r}")
            if not ok(data[name]):
                raise TrainConfigError(f"{where}: split field {name!r} = {data[name]!r} is invalid")
        return cls(
            reasoning=data["reasoning"],
            drop_system=data["drop_system"],
            finish_reasons=tuple(data["finish_reasons"]),
            eval_fraction=float(data["eval_fraction"]),
            seed=data["seed"],
        )

    @classmethod
    def beside(cls, adapter_dir: Path) -> tuple[SplitRecord, dict[str, Any]]:
        """The record in ``train_config.json`` in ``adapter_dir`` or its parent, and the
        whole file. Files written before the record had its fields at the top level."""
        for candidate in (adapter_dir / CONFIG_FILE, adapter_dir.parent / CONFIG_FILE):
            if candidate.is_file():
                try:
                    used = json.loads(candidate.read_text())
                except json.JSONDecodeError as exc:
                    raise TrainConfigError(f"{candidate}: not valid JSON ({exc})") from exc
                return cls.from_dict(used.get("split", used), str(candidate)), used
        log.warning("%s: no %s; using the default filters and split", adapter_dir, CONFIG_FILE)
        return cls.default(), {}

    def load(self, db: Path, **options: Any) -> Dataset:
        """:func:`stillroom.train.load_dataset` with this record's filters and split."""
        from stillroom.train._data import load_dataset

        return load_dataset(db, **asdict(self), **options)
