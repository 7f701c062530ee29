"""What every local target shares: generation parameters, stop text, and honest pricing.

A local model has no list price. It is priced either per 1M tokens (``price=``) or per hour of
the machine it runs on (``hourly_usd=``); the hourly price is turned into a per-token price with
the throughput measured the first time the target is used (the median of several warm runs), so
the ledger's savings are real.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from costmw.plugin_api import (
    Capabilities,
    ConfigError,
    InvalidRequestError,
    Message,
    Price,
    Request,
    Response,
    Target,
    Usage,
    message_text,
)

__all__ = ["GenParams", "LocalTarget", "chat_messages", "cut_at_stop", "join_samples", "stop_holdback",
           "token_entry"]

_UNSUPPORTED = ("tools", "functions", "response_format")
_MAX_N = 16
_MAX_TOP_LOGPROBS = 20
#: Warm measurements whose median prices a target billed by the hour.
CALIBRATION_RUNS = 3


@dataclass(frozen=True, slots=True)
class GenParams:
    """Generation parameters of one request, checked and normalised."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    repetition_penalty: float | None = None
    n: int = 1  # answers to draw for the prompt (the first is the response's text)
    logprobs: bool = False  # return each answer token's log-probability
    top_logprobs: int = 0  # and this many most likely alternatives at each position

    @classmethod
    def from_request(cls, request: Request, default_max_tokens: int, target: str) -> GenParams:
        p = request.params
        for key in _UNSUPPORTED:
            if p.get(key):
                raise InvalidRequestError(f"target {target!r} (a local model) does not support {key!r}; "
                                          "route such requests to a model that does")
        n = 1 if p.get("n") is None else p["n"]
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_N:
            raise InvalidRequestError(f"n must be an integer from 1 to {_MAX_N}, got {n!r}")
        logprobs, top = _logprob_params(p)
        max_tokens = p.get("max_tokens", p.get("max_completion_tokens"))
        max_tokens = default_max_tokens if max_tokens is None else max_tokens
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise InvalidRequestError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        temperature = float(p.get("temperature") or 0.0)
        if temperature < 0:
            raise InvalidRequestError(f"temperature must be >= 0, got {temperature}")
        top_p = p.get("top_p")
        if top_p is not None and not 0 < float(top_p) <= 1:
            raise InvalidRequestError(f"top_p must be in (0, 1], got {top_p}")
        stop = p.get("stop") or ()
        stops = (stop,) if isinstance(stop, str) else tuple(stop)
        if not all(isinstance(s, str) and s for s in stops):
            raise InvalidRequestError(f"stop must be a non-empty string or a list of them, got {stop!r}")
        seed, top_k, rep = p.get("seed"), p.get("top_k"), p.get("repetition_penalty")
        return cls(max_tokens=max_tokens, temperature=temperature,
                   top_p=None if top_p is None else float(top_p), top_k=None if top_k is None else int(top_k),
                   stop=stops, seed=None if seed is None else int(seed),
                   repetition_penalty=None if rep is None else float(rep), n=n, logprobs=logprobs,
                   top_logprobs=top)

    @property
    def sampling(self) -> bool:
        return self.temperature > 0

    def group_key(self) -> tuple[Any, ...]:
        """Everything but max_tokens and stop: requests with equal keys can share one generate call."""
        return (self.temperature, self.top_p, self.top_k, self.seed, self.repetition_penalty)


def _logprob_params(p: Mapping[str, Any]) -> tuple[bool, int]:
    """``logprobs`` and ``top_logprobs`` checked as OpenAI checks them."""
    logprobs, top = p.get("logprobs"), p.get("top_logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise InvalidRequestError(f"logprobs must be true or false, got {logprobs!r}")
    if top is None:
        return bool(logprobs), 0
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= _MAX_TOP_LOGPROBS:
        raise InvalidRequestError(f"top_logprobs must be an integer from 0 to {_MAX_TOP_LOGPROBS}, got {top!r}")
    if top and not logprobs:
        raise InvalidRequestError("top_logprobs needs logprobs=True")
    return bool(logprobs), top


def token_entry(token: str, logprob: float, top: Sequence[tuple[str, float]] = ()) -> dict[str, Any]:
    """One answer token in OpenAI's ``logprobs.content`` format."""
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8")),
            "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))} for t, v in top]}


def join_samples(responses: Sequence[Response]) -> Response:
    """Several answers to one prompt (``n`` > 1) as one response: the first answer is its text, all of
    them are in ``info["choices"]`` (text, finish_reason, logprobs), and usage counts every token made."""
    first = responses[0]
    if len(responses) == 1:
        return first
    first.info["choices"] = [{"text": r.text, "finish_reason": r.finish_reason, "logprobs": r.logprobs}
                             for r in responses]
    first.usage = Usage(first.usage.prompt_tokens, sum(r.usage.completion_tokens for r in responses))
    return first


def chat_messages(messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """Messages as plain ``{"role", "content"}`` text, which every chat template accepts."""
    out: list[Message] = []
    for m in messages:
        role = str(m.get("role"))
        out.append({"role": "system" if role == "developer" else role, "content": message_text(m)})
    return out


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` up to the first stop sequence, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def stop_holdback(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` may still grow into a stop sequence."""
    hold = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), hold, -1):
            if text.endswith(s[:n]):
                hold = n
                break
    return hold


class LocalTarget(Target):
    """A target that runs in this process: priced per 1M tokens or per hour of its machine."""

    def __init__(self, name: str, *, model: str, price: Price | tuple[float, float] | dict[str, float] | None,
                 hourly_usd: float | None, capabilities: Capabilities) -> None:
        if price is not None and hourly_usd is not None:
            raise ConfigError(f"target {name!r}: give price= (USD per 1M tokens) or hourly_usd=, not both")
        if hourly_usd is not None and not hourly_usd >= 0:
            raise ConfigError(f"target {name!r}: hourly_usd must be >= 0, got {hourly_usd!r}")
        super().__init__(name, model=model, price=price, capabilities=capabilities)
        self._price_looked_up = True  # never take a hosted model's list price for a local one
        self.hourly_usd = None if hourly_usd is None else float(hourly_usd)
        self.measured_tokens_per_s: float | None = None
        self.measured_prompt_tokens_per_s: float | None = None
        self.calibration: dict[str, float] | None = None  # the last measurement (see calibrate)
        self._calibration_lock = threading.Lock()
        self.manifest: dict[str, Any] | None = None  # set by costmw.adapters.load()
        self.metrics: dict[str, Any] = {}  # what the tool that made the model measured

    @property
    def price(self) -> Price | None:
        if self._price is None and self.hourly_usd is not None:
            self.calibrate()
        return self._price

    @price.setter
    def price(self, value: Price | tuple[float, float] | dict[str, float] | None) -> None:
        self._price = Price.coerce(value)

    def calibrate(self, batch_size: int = 1, runs: int = CALIBRATION_RUNS) -> dict[str, float]:
        """Measure throughput (prompt and generated tokens/s) and, with ``hourly_usd``, set the price.

        One warm-up measurement is thrown away, then the median of ``runs`` warm ones is kept, so a
        single slow moment of a shared machine does not set the price. Runs once on first use; call it
        again (e.g. with the batch size you serve at) to re-measure. What was measured is kept in
        ``calibration`` (and in :meth:`describe`).
        """
        if runs < 1:
            raise ConfigError(f"target {self.name!r}: calibrate needs runs >= 1, got {runs}")
        with self._calibration_lock:
            start = time.perf_counter()
            self._measure_throughput(max(1, batch_size))  # warm-up: caches, allocator, lazy kernels
            samples = [self._measure_throughput(max(1, batch_size)) for _ in range(runs)]
            prompt_tps = statistics.median(p for p, _ in samples)
            gen_tps = statistics.median(g for _, g in samples)
            self.measured_prompt_tokens_per_s, self.measured_tokens_per_s = prompt_tps, gen_tps
            result = {"prompt_tokens_per_s": prompt_tps, "tokens_per_s": gen_tps, "runs": float(runs),
                      "tokens_per_s_min": min(g for _, g in samples), "tokens_per_s_max": max(g for _, g in samples),
                      "batch_size": float(batch_size), "seconds": time.perf_counter() - start}
            if self.hourly_usd is not None:
                per_second = self.hourly_usd / 3600.0
                self._price = Price(per_second / prompt_tps * 1e6, per_second / gen_tps * 1e6)
                result.update(input_per_1m=self._price.input_per_1m, output_per_1m=self._price.output_per_1m)
            self.calibration = dict(result)
            return result

    async def acalibrate(self, batch_size: int = 1) -> dict[str, float]:
        """:meth:`calibrate` in a worker thread."""
        return await asyncio.to_thread(self.calibrate, batch_size)

    async def _price_ready(self) -> None:
        """Measure throughput off the event loop before the first priced call."""
        if self._price is None and self.hourly_usd is not None:
            await self.acalibrate()

    def _measure_throughput(self, batch_size: int) -> tuple[float, float]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the target is and what it costs, for ``repr``, the CLI and docs."""
        price = self._price
        return {"name": self.name, "kind": self.kind, "model": self.model, "hourly_usd": self.hourly_usd,
                "price_per_1m": None if price is None else {"input": price.input_per_1m,
                                                           "output": price.output_per_1m},
                "measured_tokens_per_s": self.measured_tokens_per_s,
                "measured_prompt_tokens_per_s": self.measured_prompt_tokens_per_s,
                "calibration": self.calibration}
