"""Reading prompts: JSONL, a JSON array, CSV, Parquet, plain text or an in-memory list of dicts.

The format is the file's extension (optionally ``.gz``): ``.jsonl``/``.ndjson``, ``.json``,
``.csv``, ``.parquet``, ``.txt`` (one prompt a line). Any other extension is refused with an
error naming the file, so a ``.json`` array is never sent one line (``[``, ``{``) a prompt.
Every input becomes a :class:`Prompt` (an id and the exact chat messages). A bad line is
reported with the file name and line number before any request is sent.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stillroom.harvest._completions import prompt_key
from stillroom.harvest.errors import PromptFileError

ROLES = ("system", "user", "assistant", "developer", "tool")


@dataclass(frozen=True)
class Prompt:
    """One input: ``id`` (given, or a hash of the messages) and the messages to send."""

    id: str
    messages: tuple[dict[str, str], ...]
    where: str  # "file.jsonl line 3", for error messages


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the form every hash in harvest is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def messages_hash(messages: Sequence[dict[str, str]]) -> str:
    """The id of a prompt given without one: the first 24 characters of its prompt key."""
    return prompt_key(messages)[:24]


def _check_messages(raw: Any, where: str) -> tuple[dict[str, str], ...]:
    if not isinstance(raw, list) or not raw:
        raise PromptFileError(f"{where}: 'messages' must be a non-empty list")
    out = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict):
            raise PromptFileError(f"{where}: messages[{i}] must be an object")
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise PromptFileError(f"{where}: messages[{i}].role must be one of {ROLES}")
        if not isinstance(content, str):
            raise PromptFileError(f"{where}: messages[{i}].content must be a string")
        out.append({"role": role, "content": content})
    return tuple(out)


def _from_record(record: Any, where: str, system: str | None) -> Prompt:
    if not isinstance(record, dict):
        raise PromptFileError(f"{where}: expected an object with 'prompt' or 'messages'")
    if "messages" in record:
        messages = _check_messages(record["messages"], where)
    elif "prompt" in record:
        prompt = record["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise PromptFileError(f"{where}: 'prompt' must be a non-empty string")
        messages = ({"role": "user", "content": prompt},)
    else:
        raise PromptFileError(f"{where}: needs a 'prompt' or a 'messages' field")
    if system is not None and messages[0]["role"] != "system":
        messages = ({"role": "system", "content": system}, *messages)
    pid = record.get("id")
    if pid is None or (isinstance(pid, float) and pid != pid):  # missing or NaN
        pid = messages_hash(messages)
    elif not isinstance(pid, str | int):
        raise PromptFileError(f"{where}: 'id' must be a string or an integer")
    return Prompt(id=str(pid), messages=messages, where=where)


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")  # type: ignore[return-value]
    return path.open(encoding="utf-8")


def _jsonl(path: Path) -> Iterator[tuple[Any, str]]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path} line {lineno}"
            try:
                yield json.loads(line), where
            except json.JSONDecodeError as exc:
                raise PromptFileError(f"{where}: invalid JSON ({exc.msg})") from None


def _json_array(path: Path) -> Iterator[tuple[Any, str]]:
    with _open_text(path) as fh:
        try:
            items = json.load(fh)
        except json.JSONDecodeError as exc:
            where = f"{path} line {exc.lineno}"
            raise PromptFileError(f"{where}: invalid JSON ({exc.msg})") from None
    if not isinstance(items, list):
        raise PromptFileError(f"{path}: a .json prompt file must hold an array of prompts")
    for i, item in enumerate(items):
        yield ({"prompt": item} if isinstance(item, str) else item), f"{path} item {i}"


def _csv(path: Path) -> Iterator[tuple[Any, str]]:
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        if "prompt" not in (reader.fieldnames or []):
            raise PromptFileError(f"{path} line 1: CSV needs a 'prompt' column")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            yield {k: v for k, v in row.items() if k in ("id", "prompt") and v != ""}, where


def _parquet(path: Path) -> Iterator[tuple[Any, str]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise PromptFileError(f"{path}: cannot read Parquet ({exc})") from None
    if "prompt" not in table.column_names and "messages" not in table.column_names:
        raise PromptFileError(f"{path}: Parquet needs a 'prompt' column")
    keep = [c for c in ("id", "prompt", "messages") if c in table.column_names]
    for i, row in enumerate(table.select(keep).to_pylist()):
        yield {k: v for k, v in row.items() if v is not None}, f"{path} row {i}"


def _text(path: Path) -> Iterator[tuple[Any, str]]:
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            text = line.rstrip("\r\n")
            if text.strip():
                yield {"prompt": text}, f"{path} line {lineno}"


_READERS = {
    ".jsonl": _jsonl,
    ".ndjson": _jsonl,
    ".json": _json_array,
    ".csv": _csv,
    ".parquet": _parquet,
    ".txt": _text,
}


def _records(source: Path) -> Iterator[tuple[Any, str]]:
    if not source.is_file():
        raise PromptFileError(f"{source}: no such prompt file")
    suffix = Path(source.name.lower().removesuffix(".gz")).suffix
    reader = _READERS.get(suffix)
    if reader is None:
        known = ", ".join(_READERS)
        raise PromptFileError(
            f"{source}: unknown prompt file extension {suffix or '(none)'!r} (known: {known}, "
            "each optionally .gz)"
        )
    return reader(source)


def load_prompts(
    source: Path | str | Iterable[dict[str, Any]], *, system: str | None = None
) -> list[Prompt]:
    """Read every prompt, validating all of them before returning.

    ``source`` is a path (``.jsonl``/``.jsonl.gz``: ``{"prompt": ...}`` or
    ``{"messages": [...]}`` with optional ``id``; ``.json``: an array of such objects or of
    strings; ``.csv``/``.parquet`` with a ``prompt`` column and optional ``id``; ``.txt``: one
    prompt a line; any other extension is an error) or an iterable of dicts
    shaped like the JSONL lines. ``system`` is prepended as a system message to prompts
    that do not start with one. Identical prompts are kept once; two different prompts
    with the same ``id`` are an error naming both lines.
    """
    if isinstance(source, str | Path):
        records: Iterable[tuple[Any, str]] = _records(Path(source))
    else:
        records = ((rec, f"prompts item {i}") for i, rec in enumerate(source))
    prompts: list[Prompt] = []
    seen: dict[str, Prompt] = {}
    for record, where in records:
        prompt = _from_record(record, where, system)
        first = seen.get(prompt.id)
        if first is None:
            seen[prompt.id] = prompt
            prompts.append(prompt)
        elif first.messages != prompt.messages:
            raise PromptFileError(
                f"{where}: id {prompt.id!r} is already used by a different prompt at {first.where}"
            )
    if not prompts:
        raise PromptFileError(
            f"{source if isinstance(source, str | Path) else 'prompts'}: no prompts"
        )
    return prompts
