"""LlamaCppTarget: a quantized GGUF model run by llama.cpp (the ``gguf`` extra, llama-cpp-python)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from costmw.plugin_api import (
    Capabilities,
    Chunk,
    ConfigError,
    ContextWindowError,
    InvalidRequestError,
    Price,
    Request,
    Response,
    Usage,
    missing_extra,
)

from ._base import GenParams, LocalTarget, chat_messages, join_samples, token_entry
from ._gguf import is_gguf
from ._registry import SharedModel, shared_model

__all__ = ["LlamaCppTarget"]

_CALIBRATION_TEXT = "The quick brown fox jumps over the lazy dog while the farmer counts his sheep. " * 12


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise missing_extra("llama-cpp-python", "gguf", exc) from exc
    return llama_cpp


class _StepLogprobs:
    """A llama.cpp logits processor that records the log-probabilities of each generated position
    (the model's raw distribution: it runs before any sampling step) and changes nothing."""

    def __init__(self) -> None:
        self.steps: list[Any] = []

    def __call__(self, input_ids: Any, logits: Any) -> Any:
        import numpy as np

        values = np.asarray(logits, dtype=np.float64)
        top = values.max()
        self.steps.append((values - top - np.log(np.exp(values - top).sum())).astype(np.float32))
        return logits

    def content(self, llm: Any, prompt_len: int, text: str, top: int) -> list[dict[str, Any]]:
        """OpenAI-style ``logprobs.content`` for the answer ``text`` (cut at its stop text)."""
        ids = [int(t) for t in llm.input_ids[prompt_len:llm.n_tokens]]
        written = b"".join(llm.detokenize([t]) for t in ids)
        wanted = text.encode("utf-8")
        if len(written) < len(wanted):  # the last token was sampled but never evaluated
            ids += [int(t) for t in llm.tokenize(wanted[len(written):], add_bos=False, special=False)][:1]
        out: list[dict[str, Any]] = []
        at = 0
        for j, token in enumerate(ids[: len(self.steps)]):
            if at >= len(wanted):
                break
            piece = llm.detokenize([token])
            at += len(piece)
            row = self.steps[j]
            best = _top(row, top)
            out.append(token_entry(piece.decode("utf-8", "replace"), float(row[token]),
                                   [(llm.detokenize([i]).decode("utf-8", "replace"), float(row[i])) for i in best]))
        return out


def _top(row: Any, k: int) -> list[int]:
    import numpy as np

    if k <= 0:
        return []
    idx = np.argpartition(-row, k)[:k]
    return [int(i) for i in idx[np.argsort(-row[idx])]]


class LlamaCppTarget(LocalTarget):
    """A GGUF model run by llama.cpp in this process, with the chat template stored in the file.

    The model loads on first use, once per process for each file and context size; llama.cpp
    serves one request at a time per model, so calls on a shared model are serialised.
    """

    kind = "llamacpp"

    def __init__(
        self,
        gguf_path: str | Path,
        *,
        name: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        max_new_tokens: int = 256,
        chat_template: str | None = None,
        price: Price | tuple[float, float] | dict[str, float] | None = None,
        hourly_usd: float | None = None,
    ) -> None:
        path = Path(gguf_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"GGUF file {str(path)!r} does not exist")
        if not is_gguf(path):
            raise ConfigError(f"{str(path)!r} is not a GGUF file (it does not start with the GGUF magic bytes); "
                              "convert the model to GGUF with llama.cpp's tools, or load it with HFTarget")
        if max_new_tokens < 1 or n_ctx < 16:
            raise ConfigError(f"max_new_tokens must be >= 1 and n_ctx >= 16, got {max_new_tokens} and {n_ctx}")
        label = path.stem
        super().__init__(name or label, model=label, price=price, hourly_usd=hourly_usd,
                         capabilities=Capabilities(tools=False, json_mode=False, streaming=True,
                                                   context_window=n_ctx, batching=False))
        self.path = path.resolve()
        self.n_ctx, self.n_gpu_layers, self.max_new_tokens = n_ctx, n_gpu_layers, max_new_tokens
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.chat_template = chat_template
        self._entry: SharedModel | None = None
        self._setup = threading.Lock()

    # -- loading -------------------------------------------------------------------------------

    def _load(self, key: tuple[Any, ...]) -> SharedModel:
        llama_cpp = _llama_cpp()
        llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                              n_gpu_layers=self.n_gpu_layers, verbose=False)
        template = self.chat_template or llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigError(f"{str(self.path)!r} carries no chat template; pass chat_template= (a Jinja template)")
        eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
        bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
        formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return SharedModel(key=key, model=llm, tokenizer=formatter, info={"eos": eos, "source": str(self.path)})

    def _ready(self) -> SharedModel:
        if self._entry is None:
            with self._setup:
                if self._entry is None:
                    key = ("llamacpp", str(self.path), self.n_ctx, self.n_gpu_layers, self.n_threads,
                           self.chat_template)
                    self._entry = shared_model(key, lambda: self._load(key))
        return self._entry

    def load(self) -> LlamaCppTarget:
        """Load the model now (it otherwise loads on first use); returns the target."""
        self._ready()
        return self

    # -- requests ------------------------------------------------------------------------------

    def _prompt(self, entry: SharedModel, request: Request) -> list[int]:
        formatted = entry.tokenizer(messages=chat_messages(request.messages))
        tokens: list[int] = entry.model.tokenize(formatted.prompt.encode("utf-8"),
                                                 add_bos=not formatted.added_special, special=True)
        if len(tokens) >= self.n_ctx:
            raise ContextWindowError(f"target {self.name!r}: prompt of {len(tokens)} tokens does not fit its "
                                     f"context window of {self.n_ctx}", target=self.name, request=request)
        return tokens

    def _kwargs(self, entry: SharedModel, p: GenParams, prompt_len: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"max_tokens": min(p.max_tokens, self.n_ctx - prompt_len),
                                  "stop": [*p.stop, entry.info["eos"]], "temperature": p.temperature,
                                  "seed": p.seed}
        if p.sampling:
            kwargs.update(top_p=p.top_p if p.top_p is not None else 1.0, top_k=p.top_k or 0, min_p=0.0)
        if p.repetition_penalty is not None:
            kwargs["repeat_penalty"] = p.repetition_penalty
        return kwargs

    def _generate(self, request: Request, p: GenParams, on_text: Callable[[str], None] | None,
                  cancel: threading.Event) -> Response:
        """One completion (streamed to ``on_text`` when given); runs in a worker thread."""
        entry = self._ready()
        start = time.perf_counter()
        with entry.lock:
            llm = entry.model
            tokens = self._prompt(entry, request)
            kwargs = self._kwargs(entry, p, len(tokens))
            steps = _StepLogprobs() if p.logprobs else None
            if steps is not None:
                kwargs["logits_processor"] = [steps]
            if on_text is None:
                raw = llm.create_completion(tokens, **kwargs)
                choice, usage = raw["choices"][0], raw["usage"]
                text, finish, made = choice["text"], choice["finish_reason"], int(usage["completion_tokens"])
            else:
                parts: list[str] = []
                finish = "stop"
                for part in llm.create_completion(tokens, stream=True, **kwargs):
                    choice = part["choices"][0]
                    if choice["text"]:
                        parts.append(choice["text"])
                        on_text(choice["text"])
                    finish = choice.get("finish_reason") or finish
                    if cancel.is_set():
                        break
                text = "".join(parts)
                made = len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
            logprobs = None if steps is None else steps.content(llm, len(tokens), text, p.top_logprobs)
        return Response(text=text, finish_reason=finish or "stop", model=self.model,
                        usage=Usage(len(tokens), made), latency_s=time.perf_counter() - start, logprobs=logprobs)

    async def acomplete(self, request: Request) -> Response:
        p = GenParams.from_request(request, self.max_new_tokens, self.name)
        await self._price_ready()
        answers = []
        for i in range(p.n):  # llama.cpp answers one sequence at a time
            seed = p.seed if p.seed is None or i == 0 else p.seed + i
            answers.append(await asyncio.to_thread(self._generate, request, replace(p, seed=seed), None,
                                                   threading.Event()))
        return self._finish(request, join_samples(answers))

    async def astream(self, request: Request) -> AsyncIterator[Chunk]:
        """Stream the answer as llama.cpp produces it; generation runs in a worker thread."""
        p = GenParams.from_request(request, self.max_new_tokens, self.name)
        if p.n > 1:
            raise InvalidRequestError(f"target {self.name!r} streams one answer; n must be 1 in a stream")
        await self._price_ready()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        cancel = threading.Event()

        def on_text(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        def work() -> Response:
            try:
                return self._generate(request, p, on_text, cancel)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            while (piece := await queue.get()) is not None:
                yield Chunk(text=piece)
            response = await task
        finally:
            cancel.set()
        yield Chunk(finish_reason=response.finish_reason)
        yield Chunk(response=self._finish(request, response))

    # -- pricing -------------------------------------------------------------------------------

    def _measure_throughput(self, batch_size: int) -> tuple[float, float]:
        entry = self._ready()
        llm, new = entry.model, 16
        with entry.lock:
            tokens = llm.tokenize(_CALIBRATION_TEXT.encode("utf-8"), add_bos=True)[:64]
            timings: dict[int, list[float]] = {1: [], new: []}
            made = 1
            for max_tokens in (1, 1, 1, new, new):  # a warm-up, then each length twice (best of two)
                llm.reset()
                start = time.perf_counter()
                out = llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0)
                timings[max_tokens].append(time.perf_counter() - start)
                made = int(out["usage"]["completion_tokens"])
        prefill, total = min(timings[1][1:]), min(timings[new])
        if made < 2:  # the answer ended at once: count the whole call
            return len(tokens) / max(prefill, 1e-6), made / max(total, 1e-6)
        return len(tokens) / max(prefill, 1e-6), (made - 1) / max(total - prefill, 1e-6)
