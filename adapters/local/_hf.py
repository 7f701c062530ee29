"""HFTarget: a transformers causal LM as a target, with LoRA adapters, quantization and placement."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from costmw.plugin_api import Capabilities, Chunk, ConfigError, InvalidRequestError, Price, Request, Response

from ._base import GenParams, LocalTarget, join_samples
from ._hf_gen import Batch, run_generate
from ._hf_load import attach_adapters, check_quantize, load_causal_lm, local_config, resolve_source
from ._registry import SharedModel, shared_model

__all__ = ["HFTarget"]

_CALIBRATION_TEXT = "The quick brown fox jumps over the lazy dog while the farmer counts his sheep. " * 12


def _adapter_map(lora: Any) -> dict[str, str]:
    """``lora=`` as {name: directory}: a path, a list of paths, or a mapping of names to paths."""
    if lora is None:
        return {}
    if isinstance(lora, (str, Path)):
        lora = [lora]
    if isinstance(lora, Mapping):
        items = [(str(k), str(v)) for k, v in lora.items()]
    else:
        items = [(Path(v).name, str(v)) for v in lora]
    names = [k for k, _ in items]
    if len(set(names)) != len(names):
        raise ConfigError(f"lora adapter names must be unique, got {names}; pass a dict {{name: path}}")
    if "base" in names:
        raise ConfigError("'base' is reserved (metadata={'adapter': 'base'} selects the model without adapters)")
    return dict(items)


class HFTarget(LocalTarget):
    """A transformers causal LM running in this process.

    Loads lazily on first use, once per process for each base (targets over the same base share its
    weights). Requests are answered in a worker thread; ``abatch`` pads a group of requests on the
    left and answers them with one ``generate`` call. With several LoRA adapters on one base,
    ``options.adapter`` picks one per request (the first listed is the default, ``"base"`` turns
    them off).
    """

    kind = "hf"

    def __init__(
        self,
        path_or_name: str | Path,
        *,
        name: str | None = None,
        lora: str | Path | Sequence[str | Path] | Mapping[str, str | Path] | None = None,
        merge: bool = False,
        quantize: str | None = None,
        gguf_file: str | Path | None = None,
        device_map: str | dict[str, Any] | None = None,
        max_memory: dict[Any, Any] | None = None,
        dtype: str | None = None,
        max_new_tokens: int = 256,
        chat_template: str | None = None,
        context_window: int | None = None,
        price: Price | tuple[float, float] | dict[str, float] | None = None,
        hourly_usd: float | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        check_quantize(quantize, device_map)
        self.adapters = _adapter_map(lora)
        if merge and len(self.adapters) != 1:
            raise ConfigError(f"merge=True merges exactly one LoRA adapter into the base; got {len(self.adapters)}")
        if quantize == "int8" and self.adapters and not merge:
            raise ConfigError("quantize='int8' with a LoRA adapter needs merge=True (the adapter is merged into the "
                              "weights before they are quantized); to switch adapters per request, do not quantize")
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.source = resolve_source(path_or_name, gguf_file)
        config = local_config(self.source) or {}
        label = Path(str(gguf_file)).stem if gguf_file else Path(self.source).name.split("/")[-1]
        window = context_window or config.get("max_position_embeddings")
        super().__init__(name or label, model=label, price=price, hourly_usd=hourly_usd,
                         capabilities=Capabilities(tools=False, json_mode=False, streaming=True,
                                                   context_window=window, batching=True))
        self.quantize, self.merge, self.device_map, self.max_memory = quantize, merge, device_map, max_memory
        self.dtype, self.max_new_tokens, self.chat_template = dtype, max_new_tokens, chat_template
        self.trust_remote_code = trust_remote_code
        self.default_adapter: str | None = next(iter(self.adapters), None)
        self._entry: SharedModel | None = None
        self._peft_names: dict[str, str] = {}
        self._setup = threading.Lock()

    # -- loading -------------------------------------------------------------------------------

    def _key(self) -> tuple[Any, ...]:
        private = tuple(sorted(str(Path(p).resolve()) for p in self.adapters.values())) \
            if (self.merge or self.quantize == "int8") else ()
        memory = tuple(sorted((str(k), str(v)) for k, v in (self.max_memory or {}).items()))
        return ("causal-lm", self.source, self.quantize, repr(self.device_map), memory, str(self.dtype),
                self.trust_remote_code, private, self.merge)

    def load(self) -> HFTarget:
        """Load the model now (it otherwise loads on first use); returns the target."""
        self._ready()
        return self

    async def aload(self) -> HFTarget:
        return await asyncio.to_thread(self.load)

    def _ready(self) -> SharedModel:
        if self._entry is not None:
            return self._entry
        with self._setup:
            if self._entry is None:
                private = self.merge or self.quantize == "int8"
                adapters = tuple(self.adapters.values())
                entry = shared_model(self._key(), lambda: load_causal_lm(
                    self._key(), self.source, quantize=self.quantize, device_map=self.device_map,
                    max_memory=self.max_memory, dtype=self.dtype, trust_remote_code=self.trust_remote_code,
                    adapters=adapters if private else (), merge=self.merge))
                if self.adapters and not private:
                    by_path = attach_adapters(entry, adapters)
                    self._peft_names = {name: by_path[path] for name, path in self.adapters.items()}
                self._entry = entry
        return self._entry

    @property
    def loaded_model(self) -> Any:
        """The underlying transformers (or peft) model, loading it if needed."""
        return self._ready().model

    @property
    def tokenizer(self) -> Any:
        return self._ready().tokenizer

    # -- requests ------------------------------------------------------------------------------

    def _adapter_of(self, request: Request) -> str | None:
        chosen = request.options.adapter or self.default_adapter
        if (chosen is None or chosen == "base") and self.merge:
            raise InvalidRequestError(f"target {self.name!r} has its adapter merged into the weights; "
                                      "it cannot answer without it (use an unmerged target for 'base')")
        if chosen is None or chosen == "base":
            return None
        if chosen not in self.adapters:
            known = ", ".join(["base", *self.adapters]) if self.adapters else "none: this target has no adapters"
            raise InvalidRequestError(f"target {self.name!r} has no LoRA adapter {chosen!r} (known: {known})")
        return str(chosen)

    def _label(self, adapter: str | None) -> str:
        return self.model if adapter is None or self.merge else f"{self.model}+{adapter}"

    def _batch(self, requests: Sequence[Request], params: Sequence[GenParams]) -> Batch:
        labels = [self._adapter_of(r) for r in requests]
        return Batch(requests=requests, params=params, adapters=[None] * len(labels), labels=labels)

    def _run(self, batch: Batch) -> list[Response]:
        """Load if needed, pick each row's adapter, generate; runs in a worker thread."""
        start = time.perf_counter()
        entry = self._ready()
        batch.adapters = [None if a is None or self.merge else self._peft_names[a] for a in batch.labels]
        responses = run_generate(entry, batch, chat_template=self.chat_template,
                                 context_window=self.capabilities.context_window, model_label=self._label,
                                 target_name=self.name)
        for r in responses:
            r.latency_s = time.perf_counter() - start
        return responses

    async def abatch(self, requests: Sequence[Request]) -> list[Response | BaseException]:
        """Answer the requests with one padded ``generate`` call per group of equal sampling settings."""
        results: list[Response | BaseException | None] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[int]] = {}
        params: dict[int, GenParams] = {}
        for i, request in enumerate(requests):
            try:
                params[i] = GenParams.from_request(request, self.max_new_tokens, self.name)
                self._adapter_of(request)
            except InvalidRequestError as exc:
                results[i] = exc
                continue
            groups.setdefault(params[i].group_key(), []).append(i)
        if groups:
            await self._price_ready()
        for members in groups.values():
            rows = [i for i in members for _ in range(params[i].n)]  # n answers: n rows of one batch
            try:
                batch = self._batch([requests[i] for i in rows], [params[i] for i in rows])
                responses = await asyncio.to_thread(self._run, batch)
            except Exception as exc:
                for i in members:
                    results[i] = exc
                continue
            for i in members:
                mine = [r for row, r in zip(rows, responses, strict=True) if row == i]
                results[i] = self._finish(requests[i], join_samples(mine))
        return [r if r is not None else RuntimeError("no result") for r in results]

    async def acomplete(self, request: Request) -> Response:
        result = (await self.abatch([request]))[0]
        if isinstance(result, BaseException):
            raise result
        return result

    async def astream(self, request: Request) -> AsyncIterator[Chunk]:
        """Stream the answer token by token; generation runs in a worker thread, never on the loop."""
        params = GenParams.from_request(request, self.max_new_tokens, self.name)
        if params.n > 1:
            raise InvalidRequestError(f"target {self.name!r} streams one answer; n must be 1 in a stream")
        self._adapter_of(request)
        await self._price_ready()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        batch = self._batch([request], [params])

        def on_text(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        batch.on_text = on_text

        def work() -> list[Response]:
            try:
                return self._run(batch)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        task = asyncio.ensure_future(asyncio.to_thread(work))
        sent = ""
        try:
            while (piece := await queue.get()) is not None:
                sent += piece
                yield Chunk(text=piece)
            response = (await task)[0]
        finally:
            batch.cancel.set()  # a consumer that stops early stops generation at the next token
        if len(response.text) > len(sent) and response.text.startswith(sent):
            yield Chunk(text=response.text[len(sent):])
        yield Chunk(finish_reason=response.finish_reason)
        yield Chunk(response=self._finish(request, response))

    # -- pricing -------------------------------------------------------------------------------

    def _measure_throughput(self, batch_size: int) -> tuple[float, float]:
        """Prompt and generated tokens/s: the best of two timings of a 64-token prompt answered with
        one token, then with 16 (best of two, since a shared machine only ever makes timings slower)."""
        import torch

        entry = self._ready()
        tokenizer, model = entry.tokenizer, entry.model
        ids = tokenizer(_CALIBRATION_TEXT, return_tensors="pt").input_ids[:, :64].repeat(batch_size, 1)
        ids = ids.to(next(model.parameters()).device)
        new = 16

        def timed(tokens: int) -> float:
            start = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, min_new_tokens=tokens,
                           do_sample=False, pad_token_id=tokenizer.pad_token_id)
            return time.perf_counter() - start

        with entry.lock, torch.inference_mode():
            timed(2)  # warm-up
            prefill = min(timed(1), timed(1))
            total = min(timed(new), timed(new))
        decode = max(total - prefill, 1e-6)
        return ids.numel() / max(prefill, 1e-6), batch_size * (new - 1) / decode
