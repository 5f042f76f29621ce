"""The stored answer: harvest's one contract with everything that reads a harvest.

A harvest database holds one row per answer in the ``answers`` table, read through the
``completions`` view (both created by the numbered migrations in ``_migrations``). This
module owns that row and every rule about it; export, train, eval, curate and the tests
import it and keep no copy:

- :class:`CompletionRow`, the typed row (the ``answers`` table's columns, in order);
- :func:`completions_arrow`, how the writer (``Store.write_batch``) hands rows to DuckDB,
  and :func:`write_completions`, the same writer for fixtures and other stages;
- :func:`read_completions` (every row) and :func:`iter_completions` (chunks, for a store
  larger than memory), the readers;
- :func:`connect`, which opens the file (read-only for readers) and reports a store that a
  running harvest holds as busy, naming the holder;
- :func:`read_completions`, the reader;
- :func:`split_think`, the one parser of ``<think>`` blocks (``(content, reasoning)``);
- :func:`prompt_key`, the one hash of a list of chat messages;
- :func:`render_assistant`, the one renderer of an answer and its reasoning as a message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillroom.harvest.errors import DatabaseBusyError, HarvestError

if TYPE_CHECKING:
    import duckdb
    import pyarrow


@dataclass(frozen=True, slots=True)
class CompletionRow:
    """One stored answer: the ``answers`` table's columns in order (the ``completions`` view
    has the same ones). JSON columns (``messages``, ``top_logprobs``, ``request_params``)
    are JSON text, exactly as stored; times are naive UTC."""

    idempotency_key: str
    prompt_id: str
    sample_index: int
    messages: str  # the exact chat messages sent, as JSON
    system_prompt: str | None
    content: str  # the answer, a leading <think> block split off
    reasoning: str | None  # reasoning_content / reasoning / the <think> block
    top_logprobs: str | None  # JSON: [{token, logprob, bytes, top_logprobs: [...]}, ...]
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    reasoning_tokens: int | None
    teacher_model: str | None  # the model the provider says served the answer
    requested_model: str | None
    policy_id: str | None
    policy_hash: str | None
    created_at: datetime | None
    request_params: str | None  # JSON: model and sampling parameters, as sent
    request_id: str | None
    latency_ms: float | None
    run_id: str | None
    attempts: int | None = None  # in the view from migration 2; None in older files
    # migration 5 (harvest's API dialects, stillroom.harvest._dialect):
    reasoning_kind: str | None = None  # full | summary (Responses API summaries) | none
    reasoning_blocks: str | None = None  # JSON: the provider's raw reasoning blocks, opaque
    cached_input_tokens: int | None = None  # prompt tokens the provider served from cache
    finish: str | None = None  # finish_reason normalised: stop | length | refusal | other

    def chat(self) -> list[dict[str, Any]]:
        """``messages`` parsed."""
        return json.loads(self.messages)

    @property
    def kind_of_reasoning(self) -> str:
        """``reasoning_kind``, or for a row written without one, what ``reasoning`` implies."""
        return self.reasoning_kind or ("full" if self.reasoning else "none")

    @property
    def finish_or_raw(self) -> str | None:
        """The normalised ``finish``, or the raw ``finish_reason`` for a row without one."""
        return self.finish or self.finish_reason


def completion_row(
    *,
    prompt_id: str,
    messages: Sequence[Mapping[str, Any]],
    content: str,
    sample_index: int = 0,
    **columns: Any,
) -> CompletionRow:
    """A row made outside a harvest run (fixtures, benchmarks, stages that add answers):
    ``messages`` as a list, every column not given None, the key ``prompt_id:sample_index``."""
    values: dict[str, Any] = dict.fromkeys(COLUMNS)
    values.update(
        idempotency_key=f"{prompt_id}:{sample_index}",
        prompt_id=prompt_id,
        sample_index=sample_index,
        messages=json.dumps(list(messages), ensure_ascii=False),
        content=content,
    )
    values.update(columns)
    return CompletionRow(**values)


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CompletionRow))
# Columns a later migration added; a file written before it reads them as NULL.
_ADDED_LATER = frozenset(
    {"attempts", "reasoning_kind", "reasoning_blocks", "cached_input_tokens", "finish"}
)
_ARROW_KINDS = {
    "sample_index": "int32",
    "prompt_tokens": "int32",
    "completion_tokens": "int32",
    "reasoning_tokens": "int32",
    "attempts": "int32",
    "cached_input_tokens": "int32",
    "latency_ms": "float64",
    "created_at": "timestamp",
}


def completions_arrow(rows: Sequence[CompletionRow]) -> pyarrow.Table:
    """``rows`` as an Arrow table with the ``answers`` table's columns and types."""
    import pyarrow as pa

    kinds = {"int32": pa.int32(), "float64": pa.float64(), "timestamp": pa.timestamp("us")}
    return pa.table(
        {
            name: pa.array(
                [getattr(r, name) for r in rows],
                type=kinds.get(_ARROW_KINDS.get(name, ""), pa.string()),
            )
            for name in COLUMNS
        }
    )


# -- opening the store ---------------------------------------------------------------------
def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a harvest database. Readers pass ``read_only=True`` (the file must exist).

    A file another process holds open for writing raises :class:`DatabaseBusyError` naming
    that process (its pid and, where the system shows it, its command line).
    """
    import duckdb

    path = Path(path)
    if read_only and not path.exists():
        raise HarvestError(f"{path}: no such harvest database")
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" not in text.lower():
            raise HarvestError(f"{path}: cannot open the database ({text})") from None
        raise DatabaseBusyError(
            f"{path} is in use by {_holder(text)} (a harvest run holds it open for writing); "
            "wait for it to finish or use another --db file"
        ) from None
    except duckdb.Error as exc:
        raise HarvestError(f"{path}: not a DuckDB database ({exc})") from None


def _holder(lock_error: str) -> str:
    """``process 123 (python -m stillroom.harvest.cli run ...)`` from DuckDB's lock error."""
    pid = re.search(r"PID (\d+)", lock_error)
    if pid is None:
        return "another process"
    try:
        raw = Path(f"/proc/{pid.group(1)}/cmdline").read_bytes()
    except OSError:
        return f"process {pid.group(1)}"
    command = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split())
    return f"process {pid.group(1)} ({command[:160]})" if command else f"process {pid.group(1)}"


# -- reading ---------------------------------------------------------------------------------
def read_completions(
    db: Path | str,
    filters: Mapping[str, Iterable[Any]] | None = None,
    *,
    order_by: Sequence[str] = ("prompt_id", "sample_index"),
    with_logprobs: bool = True,
) -> list[CompletionRow]:
    """Every row of the ``completions`` view of ``db`` (opened read-only), as typed rows.

    ``filters`` keeps rows whose column is one of the values given
    (``{"finish_reason": ["stop"], "policy_id": ["self-hosted"]}``); ``order_by`` names
    columns; ``with_logprobs=False`` skips reading ``top_logprobs`` (it reads as None).
    A file that is no harvest database raises :class:`HarvestError` saying so.
    """
    db = Path(db)
    con = connect(db, read_only=True)
    try:
        return [
            r
            for chunk in _completion_chunks(con, db, filters, order_by, with_logprobs, None)
            for r in chunk
        ]
    finally:
        con.close()


def iter_completions(
    con: duckdb.DuckDBPyConnection,
    chunk_rows: int,
    *,
    order_by: Sequence[str] = ("prompt_id", "sample_index", "idempotency_key"),
    with_logprobs: bool = False,
) -> Iterator[list[CompletionRow]]:
    """The ``completions`` view of an open harvest connection, ``chunk_rows`` typed rows at a
    time, in ``order_by`` order: a stage that streams a store larger than memory (curate at
    scale). It reads on a cursor of its own, so the caller may write through ``con`` meanwhile."""
    yield from _completion_chunks(
        con.cursor(), Path("<store>"), None, order_by, with_logprobs, chunk_rows
    )


def _completion_chunks(con, db, filters, order_by, with_logprobs, chunk_rows):
    import duckdb

    for name in (*(filters or {}), *order_by):
        if name not in COLUMNS:
            raise HarvestError(f"read_completions: no column {name!r}; columns: {COLUMNS}")
    present = _view_columns(con, db)
    wanted = [c for c in COLUMNS if c in present and (with_logprobs or c != "top_logprobs")]
    where, params = [], []
    for name, values in (filters or {}).items():
        values = list(values)
        where.append(f"{name} IN ({', '.join('?' for _ in values)})" if values else "false")
        params += values
    sql = f"SELECT {', '.join(wanted)} FROM completions"
    sql += f" WHERE {' AND '.join(where)}" if where else ""
    sql += f" ORDER BY {', '.join(order_by)}" if order_by else ""
    unread = dict.fromkeys(c for c in COLUMNS if c not in wanted)  # None: not read, or older file
    try:
        result = con.execute(sql, params)
        while records := (result.fetchmany(chunk_rows) if chunk_rows else result.fetchall()):
            yield [CompletionRow(**unread, **dict(zip(wanted, r, strict=True))) for r in records]
            if not chunk_rows:
                return
    except duckdb.Error as exc:
        raise HarvestError(f"{db}: cannot read the `completions` view: {exc}") from None


def _view_columns(con: duckdb.DuckDBPyConnection, db: Path) -> set[str]:
    present = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'completions'"
        ).fetchall()
    }
    if not present:
        raise HarvestError(f"{db}: no `completions` view (is it a harvest database?)")
    missing = [c for c in COLUMNS if c not in present and c not in _ADDED_LATER]
    if missing:
        raise HarvestError(f"{db}: the `completions` view lacks column(s) {', '.join(missing)}")
    return present


# -- writing ---------------------------------------------------------------------------------
def write_completions(db: Path | str, rows: Iterable[CompletionRow]) -> Path:
    """Store ``rows`` in ``db`` (created and migrated if needed) in one transaction: the
    writer ``harvest run`` uses, for fixtures, benchmarks and stages that add answers."""
    from stillroom.harvest._store import Store

    store = Store(db)
    try:
        store.write_batch(list(rows), [], None)
    finally:
        store.close()
    return Path(db)


# -- the rules every reader shares -------------------------------------------------------------
def split_think(text: str) -> tuple[str, str | None]:
    """Split a leading ``<think>...</think>`` block off an answer: ``(content, reasoning)``.

    An answer cut off while thinking is all reasoning (``("", ...)``); an orphan
    ``</think>`` (templates that put ``<think>`` in the prompt) ends the reasoning.
    """
    stripped = text.lstrip()
    if stripped.startswith("<think>"):
        body = stripped[len("<think>") :]
        end = body.find("</think>")
        if end < 0:  # cut off while thinking
            return "", body.strip() or None
        return body[end + len("</think>") :].lstrip(), body[:end].strip() or None
    end = text.find("</think>")
    if end >= 0 and "<think>" not in text:  # templates that put <think> in the prompt
        return text[end + len("</think>") :].lstrip(), text[:end].strip() or None
    return text, None


def prompt_key(messages: Sequence[Mapping[str, Any]]) -> str:
    """sha256 (hex) of the messages' roles and contents as canonical JSON.

    The identity of a prompt: train splits by it, and harvest names a prompt given
    without an id by its first 24 characters.
    """
    canonical = json.dumps(
        [{"role": m.get("role"), "content": m.get("content")} for m in messages],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


RENDER_MODES = ("field", "template", "think", "drop")


def render_assistant(content: str, reasoning: str | None, mode: str) -> dict[str, Any]:
    """The assistant message for an answer and its reasoning (used verbatim).

    - ``field``: ``reasoning_content`` always set (None without reasoning), for datasets
      whose rows must share one shape (``harvest export``);
    - ``template``: ``reasoning_content`` only when there is reasoning, for chat templates
      that render that field (``train --reasoning template``);
    - ``think``: the reasoning inlined as ``<think>\\n...\\n</think>\\n\\n`` before the answer;
    - ``drop``: the answer alone.
    """
    if mode not in RENDER_MODES:
        raise HarvestError(f"unknown reasoning mode {mode!r}; choose one of {RENDER_MODES}")
    if mode == "think" and reasoning:
        return {"role": "assistant", "content": f"<think>\n{reasoning}\n</think>\n\n{content}"}
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if mode == "field" or (mode == "template" and reasoning):
        message["reasoning_content"] = reasoning
    return message
