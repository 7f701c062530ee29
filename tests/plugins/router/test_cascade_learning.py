"""A cascade that learns from its own traffic: escalations (and checked kept answers) teach the
confidence model's ``similar_right`` how the cheap model does on prompts like these."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import ask
from costmw.adapters import MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Cascade, ConfidenceModel, ConfidenceScorer, NeighbourRate
from costmw.plugins.router._cascade import answers_agree
from costmw.plugins.router._confidence_data import fit_confidence
from costmw.plugins.router._neighbours import TrafficMemory
from test_router_neighbours import kinds_rows, unit

from costmw import Chain, ConfigError, Request, Response
from costmw.embeddings import HashingEmbedder

NEW_KIND = "translate this short english greeting into french, please"


class Local(MockTarget):
    kind = "hf"  # a local model: it reports token log-probabilities


def replying(text: str) -> Callable[[Request], Response]:
    """Always ``text``, said with middling certainty (log-probability -1 per answer)."""

    def answer(request: Request) -> Response:
        response = Response(text=text)
        if request.params.get("logprobs"):
            response.logprobs = [{"token": text, "logprob": -1.0, "top_logprobs": []}]
        return response

    return answer


@pytest.fixture(scope="module")
def model() -> ConfidenceModel:
    # fit on kinds the cheap model always or never gets right; the evidence itself says nothing
    return fit_confidence(kinds_rows(), features=["span_mean", "span_min", "similar_right"],
                          embedder=HashingEmbedder())


def prompts(count: int) -> list[str]:
    return [f"{NEW_KIND} (case {i})?" for i in range(count)]


def test_answers_agree_on_the_final_answer_and_never_credit_an_answer_not_given() -> None:
    assert answers_agree("42", "The answer is 42.") and answers_agree("so 1,200", "1200")
    assert answers_agree("Paris", "The capital of France is Paris.") and answers_agree("yes", "Yes.")
    assert not answers_agree("41", "The answer is 42.") and not answers_agree("42", "Paris")
    assert not answers_agree("", "anything") and not answers_agree("Lyon", "The capital is Paris.")
    # a clock time is one value, not its last number
    assert answers_agree("3:45", "The train leaves at 03:45.") and not answers_agree("2:45", "It leaves at 3:45.")
    # a long cheap reply must say the same thing, not merely share a few words
    assert not answers_agree("The capital of France is a city on the Seine", "The capital of France is Paris.")


def test_a_sentence_that_states_the_strong_models_short_answer_agrees_with_it() -> None:
    # the short answer in the cheap answer's last sentence: what a small model says around a name or label
    assert answers_agree("The capital of Chile is Santiago.", "Santiago")
    assert answers_agree("I read the text again. The customer's name is Ana Lima.", "Ana Lima")
    assert answers_agree("No, it is not.", "no")
    # negated, elsewhere than the final answer, only part of the words, or a number: not given
    assert not answers_agree("The capital of Chile is not Santiago.", "Santiago")
    assert not answers_agree("It isn't Santiago.", "Santiago")
    assert not answers_agree("Santiago is a big city. The capital is Valparaiso.", "Santiago")
    assert not answers_agree("The customer's name is Ana.", "Ana Lima")
    assert not answers_agree("The total is 12 apples.", "apples")
    # more than three words is not a short answer: the strong reply must then say the same thing
    assert not answers_agree("It is the city of Santiago de Chile.", "the city of Santiago")


def test_answers_graded_by_a_strong_model_are_compared_as_a_learning_cascade_compares_them() -> None:
    import asyncio

    from costmw.plugins.router._confidence_data import answer_prompts

    cheap = Local(replying("The capital of Chile is Santiago."), name="cheap")
    rows = [{"prompt": "What is the capital of Chile? Reply with the city only."}, {"prompt": "And of Peru?"}]
    said = iter(["Santiago", "Lima"])
    strong = MockTarget(lambda request: next(said), name="strong")
    graded = asyncio.run(answer_prompts(cheap, rows, judge=strong))
    assert [r["right"] for r in graded] == [True, False]


def test_traffic_memory_joins_the_past_prompts_and_keeps_at_most_its_size() -> None:
    past = unit([1, 0, 0], [0, 1, 0])
    base = NeighbourRate(past, [True, False], k=2, prior_weight=1.0)
    memory = TrafficMemory(base, max_prompts=3)
    query = unit([0, 0, 1])
    assert memory.rate(query)[0] == pytest.approx(base.rate(query)[0]) == pytest.approx(0.5)  # the base alone
    memory.add(unit([0, 0.1, 1])[0], False)
    assert memory.rate(query)[0] < 0.5  # its nearest prompt now is one the cheap model got wrong
    for _ in range(4):
        memory.add(unit([0, 0, 1])[0], True)
    assert len(memory) == 3  # the oldest (the wrong one) went first
    # the two nearest are remembered right answers at similarity 1, and the prior (0.5) weighs 1
    assert memory.rate(query)[0] == pytest.approx((2 + 0.5) / 3, rel=1e-3)
    with pytest.raises(ConfigError, match="3-dimensional"):
        memory.add(np.ones(4), True)
    with pytest.raises(ConfigError, match="max_prompts"):
        TrafficMemory(base, max_prompts=0)


def test_a_kind_the_cheap_model_answers_like_the_strong_one_comes_to_be_kept(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    static = ConfidenceScorer(model)
    first = static_score(static, prompts(1)[0])
    threshold = first + 0.05  # an unfamiliar kind starts below the bar
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=threshold))])
    served = [chain.complete(ask(p), model="strong") for p in prompts(12)]
    route = served[0].info["route"]["cascade"]
    assert route["escalated"] is True and route["cheap_agreed"] is True
    assert served[-1].served_by == "target:cheap"  # learned: the cheap model gets this kind right
    assert scorer.stats["observed"] >= 1 and scorer.stats["agreed"] == scorer.stats["observed"]
    assert all(r.served_by == "target:cheap" for r in served[6:])  # once learned, kept
    # without learning, the same traffic is escalated every time
    fixed = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=static, threshold=threshold))])
    assert all(fixed.complete(ask(p), model="strong").served_by == "target:strong" for p in prompts(12))


def test_the_default_scorer_is_built_once_and_off_the_event_loop(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Any) -> None:
    import asyncio
    import threading

    import costmw.plugins.router._cascade as cascade_module

    built: list[threading.Thread] = []

    class Counted(ConfidenceScorer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(threading.current_thread())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(cascade_module, "ConfidenceScorer", Counted)
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    cascade = Cascade(memory=tmp_path / "traffic.bin")
    chain = Chain([ModelRouter([cheap, strong], strategy=cascade)])

    async def first_calls() -> list[Response]:
        return await asyncio.gather(*(chain.acomplete(ask(p), model="strong") for p in prompts(6)))

    served = asyncio.run(first_calls())
    assert len(served) == 6 and all("cascade" in r.info["route"] for r in served)
    assert len(built) == 1 and built[0] is not threading.main_thread()  # the memory file is read in a thread
    assert cascade.judge(cheap)[0] is cascade.judge(cheap)[0]


def test_a_kind_the_cheap_model_gets_wrong_scores_lower_as_it_is_seen(model: ConfidenceModel) -> None:
    cheap = Local(replying("hola"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])
    scores = []
    for p in prompts(6):
        response = chain.complete(ask(p), model="strong")
        assert response.served_by == "target:strong"
        assert response.info["route"]["cascade"]["cheap_agreed"] is False
        scores.append(response.info["route"]["cascade"]["score"])
    assert scores[-1] < scores[0]
    assert scorer.stats == {"observed": 6, "agreed": 0, "checked": 0, "remembered": 0}


def test_checked_kept_answers_are_served_by_the_strong_model_and_learned_from(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True, check_rate=0.5, seed=3)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=0.0))])
    served = [chain.complete(ask(p), model="strong") for p in prompts(40)]
    checked = [r for r in served if r.info["route"]["cascade"].get("checked")]
    assert 8 <= len(checked) <= 32 and scorer.stats["checked"] == len(checked)
    assert all(r.served_by == "target:strong" for r in checked)  # paid for, so served
    assert all(r.cost_usd > 0 for r in checked) and scorer.stats["observed"] == len(checked)
    assert "checked" in checked[0].info["route"]["rejected"]["cheap"]
    assert all(r.served_by == "target:cheap" for r in served if r not in checked)


def test_a_streamed_escalation_is_learned_from(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])
    chunks = list(chain.stream(ask(prompts(1)[0]), model="strong"))
    final = chunks[-1].response
    assert final is not None and final.info["route"]["cascade"]["cheap_agreed"] is True
    assert scorer.stats["observed"] == 1 and scorer.traffic is not None and len(scorer.traffic) == 1


def test_learning_is_set_up_where_it_can_work(model: ConfidenceModel) -> None:
    assert Cascade().judge(Local(replying("x"), name="l"))[0].traffic is not None  # on by default
    assert Cascade(check_rate=0.05).judge(Local(replying("x"), name="l"))[0].check_rate == 0.05
    assert Cascade(learn=False).judge(Local(replying("x"), name="l"))[0].traffic is None
    with pytest.raises(ConfigError, match="pass them to it"):
        Cascade(scorer="refusal", learn=False)
    with pytest.raises(ConfigError, match="pass them to it"):
        Cascade(scorer="refusal", learn=True)
    with pytest.raises(ConfigError, match="needs learn=True"):
        Cascade(learn=False, check_rate=0.1)
    with pytest.raises(ConfigError, match="check_rate"):
        ConfidenceScorer(model, learn=True, check_rate=1.0)
    plain = ConfidenceModel(["span_mean"]).fit([{"span_mean": float(i % 7)} for i in range(40)],
                                               [i % 7 > 3 for i in range(40)])
    with pytest.raises(ConfigError, match="similar_right"):
        ConfidenceScorer(plain, learn=True)
    with pytest.raises(ConfigError, match="compare"):
        ConfidenceScorer(model, learn=True, compare="equal")  # type: ignore[arg-type]


def static_score(scorer: ConfidenceScorer, prompt: str) -> float:
    import asyncio

    async def no_samples(**params: Any) -> Response:
        raise AssertionError("no samples")

    request = Request.create([{"role": "user", "content": prompt}], "cheap")
    value = asyncio.run(scorer.ascore(request, replying("bonjour")(request.replace(params={"logprobs": True})),
                                      no_samples))
    assert value is not None
    return value


def test_a_comparison_that_fails_never_fails_the_call(model: ConfidenceModel, caplog: pytest.LogCaptureFixture) -> None:
    def broken(cheap: str, strong: str) -> bool:
        raise RuntimeError("comparison broke")

    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True, compare=broken)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])
    response = chain.complete(ask(prompts(1)[0]), model="strong")
    assert response.served_by == "target:strong" and response.text == "Bonjour."
    assert "cheap_agreed" not in response.info["route"]["cascade"] and scorer.stats["observed"] == 0
    assert "could not learn" in caplog.text


def test_what_one_tenant_teaches_never_moves_another_tenants_decisions(model: ConfidenceModel) -> None:
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    scorer = ConfidenceScorer(model, learn=True)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=1.0))])

    def score(prompt: str, tenant: str) -> float:
        response = chain.complete(ask(prompt), model="strong", options={"tenant": tenant})
        value = response.info["route"]["cascade"]["score"]
        assert isinstance(value, float)
        return value

    before = score(prompts(1)[0], "b")
    taught = [score(p, "a") for p in prompts(10)]
    assert taught[-1] > taught[0]  # tenant a's own answers move its scores ...
    assert score(f"{NEW_KIND} (case 99)?", "b") < taught[-1]  # ... not tenant b's
    memory = scorer.traffic
    assert memory is not None and len(memory) == 12  # one memory, each prompt counted for its tenant
    vector = HashingEmbedder().embed([f"{NEW_KIND} (case 5)?"])
    assert memory.rate(vector, "b")[0] < memory.rate(vector, "a")[0]
    assert before == pytest.approx(static_score(ConfidenceScorer(model), prompts(1)[0]), abs=1e-4)  # rounded


def test_a_learning_cascade_reads_its_threshold_off_answers_scored_as_it_would_score_them(
        model: ConfidenceModel, tmp_path: Any) -> None:
    from costmw.plugins.router._confidence_data import learning_probabilities, neighbours_of

    rows = kinds_rows()
    assert model.learning_calibration and len(model.learning_calibration) == len(rows)
    # a kind the cheap model always gets right is given more as its questions keep coming
    neighbours = neighbours_of(rows, embedder=HashingEmbedder())
    learned = learning_probabilities(rows, features=["span_mean", "span_min", "similar_right"],
                                     neighbours=neighbours, by_category=True)
    fixed = [p for p, _ in model.calibration]
    good = [i for i, r in enumerate(rows) if r["right"]]
    bad = [i for i, r in enumerate(rows) if not r["right"]]
    assert np.mean([learned[i] for i in good]) > np.mean([fixed[i] for i in good])
    assert np.mean([learned[i] for i in bad]) < np.mean([fixed[i] for i in bad])
    assert ConfidenceScorer(model, learn=True).threshold_for(0.9) == model.threshold_for(0.9, learning=True)
    assert ConfidenceScorer(model).threshold_for(0.9) == model.threshold_for(0.9)
    back = ConfidenceModel.load(model.save(tmp_path / "model.json"))
    assert back.learning_calibration == [(pytest.approx(p), r) for p, r in model.learning_calibration]
    # a model without them (an older file) reads the held-out calibration for both
    back.learning_calibration = []
    assert back.threshold_for(0.9, learning=True) == back.threshold_for(0.9)


# -- what a cascade learned, kept in a file -------------------------------------------------------


def test_what_a_cascade_learned_survives_a_restart(model: ConfidenceModel, tmp_path: Any) -> None:
    path = tmp_path / "traffic.bin"
    cheap = Local(replying("bonjour"), name="cheap", price=(0.0, 0.0))
    strong = MockTarget(replying("Bonjour."), name="strong", price=(10.0, 30.0))
    threshold = static_score(ConfidenceScorer(model), prompts(1)[0]) + 0.05  # a new kind starts escalated
    scorer = ConfidenceScorer(model, learn=True, memory=path)
    chain = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=scorer, threshold=threshold))])
    served = [chain.complete(ask(p), model="strong") for p in prompts(12)]
    assert served[0].served_by == "target:strong" and served[-1].served_by == "target:cheap"
    assert scorer.traffic is not None and scorer.traffic.flush() and path.stat().st_size > 0

    def first_call(memory: Any) -> str:
        again = ConfidenceScorer(model, learn=True, memory=memory)
        fresh = Chain([ModelRouter([cheap, strong], strategy=Cascade(scorer=again, threshold=threshold))])
        if memory is not None:
            assert again.stats["remembered"] == scorer.stats["observed"] > 0
        return fresh.complete(ask(f"{NEW_KIND} (case 50)?"), model="strong").served_by

    assert first_call(path) == "target:cheap"  # started again from the file: kept from the first call
    assert first_call(None) == "target:strong"  # without it the lesson is gone


def test_a_traffic_file_keeps_tenants_apart_and_its_newest_prompts(tmp_path: Any) -> None:
    base = NeighbourRate(unit([1, 0, 0], [0, 1, 0]), [True, False], k=2, prior_weight=1.0)
    path = tmp_path / "t.bin"
    memory = TrafficMemory(base, path=path)
    for _ in range(3):
        memory.add(unit([0, 0, 1])[0], True, "a")
    memory.add(unit([0, 0.1, 1])[0], False, "b")
    assert memory.flush()
    query = unit([0, 0, 1])
    back = TrafficMemory(base, path=path)
    assert back.loaded == len(back) == 4
    for tenant in ("a", "b", None):  # the same rates as before the restart, tenant by tenant
        assert back.rate(query, tenant)[0] == pytest.approx(memory.rate(query, tenant)[0])
    assert back.rate(query, "a")[0] > back.rate(query, None)[0] > back.rate(query, "b")[0]
    small = TrafficMemory(base, max_prompts=2, path=path)
    assert small.loaded == 2  # the newest two: one of tenant a's three, and tenant b's
    assert small.rate(query, "b")[0] == pytest.approx(memory.rate(query, "b")[0])
    assert small.rate(query, "a")[0] < memory.rate(query, "a")[0]
    # a tenant's name with a lone surrogate is still that tenant's, in the file too
    odd = TrafficMemory(base, path=tmp_path / "odd.bin")
    odd.add(unit([0, 0, 1])[0], True, "x\udc80")
    assert odd.flush() and TrafficMemory(base, path=tmp_path / "odd.bin").rate(query, "x\udc80")[0] > 0.6


def test_a_long_traffic_file_is_cut_to_its_newest_prompts(tmp_path: Any) -> None:
    base = NeighbourRate(unit([1, 0, 0], [0, 1, 0]), [True, False], k=2, prior_weight=1.0)
    path = tmp_path / "t.bin"
    memory = TrafficMemory(base, max_prompts=50, path=path)
    for i in range(300):
        memory.add(unit([0, 0, 1])[0], i >= 250, "a")  # only the newest 50 were right
        if i % 40 == 0:
            assert memory.flush()
    assert memory.flush() and memory.file is not None and memory.file.written == 300
    size = path.stat().st_size
    back = TrafficMemory(base, max_prompts=50, path=path)
    assert back.loaded == 50 and path.stat().st_size < size / 5  # rewritten with the newest 50
    assert back.rate(unit([0, 0, 1]), "a")[0] == pytest.approx((2 + 0.5) / 3, rel=1e-3)  # its 2 nearest: right
    assert TrafficMemory(base, max_prompts=50, path=path).loaded == 50


def test_a_traffic_file_that_cannot_be_used_is_moved_aside(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    base = NeighbourRate(unit([1, 0, 0], [0, 1, 0]), [True, False], k=2, prior_weight=1.0)
    path = tmp_path / "t.bin"
    path.write_bytes(b"not a traffic file\n\x00\x01")
    memory = TrafficMemory(base, path=path)
    assert len(memory) == 0 and "moved aside" in caplog.text
    assert len(list(tmp_path.glob("t.bin.unused-*"))) == 1
    memory.add(unit([0, 0, 1])[0], True)
    assert memory.flush() and TrafficMemory(base, path=path).loaded == 1  # a new file, started afresh
    # another embedder's file is not read as this one's
    other = NeighbourRate(unit([1, 0, 0, 0], [0, 1, 0, 0]), [True, False], embedder="another")
    assert TrafficMemory(other, path=path).loaded == 0 and not path.exists()
    # a record cut short by a crash is ignored; the whole ones are read
    fresh = TrafficMemory(base, path=tmp_path / "cut.bin")
    fresh.add(unit([0, 0, 1])[0], True)
    fresh.add(unit([0, 1, 1])[0], False)
    assert fresh.flush()
    with open(tmp_path / "cut.bin", "ab") as out:
        out.write(b"\x00" * 7)
    assert TrafficMemory(base, path=tmp_path / "cut.bin").loaded == 2


def test_a_traffic_file_that_cannot_be_written_yet_keeps_its_records(tmp_path: Any,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    base = NeighbourRate(unit([1, 0, 0], [0, 1, 0]), [True, False], k=2, prior_weight=1.0)
    blocker = tmp_path / "folder"
    blocker.write_text("a file where the folder should be")
    memory = TrafficMemory(base, path=blocker / "t.bin")
    memory.add(unit([0, 0, 1])[0], True)
    assert memory.flush() is False and memory.file is not None and memory.file.write_errors >= 1
    assert "wait in memory" in caplog.text and len(memory) == 1  # learning goes on in memory
    blocker.unlink()
    blocker.mkdir()
    assert memory.flush() and TrafficMemory(base, path=blocker / "t.bin").loaded == 1


def test_processes_sharing_a_traffic_file_append_whole_records(tmp_path: Any) -> None:
    import subprocess
    import sys

    path = tmp_path / "shared.bin"
    script = (
        "import sys, numpy as np\n"
        "from costmw.plugins.router import NeighbourRate, TrafficMemory\n"
        "base = NeighbourRate(np.eye(3)[:2], [True, False])\n"
        "m = TrafficMemory(base, path=sys.argv[1])\n"
        "for i in range(300):\n"
        "    m.add(np.array([0.0, 0.6, 0.8]), i % 2 == 0, sys.argv[2])\n"
        "    if i % 7 == 0: m.flush()\n"
        # the rest is written when the process exits
    )
    runs = [subprocess.Popen([sys.executable, "-c", script, str(path), f"t{n}"]) for n in range(3)]
    assert [r.wait(timeout=120) for r in runs] == [0, 0, 0]
    back = TrafficMemory(NeighbourRate(np.eye(3)[:2], [True, False]), path=path)
    assert back.loaded == 900 and len(list(tmp_path.iterdir())) == 1  # every record, one file, no leftovers
    query = np.array([[0.0, 0.6, 0.8]])
    assert back.rate(query, "t0")[0] == pytest.approx(back.rate(query, "t2")[0])


def test_records_appended_while_another_process_cuts_the_file_are_kept(tmp_path: Any) -> None:
    import subprocess
    import sys

    from costmw.plugins.router._traffic_file import TrafficFile

    path = tmp_path / "shared.bin"
    script = (  # each appender numbers its records in the vector (x = appender, y = sequence)
        "import sys, numpy as np\n"
        "from costmw.plugins.router._traffic_file import TrafficFile\n"
        "f = TrafficFile(sys.argv[1], dim=3, embedder='test', max_prompts=20)\n"
        "for i in range(400):\n"
        "    f.append(np.array([float(sys.argv[2]), float(i), 1.0], dtype=np.float32), 0, True)\n"
        "    assert f.flush(force=True)\n"
    )
    runs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(n)]) for n in range(3)]
    cuts = 0
    while any(r.poll() is None for r in runs):  # meanwhile, this process opens the file again and again,
        cuts += TrafficFile(path, dim=3, embedder="test", max_prompts=20).load()[0].shape[0] > 0  # cutting it
    assert [r.wait(timeout=120) for r in runs] == [0, 0, 0] and cuts > 0
    end = path.read_bytes()
    records = np.frombuffer(end[end.find(b"\n") + 1:], dtype=TrafficFile(path, dim=3, embedder="test",
                                                                           max_prompts=20).dtype)
    kept = [sorted(int(v[1]) for v in records["vector"] if v[0] == n) for n in range(3)]
    assert len(records) >= 20 and any(kept)
    for n, mine in enumerate(kept):  # a cut drops an appender's oldest records, never one after a kept one
        assert mine == list(range(mine[0] if mine else 400, 400)), f"appender {n} lost records"


def test_a_cascade_memory_is_checked_when_the_cascade_is_built(tmp_path: Any) -> None:
    cascade = Cascade(memory=tmp_path / "traffic.bin")
    scorer = cascade.judge(Local(replying("x"), name="l"))[0]
    assert isinstance(scorer, ConfidenceScorer) and scorer.traffic is not None
    assert scorer.traffic.file is not None and scorer.traffic.file.path == tmp_path / "traffic.bin"
    with pytest.raises(ConfigError, match="needs learn=True"):
        Cascade(learn=False, memory=tmp_path / "traffic.bin")
    with pytest.raises(ConfigError, match="is a folder"):
        Cascade(memory=tmp_path)
    with pytest.raises(ConfigError, match="file path"):
        Cascade(memory=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pass them to it"):
        Cascade(scorer="refusal", memory=tmp_path / "traffic.bin")
    # from a configuration file
    chain = Chain.from_config({
        "plugins": [{"model_router": {"targets": ["smol", "big"], "strategy": {
            "cascade": {"cheap": "smol", "strong": "big", "memory": str(tmp_path / "from-config.traffic")}}}}],
        "targets": [{"kind": "mock", "name": "smol", "reply": "s", "price": [0.1, 0.1]},
                    {"kind": "mock", "name": "big", "reply": "b", "price": [9.0, 9.0]}]})
    router = chain.plugins[0]
    assert isinstance(router, ModelRouter) and isinstance(router.strategy, Cascade)
    assert router.strategy.memory == str(tmp_path / "from-config.traffic")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_worker_writes_what_it_learns(tmp_path: Any) -> None:
    base = NeighbourRate(unit([1, 0, 0], [0, 1, 0]), [True, False], k=2, prior_weight=1.0)
    path = tmp_path / "t.bin"
    memory = TrafficMemory(base, path=path)
    memory.add(unit([0, 0, 1])[0], True, "parent")  # the parent's writing thread is running
    pid = os.fork()
    if pid == 0:  # the worker: learns, and its own thread writes it
        try:
            memory.add(unit([0, 1, 1])[0], False, "child")
            deadline = time.time() + 20
            while memory.file is not None and memory.file.written < 1 and time.time() < deadline:
                time.sleep(0.05)
            os._exit(0 if memory.file is not None and memory.file.written == 1 else 1)
        except BaseException:
            os._exit(2)
    deadline = time.time() + 60
    done, status = os.waitpid(pid, os.WNOHANG)
    while not done and time.time() < deadline:
        time.sleep(0.05)
        done, status = os.waitpid(pid, os.WNOHANG)
    if not done:  # stuck on a lock copied while held: a failure, not a hang
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert done and os.waitstatus_to_exitcode(status) == 0
    assert memory.flush() and TrafficMemory(base, path=path).loaded == 2
