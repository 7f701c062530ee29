"""OpenAI-style ``/v1/files`` and ``/v1/batches`` endpoints for :class:`FakeOpenAIServer`.

A batch moves one step each time it is retrieved: validating → in_progress → finalizing →
completed, answering each line with the server's chat responder. Tests can hold a batch where it
is, or steer it to ``failed`` or ``expired`` (with only the first ``processed`` lines answered).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._fake_openai import FakeOpenAIServer, Reply, _tokens

__all__ = ["FakeBatchAPI", "install_batch_routes"]

STEPS = ("validating", "in_progress", "finalizing", "completed")
_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):04d}{uuid.uuid4().hex[:12]}"


@dataclass
class _Batch:
    data: dict[str, Any]
    lines: list[dict[str, Any]]
    step: int = 0
    held: bool = False
    outcome: str = "completed"  # or "failed" / "expired"
    processed: int = 0  # lines answered before an expiry
    message: str = ""
    invalid: list[str] = field(default_factory=list)


def _multipart(raw: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (the boundary is its first line)."""
    boundary = raw.split(b"\r\n", 1)[0]
    fields: dict[str, bytes] = {}
    for part in raw.split(boundary):
        head, sep, body = part.partition(b"\r\n\r\n")
        if not sep or b"name=" not in head:
            continue
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        fields[name] = body[:-2] if body.endswith(b"\r\n") else body
    return fields


class FakeBatchAPI:
    """The files and batches a :class:`FakeOpenAIServer` holds, and switches to steer batches."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()

    # -- steering (used by tests) ----------------------------------------------------------
    def hold(self, batch_id: str, held: bool = True) -> None:
        """Keep a batch at its current status until released with ``hold(id, False)``."""
        self.batches[batch_id].held = held

    def fail(self, batch_id: str, message: str = "the batch failed validation") -> None:
        """Make the batch end as ``failed`` (with ``message``) at its next step."""
        b = self.batches[batch_id]
        b.outcome, b.message = "failed", message

    def expire(self, batch_id: str, processed: int = 0) -> None:
        """Make the batch end as ``expired`` with only its first ``processed`` lines answered."""
        b = self.batches[batch_id]
        b.outcome, b.processed = "expired", processed

    def status(self, batch_id: str) -> str:
        return str(self.batches[batch_id].data["status"])

    # -- routes -----------------------------------------------------------------------------
    def create_file(self, server: FakeOpenAIServer, body: dict[str, Any], raw: bytes) -> Any:
        fields = _multipart(raw)
        if "file" not in fields:
            return 400, {"error": {"message": "missing file", "type": "invalid_request_error"}}
        meta: dict[str, Any] = {"id": _new_id("file-"), "object": "file", "bytes": len(fields["file"]),
                "created_at": int(time.time()), "filename": "batch.jsonl",
                "purpose": fields.get("purpose", b"batch").decode(), "status": "processed"}
        with self._lock:
            self.files[meta["id"]] = (meta, fields["file"])
        return meta

    def get_file(self, server: FakeOpenAIServer, body: dict[str, Any], raw: bytes) -> Any:
        parts = server.request_path.rstrip("/").split("/")  # ['', 'v1', 'files', id, ('content')]
        found = self.files.get(parts[3]) if len(parts) > 3 else None
        if found is None:
            return 404, {"error": {"message": f"no file {server.request_path}", "type": "not_found"}}
        return found[1] if parts[-1] == "content" else found[0]

    def post_batch(self, server: FakeOpenAIServer, body: dict[str, Any], raw: bytes) -> Any:
        parts = server.request_path.rstrip("/").split("/")
        if len(parts) == 5 and parts[4] == "cancel":
            return self._cancel(parts[3])
        return self._create(body)

    def get_batch(self, server: FakeOpenAIServer, body: dict[str, Any], raw: bytes) -> Any:
        parts = server.request_path.rstrip("/").split("/")
        if len(parts) == 3:
            return {"object": "list", "data": [b.data for b in self.batches.values()], "has_more": False}
        with self._lock:
            batch = self.batches.get(parts[3])
            if batch is None:
                return 404, {"error": {"message": f"no batch {parts[3]}", "type": "not_found"}}
            self._advance(batch)
            return dict(batch.data)

    # -- lifecycle ------------------------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> Any:
        found = self.files.get(str(body.get("input_file_id")))
        if found is None:
            return 400, {"error": {"message": "input_file_id not found", "type": "invalid_request_error"}}
        if body.get("completion_window") != "24h":
            return 400, {"error": {"message": "completion_window must be '24h'", "type": "invalid_request_error"}}
        lines, invalid = [], []
        for n, text in enumerate(found[1].decode().splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
                assert line["url"] == body.get("endpoint") and line["method"] == "POST" and line["custom_id"]
                lines.append(line)
            except (ValueError, KeyError, AssertionError):
                invalid.append(f"line {n} is not a valid request for {body.get('endpoint')}")
        now = int(time.time())
        data = {"id": _new_id("batch_"), "object": "batch", "endpoint": body.get("endpoint"), "errors": None,
                "input_file_id": body["input_file_id"], "completion_window": "24h", "status": STEPS[0],
                "output_file_id": None, "error_file_id": None, "created_at": now, "in_progress_at": None,
                "expires_at": now + 86400, "finalizing_at": None, "completed_at": None, "failed_at": None,
                "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata")}
        batch = _Batch(data, lines, invalid=invalid)
        if invalid:
            batch.outcome, batch.message = "failed", "; ".join(invalid)
        with self._lock:
            self.batches[data["id"]] = batch
        return dict(data)

    def _cancel(self, batch_id: str) -> Any:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return 404, {"error": {"message": f"no batch {batch_id}", "type": "not_found"}}
            if batch.data["status"] not in ("completed", "failed", "expired", "cancelled"):
                batch.outcome, batch.held = "cancelled", False
                batch.data.update(status="cancelling", cancelling_at=int(time.time()))
            return dict(batch.data)

    def _advance(self, batch: _Batch) -> None:
        status = batch.data["status"]
        if batch.held or status in ("completed", "failed", "expired", "cancelled"):
            return
        now = int(time.time())
        if batch.outcome == "failed":
            batch.data.update(status="failed", failed_at=now, errors={"object": "list", "data": [
                {"code": "invalid_request", "message": batch.message, "line": None, "param": None}]})
        elif status == "cancelling":
            self._finish(batch, "cancelled", answered=0)
        elif status == "in_progress" and batch.outcome == "expired":
            self._finish(batch, "expired", answered=batch.processed)
        elif status == "finalizing":
            self._finish(batch, "completed", answered=len(batch.lines))
        else:
            nxt = STEPS[STEPS.index(status) + 1]
            batch.data.update(status=nxt, **{f"{nxt}_at": now})

    def _finish(self, batch: _Batch, status: str, answered: int) -> None:
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for i, line in enumerate(batch.lines):
            if i < answered:
                record = self._answer(line)
                ok = record["response"]["status_code"] == 200
                (outputs if ok else errors).append(record)
            else:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append({"id": _new_id("batch_req_"), "custom_id": line["custom_id"], "response": None,
                               "error": {"code": code, "message": f"request not run: the batch was {status}"}})
        counts = {"total": len(batch.lines), "completed": len(outputs), "failed": len(errors)}
        batch.data.update(status=status, request_counts=counts, **{f"{status}_at": int(time.time())})
        if outputs:
            batch.data["output_file_id"] = self._store(outputs)
        if errors:
            batch.data["error_file_id"] = self._store(errors)

    def _store(self, records: list[dict[str, Any]]) -> str:
        content = "".join(json.dumps(r) + "\n" for r in records).encode()
        meta: dict[str, Any] = {"id": _new_id("file-"), "object": "file", "bytes": len(content),
                                "created_at": int(time.time()), "filename": "batch_output.jsonl",
                                "purpose": "batch_output", "status": "processed"}
        self.files[meta["id"]] = (meta, content)
        return str(meta["id"])

    def _answer(self, line: dict[str, Any]) -> dict[str, Any]:
        """One output record: the server's responder answers the line's chat body."""
        body = line.get("body") or {}
        rid = _new_id("batch_req_")
        try:
            reply = self.server.responder(body)
        except Exception as exc:  # a responder that raises stands for a request the model rejects
            return {"id": rid, "custom_id": line["custom_id"], "error": None, "response": {
                "status_code": 400, "request_id": rid,
                "body": {"error": {"message": str(exc), "type": "invalid_request_error"}}}}
        if isinstance(reply, str):
            reply = Reply(text=reply)
        calls = [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                  "function": {"name": n, "arguments": json.dumps(a)}} for n, a in reply.tool_calls]
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if calls:
            message["tool_calls"] = calls
        usage = {"prompt_tokens": _tokens(json.dumps(body.get("messages", []))),
                 "completion_tokens": _tokens(reply.text) + 8 * len(calls)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion = {"id": f"chatcmpl-{uuid.uuid4().hex[:16]}", "object": "chat.completion",
                      "created": int(time.time()), "model": body.get("model", "fake-model"),
                      "choices": [{"index": 0, "message": message,
                                   "finish_reason": reply.finish_reason or ("tool_calls" if calls else "stop")}],
                      "usage": usage}
        return {"id": rid, "custom_id": line["custom_id"], "error": None,
                "response": {"status_code": 200, "request_id": rid, "body": completion}}


def install_batch_routes(server: FakeOpenAIServer) -> FakeBatchAPI:
    """Add ``/v1/files`` and ``/v1/batches`` to ``server``; returns the controller to steer batches."""
    api = FakeBatchAPI(server)
    server.route("POST", "/v1/files", api.create_file)
    server.route("GET", "/v1/files", api.get_file)
    server.route("POST", "/v1/batches", api.post_batch)
    server.route("GET", "/v1/batches", api.get_batch)
    return api
