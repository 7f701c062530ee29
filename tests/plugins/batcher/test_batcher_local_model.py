"""The batcher in front of a real local model (SmolLM2-135M through HFTarget)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from costmw.plugins import Batcher

from costmw import Chain


@pytest.mark.slow
async def test_concurrent_callers_share_one_generate_and_keep_their_own_limits(smollm2_dir: Path) -> None:
    from costmw.adapters import HFTarget

    target = HFTarget(str(smollm2_dir), name="smollm2")
    batcher = Batcher(max_batch_size=8, max_wait_ms=200)
    chain = Chain([batcher], [target])
    limits = {"Name a colour.": 2, "Name a fruit.": 4, "Name an animal.": 6}
    out = await asyncio.gather(*(
        chain.acomplete([{"role": "user", "content": q}], model="smollm2", max_tokens=n, temperature=0)
        for q, n in limits.items()))
    for response, limit in zip(out, limits.values(), strict=True):
        assert response.served_by == "target:smollm2" and response.text.strip()
        assert 0 < response.usage.completion_tokens <= limit
        assert response.info["batch"]["batch_size"] == 3
    assert batcher.stats()["batches"] == 1
    await batcher.aclose()
