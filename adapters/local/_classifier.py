"""ClassifierTarget: a sequence-classification model (DistilBERT-class) answering label tasks in text."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from costmw.plugin_api import Capabilities, ConfigError, Price, Request, Response, Usage, third_party_quiet

from ._base import LocalTarget
from ._hf_load import import_torch_transformers, local_config, resolve_source
from ._registry import SharedModel, shared_model

__all__ = ["ClassifierTarget"]

_CALIBRATION_TEXT = "The service was quick and the staff were friendly, but the room was far too small. " * 6


def _labels_from(labels: Sequence[str] | Mapping[int, str] | None, config: Mapping[str, Any]) -> list[str] | None:
    if labels is None:
        id2label = config.get("id2label")
        if not id2label:
            return None
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    if isinstance(labels, Mapping):
        return [str(labels[k]) for k in sorted(labels, key=int)]
    if isinstance(labels, str):
        raise ConfigError("labels must be a list of label names, e.g. ['negative', 'positive']")
    return [str(x) for x in labels]


class ClassifierTarget(LocalTarget):
    """Answers a label task ("positive" / "negative", a topic, an intent) with a classifier.

    The text classified is the last user message; the answer is the label's name, and
    ``response.info["scores"]`` holds the probability of every label. ``labels=`` names the
    classes in index order (default: the model config's ``id2label``). ``abatch`` classifies a
    group in one padded forward pass.
    """

    kind = "classifier"

    def __init__(
        self,
        path: str | Path,
        labels: Sequence[str] | Mapping[int, str] | None = None,
        *,
        name: str | None = None,
        max_length: int = 512,
        price: Price | tuple[float, float] | dict[str, float] | None = None,
        hourly_usd: float | None = None,
    ) -> None:
        self.source = resolve_source(path)
        config = local_config(self.source) or {}
        arch = config.get("architectures") or []
        if arch and not any(str(a).endswith("ForSequenceClassification") for a in arch):
            raise ConfigError(f"{str(path)!r} is not a sequence classifier (it is {', '.join(arch)}); "
                              "ClassifierTarget needs a model fine-tuned for classification, e.g. DistilBERT's "
                              "ForSequenceClassification; use HFTarget for causal LMs")
        self.labels = _labels_from(labels, config)
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels must be distinct, got {self.labels}")
        n = config.get("num_labels") or (len(config["id2label"]) if config.get("id2label") else None)
        if self.labels is not None and n is not None and len(self.labels) != n:
            raise ConfigError(f"{len(self.labels)} labels given but the model {str(path)!r} has {n} classes")
        label = Path(self.source).name
        window = min(max_length, int(config.get("max_position_embeddings") or max_length))
        super().__init__(name or label, model=label, price=price, hourly_usd=hourly_usd,
                         capabilities=Capabilities(tools=False, json_mode=False, streaming=True,
                                                   context_window=window, batching=True))
        self.max_length = window
        self._entry: SharedModel | None = None
        self._setup = threading.Lock()

    def _load(self, key: tuple[Any, ...]) -> SharedModel:
        _, transformers = import_torch_transformers()
        try:
            with third_party_quiet():
                model = transformers.AutoModelForSequenceClassification.from_pretrained(self.source)
                tokenizer = transformers.AutoTokenizer.from_pretrained(self.source)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"could not load {self.source!r} as a sequence classifier: {exc}") from exc
        model.eval()
        return SharedModel(key=key, model=model, tokenizer=tokenizer, info={"source": self.source})

    def _ready(self) -> SharedModel:
        if self._entry is None:
            with self._setup:
                if self._entry is None:
                    key = ("classifier", self.source)
                    entry = shared_model(key, lambda: self._load(key))
                    if self.labels is None:
                        n = int(entry.model.config.num_labels)
                        id2label = entry.model.config.id2label or {}
                        self.labels = [str(id2label.get(i, f"LABEL_{i}")) for i in range(n)]
                    self._entry = entry
        return self._entry

    def load(self) -> ClassifierTarget:
        """Load the model now (it otherwise loads on first use); returns the target."""
        self._ready()
        return self

    def _classify(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        import torch

        entry = self._ready()
        enc = entry.tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length)
        with entry.lock, torch.inference_mode():
            logits = entry.model(**enc).logits
        probs = torch.softmax(logits.float(), dim=-1).tolist()
        return probs, [int(x) for x in enc["attention_mask"].sum(dim=1).tolist()]

    def _answer(self, requests: Sequence[Request]) -> list[Response]:
        start = time.perf_counter()
        probs, lengths = self._classify([r.last_user_text for r in requests])
        entry, labels = self._ready(), self.labels or []
        out = []
        for row, length in zip(probs, lengths, strict=True):
            best = max(range(len(row)), key=row.__getitem__)
            text = labels[best]
            made = len(entry.tokenizer(text, add_special_tokens=False)["input_ids"])
            out.append(Response(text=text, finish_reason="stop", model=self.model, usage=Usage(length, made),
                                latency_s=time.perf_counter() - start,
                                info={"scores": dict(zip(labels, row, strict=True)), "batch_size": len(requests)}))
        return out

    async def abatch(self, requests: Sequence[Request]) -> list[Response | BaseException]:
        """Classify every request in one padded forward pass."""
        if not requests:
            return []
        await self._price_ready()
        try:
            responses = await asyncio.to_thread(self._answer, requests)
        except Exception as exc:
            return [exc for _ in requests]
        return [self._finish(r, resp) for r, resp in zip(requests, responses, strict=True)]

    async def acomplete(self, request: Request) -> Response:
        result = (await self.abatch([request]))[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _measure_throughput(self, batch_size: int) -> tuple[float, float]:
        texts = [_CALIBRATION_TEXT] * batch_size
        self._classify(texts)  # warm-up
        start = time.perf_counter()
        _, lengths = self._classify(texts)
        rate = sum(lengths) / max(time.perf_counter() - start, 1e-6)
        return rate, rate  # a label costs about as much as a prompt token: there is no decoding
