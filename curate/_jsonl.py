"""Stop-gap input and output: curation over JSONL files, until curation reads the harvest store
through the harvest-to-train contract.

Input rows are either harvest's JSONL export (``prompt_id``, ``sample_index``, ``messages``
ending in the assistant's answer) or flat ``{"id", "prompt", "answer"}`` objects. References
come from a field of the row (``--row-reference-field``, default ``reference``) or from a
references file of ``{"id", "answer"}`` keyed by the row's prompt id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stillroom.curate._pipeline import CurationResult, CurationRow
from stillroom.curate.errors import InputFormatError

ANSWER_FIELDS = ("answer", "completion", "response", "content", "output")


def _lines(path: Path):
    if not path.exists():
        raise InputFormatError(f"{path}: file not found")
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFormatError(f"{path}:{lineno}: not JSON ({exc.msg})") from exc
            if not isinstance(obj, dict):
                raise InputFormatError(f"{path}:{lineno}: expected a JSON object")
            yield lineno, obj


def read_references(path: str | Path, field: str = "answer") -> dict[str, Any]:
    """``{id: reference}`` from a JSONL file of ``{"id", field}`` objects."""
    out = {}
    for lineno, obj in _lines(Path(path)):
        if "id" not in obj or field not in obj:
            raise InputFormatError(f"{path}:{lineno}: needs 'id' and '{field}'")
        out[str(obj["id"])] = obj[field]
    return out


def _split_chat(obj: dict, where: str) -> tuple[str, str]:
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages or messages[-1].get("role") != "assistant":
        raise InputFormatError(f"{where}: 'messages' must end with the assistant's answer")
    users = [m.get("content", "") for m in messages[:-1] if m.get("role") == "user"]
    return (users[-1] if users else ""), str(messages[-1].get("content", ""))


def read_rows(
    path: str | Path, references: dict[str, Any] | None = None, reference_field: str = "reference"
) -> tuple[list[CurationRow], list[dict]]:
    """``(rows to curate, the original objects)`` from a JSONL file; bad lines name file:line."""
    path = Path(path)
    rows, originals = [], []
    for lineno, obj in _lines(path):
        where = f"{path}:{lineno}"
        if "messages" in obj:
            prompt, answer = _split_chat(obj, where)
        else:
            prompt = obj.get("prompt")
            answer = next((obj[f] for f in ANSWER_FIELDS if f in obj), None)
            if not isinstance(prompt, str) or not isinstance(answer, str):
                want = " or ".join(ANSWER_FIELDS)
                raise InputFormatError(f"{where}: needs 'messages', or 'prompt' and {want}")
        prompt_id = str(obj.get("prompt_id", obj.get("id", f"line-{lineno}")))
        sample = obj.get("sample_index")
        row_id = (
            f"{prompt_id}#{sample}" if sample is not None else str(obj.get("id", f"line-{lineno}"))
        )
        reference = obj.get(reference_field)
        if reference is None and references is not None:
            reference = references.get(prompt_id)
        rows.append(CurationRow(row_id, prompt_id, prompt, answer, reference))
        originals.append(obj)
    return rows, originals


def write_outputs(
    out_dir: str | Path, result: CurationResult, originals: list[dict], card: dict
) -> Path:
    """``curated.jsonl`` (kept rows), ``decisions.jsonl`` (every row) and ``curation.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "curated.jsonl").open("w") as kept, (out / "decisions.jsonl").open("w") as every:
        for decision, obj in zip(result.decisions, originals, strict=True):
            every.write(json.dumps(decision.as_dict(), ensure_ascii=False) + "\n")
            if decision.keep:
                kept.write(json.dumps(obj, ensure_ascii=False) + "\n")
    stats = {k: vars(v) for k, v in result.prompt_stats.items()}
    (out / "curation.json").write_text(
        json.dumps({**card, "summary": result.summary(), "prompt_stats": stats}, indent=2)
    )
    return out
