"""Batch API mode: send work that can wait to a provider's Batch API, at its batch discount.

This is the chain's own code (``Chain.submit_batch`` / ``asubmit_batch``), not a plugin: batch
requests skip the plugins and go straight to the provider.

``chain.submit_batch(requests)`` uploads the requests as one JSONL file and starts a provider
batch through LiteLLM (files + batches). The returned :class:`BatchJob` reports ``status()`` and,
once the batch ends, ``results()``: one :class:`BatchOutcome` per request, in submission order.
Each answer is written to the ledger once, priced at the batch discount and marked
``served_by="batch:<target>"``, ``info["batch_api"]=True``, so it is counted apart from live calls.
Batch requests skip the chain's plugins: they go straight to the provider.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _seam
from ._errors import BatchNotReadyError, ConfigError, CostmwError, InvalidRequestError, RequestError
from ._options import Options
from ._target import Target, estimate_usage
from ._types import Request, Response, Usage

if TYPE_CHECKING:
    from ._chain import Chain

__all__ = ["BATCH_DISCOUNTS", "BatchJob", "BatchNotReadyError", "BatchOutcome", "asubmit_batch"]

# Fraction of the live price the provider takes off for Batch API work (OpenAI and Anthropic: 50%).
BATCH_DISCOUNTS: dict[str, float] = {"openai": 0.5, "anthropic": 0.5, "azure": 0.5, "vertex_ai": 0.5,
                                     "bedrock": 0.5, "mistral": 0.5}
DEFAULT_DISCOUNT = 0.5
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
ENDPOINT = "/v1/chat/completions"
_OWN_KEYS = frozenset({"messages", "model", "metadata", "options", "params"})


@dataclass(slots=True)
class BatchOutcome:
    """What became of one request of a batch: its response, or why it has none."""

    request: Request
    response: Response | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None


def _as_request(item: Any, index: int, model: str | None, chain: Chain) -> Request:
    if isinstance(item, Request):
        request = item
    elif isinstance(item, Mapping) and "messages" in item:
        params = {**dict(item.get("params") or {}), **{k: v for k, v in item.items() if k not in _OWN_KEYS}}
        request = Request.create(item["messages"], item.get("model") or model, params=params,
                                 metadata=item.get("metadata"), options=item.get("options"))
    elif isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
        request = Request.create(item, model)
    else:
        raise InvalidRequestError(f"requests[{index}] must be a Request, a dict with 'messages', "
                                  f"or a list of messages; got {type(item).__name__}")
    if request.stream:
        raise InvalidRequestError(f"requests[{index}] asks for a stream; the Batch API cannot stream")
    if request.context.chain is None:
        request.context.chain = chain
    return request


def _pick_target(chain: Chain, requests: Sequence[Request], target: Target | str | None) -> Target:
    if isinstance(target, str):
        found = chain.targets.get(target)
        if found is None:
            raise ConfigError(f"submit_batch: no target named {target!r} in this chain")
        target = found
    if target is None:
        chosen = {id(t): t for t in (chain.target_for(r) for r in requests)}
        if len(chosen) > 1:
            names = sorted(t.name for t in chosen.values())
            raise InvalidRequestError(f"submit_batch: these requests go to several targets ({', '.join(names)}); "
                                      "submit one batch per target or pass target=")
        target = next(iter(chosen.values()))
    if not _seam.is_litellm_target(target):
        raise ConfigError(f"submit_batch: target {target.name!r} is a {target.kind} target; the Batch API "
                          "needs a remote LiteLLMTarget (a provider with files + batches endpoints)")
    return target


def _connection(target: Target) -> tuple[str, str, dict[str, Any]]:
    """(provider, model name at the provider, api_base/api_key kwargs) for a LiteLLM target."""
    probe = Request.create([{"role": "user", "content": "-"}], target.model)
    kwargs = target._kwargs(probe)  # type: ignore[attr-defined]
    conn = {k: kwargs[k] for k in ("api_base", "api_key") if kwargs.get(k)}
    model, provider, _, _ = _seam.litellm_module().get_llm_provider(model=target.model, api_base=conn.get("api_base"))
    return str(provider), str(model), conn


def _error_text(record: Mapping[str, Any]) -> str:
    error = record.get("error")
    if isinstance(error, Mapping):
        return f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
    response = record.get("response") or {}
    body = response.get("body") or {}
    detail = body.get("error") if isinstance(body, Mapping) else None
    message = detail.get("message") if isinstance(detail, Mapping) else json.dumps(body)[:300]
    return f"HTTP {response.get('status_code')}: {message}"


def _to_response(body: Mapping[str, Any]) -> Response:
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = body.get("usage") or {}
    calls = message.get("tool_calls") or None
    return Response(text=message.get("content") or "", tool_calls=calls,
                    finish_reason=choice.get("finish_reason") or "stop", model=str(body.get("model") or ""),
                    usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
                    raw=dict(body))


class BatchJob:
    """One provider batch: poll it with :meth:`status`, collect it with :meth:`results`.

    Every method has an async twin (``astatus``, ``aresults``, ``acancel``). ``to_dict`` and
    :meth:`from_dict` let a later process pick the job up again (plain JSON, no pickle).
    """

    def __init__(self, chain: Chain, target: Target, batch_id: str, requests: Sequence[Request], *,
                 discount: float, submitted_at: float | None = None, info: Mapping[str, Any] | None = None) -> None:
        self.chain = chain
        self.target = target
        self.id = batch_id
        self.requests = list(requests)
        self.discount = discount
        self.submitted_at = submitted_at or time.time()
        self.info: dict[str, Any] = dict(info or {})
        self._outcomes: list[BatchOutcome] | None = None

    def __repr__(self) -> str:
        return f"BatchJob(id={self.id!r}, target={self.target.name!r}, status={self.info.get('status')!r}, " \
               f"requests={len(self.requests)})"

    @property
    def counts(self) -> dict[str, int]:
        """The provider's request counts: total, completed, failed."""
        return dict(self.info.get("request_counts") or {})

    # -- provider calls ------------------------------------------------------------------------
    async def _call(self, name: str, **kwargs: Any) -> Any:
        provider, _, conn = _connection(self.target)
        _seam.check_paid_call(self.target.model, conn.get("api_base"))
        try:
            return await getattr(_seam.litellm_module(), name)(custom_llm_provider=provider, **conn, **kwargs)
        except CostmwError:
            raise
        except Exception as exc:
            raise _seam.map_litellm_error(exc, self.target.name) from exc

    async def _read_file(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        content = await self._call("afile_content", file_id=file_id)
        raw = getattr(content, "content", content)
        text = raw.decode() if isinstance(raw, (bytes, bytearray)) else str(getattr(content, "text", raw))
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    async def arefresh(self) -> dict[str, Any]:
        """Fetch the batch from the provider; returns (and keeps in ``info``) its fields."""
        batch = await self._call("aretrieve_batch", batch_id=self.id)
        data = batch.model_dump() if hasattr(batch, "model_dump") else dict(batch)
        self.info = {k: v for k, v in data.items() if not k.startswith("_")}
        return dict(self.info)

    async def astatus(self) -> str:
        """The provider's status: validating, in_progress, finalizing, completed, failed, expired, ..."""
        return str((await self.arefresh()).get("status"))

    def status(self) -> str:
        return self.chain.run_sync(self.astatus())  # type: ignore[no-any-return]

    async def acancel(self) -> str:
        """Ask the provider to cancel the batch; requests not yet run come back as errors."""
        batch = await self._call("acancel_batch", batch_id=self.id)
        self.info["status"] = str(getattr(batch, "status", "cancelling"))
        return str(self.info["status"])

    def cancel(self) -> str:
        return self.chain.run_sync(self.acancel())  # type: ignore[no-any-return]

    # -- results --------------------------------------------------------------------------------
    async def aresults(self, *, wait: bool = False, poll_s: float = 30.0,
                       timeout_s: float | None = None) -> list[BatchOutcome]:
        """One outcome per request, in submission order, once the batch has ended.

        With ``wait=True`` polls every ``poll_s`` seconds (up to ``timeout_s``); otherwise raises
        :class:`BatchNotReadyError` while the batch is still running.
        """
        if self._outcomes is not None:
            return list(self._outcomes)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        status = await self.astatus()
        while status not in TERMINAL:
            if not wait:
                raise BatchNotReadyError(f"batch {self.id} is {status}; poll status() or call results(wait=True)")
            if deadline is not None and time.monotonic() >= deadline:
                raise BatchNotReadyError(f"batch {self.id} is still {status} after timeout_s={timeout_s}")
            await asyncio.sleep(poll_s)
            status = await self.astatus()
        records = [*await self._read_file(self.info.get("output_file_id")),
                   *await self._read_file(self.info.get("error_file_id"))]
        self._outcomes = self._collect(status, records)
        return list(self._outcomes)

    def results(self, *, wait: bool = False, poll_s: float = 30.0,
                timeout_s: float | None = None) -> list[BatchOutcome]:
        return self.chain.run_sync(  # type: ignore[no-any-return]
            self.aresults(wait=wait, poll_s=poll_s, timeout_s=timeout_s))

    def _collect(self, status: str, records: Iterable[Mapping[str, Any]]) -> list[BatchOutcome]:
        by_id = {str(r.get("custom_id")): r for r in records}
        why_missing = self._batch_error(status)
        outcomes = []
        for request in self.requests:
            record = by_id.get(request.id)
            response = (record or {}).get("response") or {}
            if record is not None and response.get("status_code") == 200 and not record.get("error"):
                outcome = BatchOutcome(request, self._priced(request, _to_response(response.get("body") or {})))
            else:
                outcome = BatchOutcome(request, error=_error_text(record) if record else why_missing)
            self._record(outcome)
            outcomes.append(outcome)
        return outcomes

    def _batch_error(self, status: str) -> str:
        errors = (self.info.get("errors") or {}).get("data") or []
        detail = "; ".join(str(e.get("message")) for e in errors if isinstance(e, Mapping))
        return f"batch {self.id} ended {status} without an answer for this request" + (f": {detail}" if detail else "")

    def _priced(self, request: Request, response: Response) -> Response:
        """The call, with the batch discount as a fact; the chain prices it and records the row."""
        response.model = response.model or self.target.model
        response.served_by = f"batch:{self.target.name}"
        if not response.usage.prompt_tokens and not response.usage.completion_tokens:
            response.usage = estimate_usage(request, response, response.model)
        request.context.info.update(batch_api=True, batch_id=self.id)
        request.context.remember("served", request)
        request.context.remember("served_target", self.target)
        request.context.facts.call(self.target, response.usage, model=response.model, discount=self.discount,
                                   discount_by="batch_api")
        return response

    def _record(self, outcome: BatchOutcome) -> None:
        started = time.perf_counter() - max(0.0, time.time() - self.submitted_at)
        if outcome.response is not None:
            outcome.response = self.chain.settle(outcome.request, outcome.response, started)
        else:
            outcome.request.context.info.update(batch_api=True, batch_id=self.id)
            error = RequestError(outcome.error or "no answer", request=outcome.request)
            self.chain.settle(outcome.request, None, started, error=error, status="error")

    # -- persistence ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields to pick the job up later with :meth:`from_dict`."""
        return {"batch_id": self.id, "target": self.target.name, "discount": self.discount,
                "submitted_at": self.submitted_at, "requests": [r.to_dict() for r in self.requests]}

    @classmethod
    def from_dict(cls, chain: Chain, data: Mapping[str, Any]) -> BatchJob:
        target = chain.targets.get(str(data.get("target")))
        if target is None:
            raise ConfigError(f"BatchJob.from_dict: the chain has no target named {data.get('target')!r}")
        requests = [Request(messages=tuple(r["messages"]), model=r["model"], params=dict(r.get("params") or {}),
                            metadata=dict(r.get("metadata") or {}), options=Options.coerce(r.get("options")),
                            id=r["id"]) for r in data["requests"]]
        for r in requests:
            r.context.chain = chain
        return cls(chain, target, str(data["batch_id"]), requests, discount=float(data["discount"]),
                   submitted_at=float(data["submitted_at"]))


async def asubmit_batch(chain: Chain, requests: Iterable[Any], *, completion_window: str = "24h",
                        model: str | None = None, target: Target | str | None = None,
                        batch_discount: float | None = None,
                        metadata: Mapping[str, str] | None = None) -> BatchJob:
    """Upload ``requests`` as one provider batch and return its :class:`BatchJob`.

    ``requests`` items are :class:`Request` objects, dicts with ``messages`` (and optionally
    ``model``, ``metadata``, ``options``, model parameters), or plain message lists. ``batch_discount`` is the
    fraction taken off the live price (default: :data:`BATCH_DISCOUNTS` for the provider, else 0.5).
    """
    if not isinstance(completion_window, str) or not completion_window:
        raise InvalidRequestError(f"completion_window must be a string like '24h', got {completion_window!r}")
    if batch_discount is not None and not 0.0 <= batch_discount < 1.0:
        raise ConfigError(f"batch_discount must be a fraction in [0, 1), got {batch_discount!r}")
    items = list(requests)
    if not items:
        raise InvalidRequestError("submit_batch needs at least one request")
    batch = [_as_request(item, i, model or chain.default_model, chain) for i, item in enumerate(items)]
    if len({r.id for r in batch}) != len(batch):
        raise InvalidRequestError("submit_batch: the same Request appears twice; each needs its own id")
    chosen = _pick_target(chain, batch, target)
    provider, provider_model, _ = _connection(chosen)
    discount = BATCH_DISCOUNTS.get(provider, DEFAULT_DISCOUNT) if batch_discount is None else batch_discount
    lines = [json.dumps({"custom_id": r.id, "method": "POST", "url": ENDPOINT,
                         "body": {"model": provider_model, "messages": [dict(m) for m in r.messages],
                                  **dict(r.params)}}) for r in batch]
    job = BatchJob(chain, chosen, "", batch, discount=discount)
    upload = await job._call("acreate_file", file=("costmw-batch.jsonl", "\n".join(lines).encode()),
                             purpose="batch")
    created = await job._call("acreate_batch", completion_window=completion_window, endpoint=ENDPOINT,
                              input_file_id=upload.id, metadata=dict(metadata or {"source": "costmw"}))
    job.id = str(created.id)
    job.info = {"status": str(getattr(created, "status", "validating")), "input_file_id": upload.id}
    return job
