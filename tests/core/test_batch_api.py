"""Batch API mode against the fake OpenAI-compatible server's /v1/files and /v1/batches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from costmw.adapters import LiteLLMTarget, MockTarget
from costmw.plugins import Batcher

from costmw import BatchJob, BatchNotReadyError, Chain, ConfigError, InvalidRequestError, Request, TargetError
from costmw.testing import FakeOpenAIServer, forbid_paid_calls
from costmw.testing._fake_batches import FakeBatchAPI, install_batch_routes

MODEL = "openai/gpt-4o-mini"


def _questions(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


@pytest.fixture
def batch_api(fake_openai: FakeOpenAIServer) -> FakeBatchAPI:
    return install_batch_routes(fake_openai)


@pytest.fixture
def chain(fake_openai: FakeOpenAIServer) -> Iterator[Chain]:
    target = LiteLLMTarget(MODEL, api_base=fake_openai.url, api_key="sk-test-key-not-real-000000")
    with Chain([Batcher()], [target], default_model=MODEL) as c:
        yield c


def test_a_job_goes_from_submitted_to_completed(chain: Chain, batch_api: FakeBatchAPI) -> None:
    job = chain.submit_batch(_questions(3), completion_window="24h")
    assert isinstance(job, BatchJob) and job.info["status"] == "validating"
    with pytest.raises(BatchNotReadyError, match="in_progress"):
        job.results()
    assert [job.status(), job.status()] == ["finalizing", "completed"]
    assert job.counts == {"total": 3, "completed": 3, "failed": 0}
    outcomes = job.results()
    assert [o.response.text for o in outcomes if o.response] == [f"echo: question {i}" for i in range(3)]
    assert all(o.ok and o.error is None for o in outcomes)
    assert [o.request.id for o in outcomes] == [r.id for r in job.requests]
    # the provider saw plain chat requests under the provider's model name
    sent = [json.loads(line) for line in batch_api.files[job.info["input_file_id"]][1].decode().splitlines()]
    assert {line["body"]["model"] for line in sent} == {"gpt-4o-mini"} and sent[0]["url"] == "/v1/chat/completions"


def test_batch_results_are_priced_at_the_discount_and_counted_apart(chain: Chain, batch_api: FakeBatchAPI) -> None:
    chain.complete(_questions(1)[0])  # one live call for comparison
    job = chain.submit_batch(_questions(2))
    outcomes = job.results(wait=True, poll_s=0.01, timeout_s=10)
    job.results()  # asking again does not write the rows twice
    rows = chain.ledger.rows()
    assert len(rows) == 3
    batch_rows = [r for r in rows if r.info.get("batch_api")]
    assert len(batch_rows) == 2 and all(r.served_by == f"batch:{MODEL}" for r in batch_rows)
    for row, outcome in zip(batch_rows, outcomes, strict=True):
        assert row.request_id == outcome.request.id and row.info["batch_id"] == job.id
        assert row.cost_usd > 0 and row.cost_usd == pytest.approx(row.baseline_cost_usd * 0.5)
        assert row.savings["batch_api"] == pytest.approx(row.cost_usd)
    summary = chain.ledger.summary()
    assert set(summary["by_target"]) == {f"target:{MODEL}", f"batch:{MODEL}"}
    assert summary["by_target"][f"batch:{MODEL}"]["calls"] == 2
    assert summary["by_plugin"]["batch_api"] == pytest.approx(sum(r.cost_usd for r in batch_rows))


def test_the_discount_can_be_set_per_job(chain: Chain, batch_api: FakeBatchAPI) -> None:
    job = chain.submit_batch(_questions(1), batch_discount=0.2)
    [outcome] = job.results(wait=True, poll_s=0.01)
    assert outcome.response is not None
    assert outcome.response.cost_usd == pytest.approx(outcome.response.baseline_cost_usd * 0.8)


def test_a_failed_batch_gives_every_request_the_reason(chain: Chain, batch_api: FakeBatchAPI) -> None:
    job = chain.submit_batch(_questions(2))
    batch_api.fail(job.id, "quota exceeded for batch jobs")
    assert job.status() == "failed"
    outcomes = job.results()
    assert [o.ok for o in outcomes] == [False, False]
    assert all("ended failed" in (o.error or "") and "quota exceeded" in (o.error or "") for o in outcomes)
    rows = chain.ledger.rows()
    assert len(rows) == 2 and all(r.error and r.info["batch_api"] for r in rows)


def test_an_expired_batch_returns_what_it_finished(chain: Chain, batch_api: FakeBatchAPI) -> None:
    job = chain.submit_batch(_questions(3))
    batch_api.expire(job.id, processed=1)
    outcomes = job.results(wait=True, poll_s=0.01)
    assert job.info["status"] == "expired"
    assert [o.ok for o in outcomes] == [True, False, False]
    assert outcomes[0].response is not None and outcomes[0].response.text == "echo: question 0"
    assert all("batch_expired" in (o.error or "") for o in outcomes[1:])


def test_a_held_job_stays_in_progress_and_can_be_cancelled(chain: Chain, batch_api: FakeBatchAPI) -> None:
    job = chain.submit_batch(_questions(2))
    assert job.status() == "in_progress"
    batch_api.hold(job.id)
    assert [job.status(), job.status()] == ["in_progress", "in_progress"]
    with pytest.raises(BatchNotReadyError, match="after timeout_s"):
        job.results(wait=True, poll_s=0.01, timeout_s=0.05)
    assert job.cancel() == "cancelling"
    outcomes = job.results(wait=True, poll_s=0.01)
    assert job.info["status"] == "cancelled" and not any(o.ok for o in outcomes)


def test_one_rejected_request_does_not_fail_the_others(fake_openai: FakeOpenAIServer, chain: Chain,
                                                        batch_api: FakeBatchAPI) -> None:
    def responder(body: dict[str, Any]) -> str:
        text = body["messages"][-1]["content"]
        if "poison" in text:
            raise ValueError("content policy")
        return f"ok {text}"

    fake_openai.responder = responder
    job = chain.submit_batch([[{"role": "user", "content": t}] for t in ("a", "poison", "c")])
    outcomes = job.results(wait=True, poll_s=0.01)
    assert [o.response.text if o.response else None for o in outcomes] == ["ok a", None, "ok c"]
    assert "HTTP 400: content policy" in (outcomes[1].error or "")


async def test_async_submit_with_dicts_and_parameters(chain: Chain, batch_api: FakeBatchAPI) -> None:
    job = await chain.asubmit_batch([
        {"messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": 7,
         "options": {"tenant": "acme"}},
        Request.create([{"role": "user", "content": "there"}], MODEL, params={"seed": 3}),
    ], metadata={"purpose": "nightly"})
    outcomes = await job.aresults(wait=True, poll_s=0.01)
    assert [o.response.text for o in outcomes if o.response] == ["echo: hi", "echo: there"]
    bodies = [line["body"] for line in batch_api.batches[job.id].lines]
    assert bodies[0]["temperature"] == 0 and bodies[0]["max_tokens"] == 7 and bodies[1]["seed"] == 3
    assert batch_api.batches[job.id].data["metadata"] == {"purpose": "nightly"}
    assert chain.ledger.rows()[0].tenant == "acme"


def test_a_job_can_be_picked_up_again_from_json(chain: Chain, batch_api: FakeBatchAPI) -> None:
    job = chain.submit_batch(_questions(2))
    saved = json.dumps(job.to_dict())
    again = BatchJob.from_dict(chain, json.loads(saved))
    outcomes = again.results(wait=True, poll_s=0.01)
    assert [o.request.id for o in outcomes] == [r.id for r in job.requests]
    assert [o.response.text for o in outcomes if o.response] == ["echo: question 0", "echo: question 1"]


def test_bad_submissions_fail_fast(fake_openai: FakeOpenAIServer, chain: Chain) -> None:
    with pytest.raises(InvalidRequestError, match="at least one"):
        chain.submit_batch([])
    with pytest.raises(InvalidRequestError, match=r"requests\[1\]"):
        chain.submit_batch([_questions(1)[0], 42])
    with pytest.raises(ConfigError, match="batch_discount"):
        chain.submit_batch(_questions(1), batch_discount=1.5)
    with Chain(targets=[MockTarget(name="mock")]) as mock_chain, pytest.raises(ConfigError, match="LiteLLMTarget"):
        mock_chain.submit_batch(_questions(1), model="mock")
    other = LiteLLMTarget("openai/gpt-4o", api_base=fake_openai.url, api_key="sk-test-key-not-real-000000")
    with Chain(targets=[chain.targets[MODEL], other]) as two, pytest.raises(InvalidRequestError, match="several"):
        two.submit_batch([{"messages": _questions(1)[0], "model": MODEL},
                          {"messages": _questions(1)[0], "model": "openai/gpt-4o"}])


def test_paid_batch_calls_are_blocked_in_tests() -> None:
    remote = LiteLLMTarget(MODEL, api_key="sk-test-key-not-real-000000")
    with Chain(targets=[remote]) as c, forbid_paid_calls(), pytest.raises(TargetError, match="paid call"):
        c.submit_batch(_questions(1), model=MODEL)
