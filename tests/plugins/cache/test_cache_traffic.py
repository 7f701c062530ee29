"""TrafficCheck: the cache learns its verifier's operating point from its own traffic (near misses
compared for free, a share of hits checked against the model), and never serves past what that
traffic supports."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence

import numpy as np
import pytest
from cache_helpers import MODEL, make_cache, make_chain, user
from costmw.plugins.cache import CacheVerdict, SemanticCache, TrafficCheck

from costmw import Chain, ConfigError

_TOPIC = re.compile(r"topic(\d+)")


class TopicEmbedder:
    """Texts about the same ``topicN`` get the same vector; other topics are orthogonal."""

    name = "topic-64"
    dim = 64

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            found = _TOPIC.search(text)
            out[i, (int(found[1]) if found else 63) % self.dim] = 1.0
        return out


class Calibrated:
    """A verifier with a shipped operating point (``threshold``) that gives every same-topic pair
    probability ``p`` (refused when below the threshold) and other pairs 0.01."""

    version = "calibrated/1"

    def __init__(self, p: float, threshold: float = 0.95) -> None:
        self.p, self.threshold = p, threshold

    def check(self, query: str, cached: str) -> CacheVerdict:
        same = _TOPIC.search(query) and _TOPIC.search(cached) and \
            _TOPIC.search(query)[1] == _TOPIC.search(cached)[1]  # type: ignore[index]
        p = self.p if same else 0.01
        return CacheVerdict(p >= self.threshold, p, "model")

    async def acheck_many(self, query: str, candidates: Sequence[str]) -> list[CacheVerdict]:
        return [self.check(query, c) for c in candidates]


def by_topic(request: object) -> str:
    found = _TOPIC.search(request.last_user_text)  # type: ignore[attr-defined]
    return f"The answer about topic {found[1] if found else '?'}."


def traffic_cache(p: float, check: TrafficCheck, **options: object) -> SemanticCache:
    return make_cache(embedder=TopicEmbedder(), verifier=Calibrated(p), threshold=0.5, max_error=0.1,
                      traffic_check=check, **options)


def settle(chain: Chain, cache: SemanticCache) -> None:
    """Wait for the background comparisons."""
    async def wait() -> None:
        await asyncio.gather(*cache._background)

    chain.run_sync(wait())


def run_topics(chain: Chain, cache: SemanticCache, topics: range, wording: str) -> list[str]:
    served = []
    for i in topics:
        served.append(chain.complete(user(wording.format(i=i)), model=MODEL).served_by)
        settle(chain, cache)
    return served


def test_near_misses_whose_answers_agree_lower_the_threshold_until_paraphrases_are_served() -> None:
    check = TrafficCheck(rate=0.05, min_evidence=10, compare=lambda a, b: a == b, seed=0)
    cache = traffic_cache(0.9, check)
    chain, mock = make_chain(cache, handler=by_topic)
    run_topics(chain, cache, range(40), "tell me about topic{i} please")
    # near misses, each observed, until their evidence supports p = 0.9 (25 right of 25, by Wilson's 95%
    # bound, is within 10% wrong): from then on these paraphrases are served
    before = run_topics(chain, cache, range(40), "what do you know on topic{i}?")
    learned = check.stats["near_misses"]
    assert 20 <= learned < 40 and check.stats["wrong"] == 0
    assert before[:learned] == [f"target:{mock.name}"] * learned
    assert before[learned:] == ["cache:semantic"] * (40 - learned)
    assert check.threshold(0.95, 0.1) == pytest.approx(0.9)
    after = run_topics(chain, cache, range(40), "topic{i}: explain it to me")
    assert after.count("cache:semantic") >= 35  # a few are checked (5%) and go to the model
    chain.close()


def test_near_misses_with_other_answers_keep_the_shipped_threshold() -> None:
    check = TrafficCheck(rate=0.05, min_evidence=10, compare=lambda a, b: a == b, seed=0)
    cache = traffic_cache(0.9, check)
    chain, _ = make_chain(cache, handler=lambda r: f"a fresh answer to {r.last_user_text}")
    run_topics(chain, cache, range(40), "tell me about topic{i} please")
    run_topics(chain, cache, range(40), "what do you know on topic{i}?")
    assert check.stats["wrong"] == check.stats["observed"] >= 30
    assert check.threshold(0.95, 0.1) == 0.95
    after = run_topics(chain, cache, range(40), "topic{i}: explain it to me")
    assert "cache:semantic" not in after
    chain.close()


def test_a_checked_hit_goes_to_the_model_and_wrong_hits_stop_the_semantic_tier() -> None:
    check = TrafficCheck(rate=1.0, min_evidence=10, compare=lambda a, b: a == b, seed=0)
    cache = traffic_cache(0.99, check)  # the model is sure: every same-topic pair would be served
    chain, mock = make_chain(cache, handler=lambda r: f"a fresh answer to {r.last_user_text}")
    run_topics(chain, cache, range(40), "tell me about topic{i} please")
    calls = len(mock.calls)
    served = run_topics(chain, cache, range(40), "what do you know on topic{i}?")
    assert served.count(f"target:{mock.name}") == 40 and len(mock.calls) == calls + 40
    # every hit is checked until 10 wrong ones show the shipped point is wrong on this traffic; then
    # nothing is served, and the refused pairs go on being observed as near misses
    assert cache.stats["checked"] == check.stats["checked_hits"] == 10
    assert check.stats["near_misses"] == 30 and check.stats["wrong"] == 40
    assert check.threshold(0.95, 0.1) == math.inf
    response = chain.complete(user("topic3, once more"), model=MODEL)
    assert response.served_by == f"target:{mock.name}" and response.info["cache"]["reason"].startswith("verifier")
    chain.close()


def test_a_checked_hit_is_booked_as_a_call_with_its_reason() -> None:
    check = TrafficCheck(rate=1.0, compare=lambda a, b: a == b, seed=0)
    cache = traffic_cache(0.99, check)
    chain, mock = make_chain(cache, handler=by_topic)
    chain.complete(user("tell me about topic1 please"), model=MODEL)
    response = chain.complete(user("what do you know on topic1?"), model=MODEL)
    assert response.served_by == f"target:{mock.name}" and response.cost_usd > 0
    assert response.info["cache"] == {"hit": False, "reason": "checked", "similarity": 1.0}
    settle(chain, cache)
    assert check.stats == {"observed": 1, "near_misses": 0, "checked_hits": 1, "wrong": 0}
    chain.close()


def test_the_threshold_needs_evidence_and_rises_on_wrong_checked_hits() -> None:
    check = TrafficCheck(rate=0.5, min_evidence=20)
    assert check.threshold(0.95, 0.1) == 0.95  # nothing seen: the shipped point
    for _ in range(10):
        check.observe([(0.8, True)], checked_hit=False)
    assert check.threshold(0.95, 0.1) == 0.95  # too little evidence to move
    for _ in range(40):
        check.observe([(0.8, True)], checked_hit=False)
    assert check.threshold(0.95, 0.1) == pytest.approx(0.8)
    assert check.threshold(0.95, 0.01) == 0.95  # 50 right answers cannot show 1% at 95%
    wrong = TrafficCheck(rate=0.5, min_evidence=5)
    for _ in range(30):
        wrong.observe([(0.97, False)], checked_hit=True)
    assert wrong.threshold(0.95, 0.1) == math.inf


def test_the_threshold_counts_the_candidate_it_would_serve_not_the_closest() -> None:
    # closest candidate right at 0.5, the next one wrong at 0.8: at 0.8 the wrong one would be
    # served, at 0.5 the closest (right) one is served first
    check = TrafficCheck(min_evidence=10)
    for _ in range(40):
        check.observe([(0.5, True), (0.8, False)], checked_hit=False)
    assert check.threshold(0.95, 0.1) == pytest.approx(0.5)
    other = TrafficCheck(min_evidence=10)
    for _ in range(40):
        other.observe([(0.5, False), (0.8, True)], checked_hit=False)
    assert other.threshold(0.95, 0.1) == pytest.approx(0.8)  # lower would serve the wrong closest one


def test_the_default_comparison_reads_numbers_and_meaning() -> None:
    check = TrafficCheck()

    def embed(texts: list[str]) -> np.ndarray:  # every text "means" the same: only the guards tell
        return np.ones((len(texts), 4))

    assert check.agree("Paris", " paris ", None)
    assert check.agree("The total is 42 dollars.", "It comes to 42 dollars.", embed)
    assert not check.agree("The total is 42 dollars.", "The total is 43 dollars.", embed)
    assert not check.agree("Paris", "Lyon", None)  # without an embedder, only equal answers agree


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "often", True])
def test_bad_rates_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="rate"):
        TrafficCheck(rate=bad)  # type: ignore[arg-type]


def test_traffic_check_needs_a_verifier_and_a_clear_value() -> None:
    with pytest.raises(ConfigError, match="needs a verifier"):
        make_cache(verifier=False, traffic_check=0.05)
    with pytest.raises(ConfigError, match="traffic_check"):
        make_cache(traffic_check="sometimes")
    assert make_cache(traffic_check=0).traffic is None
    assert make_cache(verifier=Calibrated(0.9), traffic_check=0.1).traffic.rate == 0.1  # type: ignore[union-attr]


def test_each_tenants_traffic_moves_only_its_own_threshold() -> None:
    check = TrafficCheck(rate=0.05, min_evidence=10, compare=lambda a, b: a == b, seed=0)
    cache = traffic_cache(0.9, check)
    chain, mock = make_chain(cache, handler=by_topic)

    def ask(tenant: str, wording: str, topics: range) -> list[str]:
        served = []
        for i in topics:
            response = chain.complete(user(wording.format(i=i)), model=MODEL, options={"tenant": tenant})
            served.append(response.served_by)
            settle(chain, cache)
        return served

    ask("a", "tell me about topic{i} please", range(40))
    ask("b", "tell me about topic{i} please", range(40))
    ask("a", "what do you know on topic{i}?", range(40))  # tenant a's near misses teach a threshold
    assert check.threshold(0.95, 0.1, "a") == pytest.approx(0.9)
    assert check.threshold(0.95, 0.1, "b") == 0.95
    assert ask("b", "topic{i}: explain it to me", range(10)) == [f"target:{mock.name}"] * 10
    assert ask("a", "topic{i}: explain it to me", range(10)).count("cache:semantic") >= 8
    chain.close()
