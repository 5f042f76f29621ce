"""The fake OpenAI Batch API's state: files, batches and how they move, for tests.

:class:`~stillroom.harvest._batch_server.FakeBatchProvider` serves it over loopback (its
docstring lists the endpoints and the behaviours a test can ask for); this module holds
what those endpoints read and change, and runs on the server's event loop.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from stillroom.harvest import _fake_openai as oa
from stillroom.harvest.testing import _Server

_TERMINAL = ("completed", "failed", "expired", "cancelled")
_ENDPOINTS = ("/v1/chat/completions", "/v1/responses")
_STEPS = ("validating", "in_progress", "finalizing", "completed")


@dataclass
class BatchSettings:
    polls_per_state: int = 1
    max_requests: int = 50_000
    max_file_bytes: int = 200 * 1024 * 1024
    expire: dict[int, int] = field(default_factory=dict)  # create index -> answered requests
    flaky_files: bool = False
    create_500_once: bool = False  # the first create makes the batch, then answers 500
    api_key: str | None = None


class _Batches:
    """Files and batches, and how they move (runs on the server's event loop)."""

    def __init__(self, chat: _Server, settings: BatchSettings):
        self.chat, self.s = chat, settings
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.creates: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.content_404s: set[str] = set()
        self.hang: str | None = None
        self.hung = threading.Event()
        self.calls: list[str] = []

    # -- files ---------------------------------------------------------------------------
    def add_file(self, name: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1:06d}"
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.files[file_id], self.contents[file_id] = meta, content
        return meta

    # -- batches -------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return 400, _error(f"No such File object: {file_id}", "invalid_request_error")
        if body.get("endpoint") not in _ENDPOINTS:
            return 400, _error(f"endpoint must be one of {_ENDPOINTS}", "invalid_request_error")
        metadata = body.get("metadata")
        if metadata is not None and (
            len(metadata) > 16 or any(len(k) > 64 or len(str(v)) > 512 for k, v in metadata.items())
        ):
            return 400, _error("metadata: at most 16 pairs, keys 64 and values 512 chars", "")
        now = int(time.time())
        batch_id = f"batch_{len(self.batches) + 1:06d}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file_id,
            "completion_window": body.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": metadata,
        }
        self.batches[batch_id], self.polls[batch_id] = batch, 0
        self.creates.append({"id": batch_id, "body": body, "index": len(self.creates)})
        return 200, batch

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        batch = self.batches.get(batch_id)
        if batch is None or batch["status"] in _TERMINAL:
            return batch
        self.polls[batch_id] += 1
        if batch["status"] == "cancelling" or self.polls[batch_id] % self.s.polls_per_state == 0:
            self._advance(batch)
        return batch

    def _advance(self, batch: dict[str, Any]) -> None:
        now = int(time.time())
        status = batch["status"]
        if status == "cancelling":
            self._finish(batch, "cancelled", answered=0)
        elif status == "validating":
            problem, lines = self._validate(
                self.contents[batch["input_file_id"]], batch["endpoint"]
            )
            if problem:
                batch.update(status="failed", failed_at=now)
                batch["errors"] = {"object": "list", "data": [problem]}
                return
            batch.update(status="in_progress", in_progress_at=now)
            batch["request_counts"]["total"] = len(lines)
        elif status == "in_progress":
            batch.update(status="finalizing", finalizing_at=now)
        elif status == "finalizing":
            index = next(c["index"] for c in self.creates if c["id"] == batch["id"])
            if index in self.s.expire:
                self._finish(batch, "expired", answered=self.s.expire[index])
            else:
                self._finish(batch, "completed", answered=None)

    def _validate(self, content: bytes, endpoint: str) -> tuple[dict | None, list[dict]]:
        lines, seen = [], set()
        if len(content) > self.s.max_file_bytes:
            return {"code": "file_too_large", "message": "file exceeds the size limit"}, []
        for number, raw in enumerate(content.splitlines(), 1):
            try:
                line = json.loads(raw)
                ok = line["method"] == "POST" and line["url"] == endpoint
                ok = ok and isinstance(line["body"], dict) and isinstance(line["custom_id"], str)
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                return {"code": "invalid_request", "line": number, "message": "bad line"}, []
            if line["custom_id"] in seen:
                return {"code": "duplicate_custom_id", "line": number, "message": "dup"}, []
            seen.add(line["custom_id"])
            lines.append(line)
        if len(lines) > self.s.max_requests:
            return {"code": "too_many_requests", "message": f"> {self.s.max_requests}"}, []
        return None, lines

    def _finish(self, batch: dict[str, Any], status: str, answered: int | None) -> None:
        _, lines = self._validate(self.contents[batch["input_file_id"]], batch["endpoint"])
        out, err = [], []
        for i, line in enumerate(lines):
            if answered is not None and i >= answered:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                err.append(_result(line, None, {"code": code, "message": f"not run: {code}"}))
                continue
            status_code, payload = self._answer(line["body"], line["url"])
            target = out if status_code == 200 else err
            target.append(_result(line, {"status_code": status_code, "body": payload}, None))
        now = int(time.time())
        batch["status"] = status
        batch[f"{status}_at"] = now
        if status != "cancelled":
            batch["completed_at"] = batch["completed_at"] if status != "completed" else now
        counts = batch["request_counts"]
        counts.update(total=len(lines), completed=len(out), failed=len(err))
        if out:
            batch["output_file_id"] = self._result_file(batch, "output", out)
        if err:
            batch["error_file_id"] = self._result_file(batch, "error", err)

    def _result_file(self, batch: dict[str, Any], kind: str, lines: list[dict]) -> str:
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        meta = self.add_file(f"{batch['id']}_{kind}.jsonl", "batch_output", content)
        if self.s.flaky_files:
            self.content_404s.add(meta["id"])
        return meta["id"]

    def _answer(self, body: dict[str, Any], url: str) -> tuple[int, dict[str, Any]]:
        """The fake answer, exactly as the synchronous endpoint would give it (a server made
        with ``api="responses"`` answers ``/v1/responses`` lines)."""
        chat = self.chat
        chat.total += 1
        if url == "/v1/responses":
            messages = oa.responses_messages(body)
        else:
            messages = body.get("messages") or []
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        chat.per_prompt[last_user] += 1
        if "[[status:" in last_user:
            status = int(last_user.split("[[status:")[1].split("]]")[0])
            return status, _error(f"injected {status}", "invalid_request_error")
        prompt_tokens, max_tokens = oa.request_budget(body, messages)
        return 200, chat._completion(body, last_user, prompt_tokens, max_tokens)

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        batch = self.batches.get(batch_id)
        if batch is not None and batch["status"] not in _TERMINAL:
            batch.update(status="cancelling", cancelling_at=int(time.time()))
        return batch

    def listing(self, limit: int, after: str | None) -> dict[str, Any]:
        ordered = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        if after is not None:
            ordered = [b for b in ordered if b["id"] < after]
        page = ordered[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(ordered) > limit,
        }


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _result(line: dict, response: dict | None, error: dict | None) -> dict[str, Any]:
    """One output/error-file line: ``id``, ``custom_id``, ``response`` and ``error``."""
    if response is not None:
        response = {**response, "request_id": f"req_b{zlib.crc32(line['custom_id'].encode()):010d}"}
    return {
        "id": f"batch_req_{line['custom_id'][:16]}",
        "custom_id": line["custom_id"],
        "response": response,
        "error": error,
    }
