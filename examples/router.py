"""ModelRouter, offline: rules, a learned router, cascades, fallbacks, a budget and feedback.

Two mock targets stand in for a cheap and a strong model (no API key, no network). The learned
router uses the dependency-free HashingEmbedder so the example runs in seconds; leave
``embedder`` out to use all-MiniLM-L6-v2 through ONNX Runtime, as a real deployment would.

    python examples/router.py
"""

from __future__ import annotations

import random
import tempfile

from costmw.adapters import Capabilities, MockTarget
from costmw.plugins import ModelRouter
from costmw.plugins.router import Budget, Cascade, Learned, Rule, Rules

import costmw
from costmw.embeddings import HashingEmbedder

HARD = ["prove that {} is irrational", "derive the closed form of the series {}", "find all integer roots of {}"]
EASY = ["what is the capital of {}", "translate 'thank you' into {}", "give a synonym for {}"]


def labelled(n: int, seed: int) -> tuple[list[str], list[float]]:
    """Toy training data: 1.0 where the cheap model answered as well as the strong one."""
    rng = random.Random(seed)
    prompts, labels = [], []
    for i in range(n):
        hard = i % 3 == 0
        prompts.append(rng.choice(HARD if hard else EASY).format(f"x{rng.randint(0, 99)}"))
        labels.append(0.0 if hard else 1.0)
    return prompts, labels


def show(title: str, response: costmw.Response) -> None:
    route = response.info["route"]
    print(f"{title:<26} -> {route['served']:<6} via {route['strategy']:<9} "
          f"score={route['score']} cost=${response.cost_usd:.6f}  ({route['reason']})")
    for other, why in route["rejected"].items():
        print(f"{'':<29}{other}: {why}")


def main() -> None:
    hiccups = {"thank you"}

    def small_model(request: costmw.Request) -> str:
        for word in list(hiccups):
            if word in request.last_user_text:  # one rate limit: the router falls back to the other target
                hiccups.discard(word)
                raise costmw.RateLimitError("429 from the provider", target="small")
        if "poem" in request.last_user_text:
            return "I'm sorry, I can't write poems."
        if "apples" in request.last_user_text:  # a worked answer whose arithmetic is off
            return "3 bags of 14 apples: 3 * 14 = 44 apples.\n#### 44"
        return f"(small) answer to: {request.last_user_text}"

    small = MockTarget(small_model, name="small", price=(0.15, 0.60), capabilities=Capabilities(tools=False))
    large = MockTarget(lambda r: f"(large) answer to: {r.last_user_text}", name="large", price=(2.50, 10.0))

    # rules first; when none matches, the learned model decides
    strategy = Rules([Rule("large", tags=["legal"]), Rule("small", pattern=r"^\s*(hi|hello)\b")]) \
        | Learned(embedder=HashingEmbedder(256))
    router = ModelRouter([small, large], strategy=strategy, cooldown_after=3, cooldown_s=30,
                         budget=Budget(tenants={"trial": 0.0}, action="downgrade"))

    prompts, labels = labelled(300, seed=1)
    router.fit(prompts, labels)
    calib, calib_labels = labelled(150, seed=2)
    threshold = router.calibrate(calib, quality=1.0, labels=calib_labels)  # toy data: no answer may get worse
    print(f"threshold calibrated for full quality: {threshold:.3f}")

    chain = costmw.Chain([router], ledger=costmw.Ledger(store_text=True))

    def ask(text: str, **kw: object) -> costmw.Response:
        return chain.complete([{"role": "user", "content": text}], model="large", **kw)  # type: ignore[arg-type]

    show("easy question", ask("what is the capital of x12"))
    show("hard question", ask("prove that x7 is irrational"))
    show("tagged legal", ask("is this contract valid?", options={"tags": ["legal"]}))
    show("greeting (rule)", ask("hello there"))
    show("rate limit -> fallback", ask("translate 'thank you' into x3"))
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    show("needs tools", ask("weather in Oslo?", tools=tools))
    show("tenant over budget", ask("derive the closed form of the series x1", options={"tenant": "trial"}))

    cascade_chain = costmw.Chain([ModelRouter([small, large], strategy=Cascade(scorer=["refusal", "arithmetic"]))])
    show("cascade: refusal", cascade_chain.complete([{"role": "user", "content": "write a poem"}], model="large"))
    show("cascade: bad arithmetic", cascade_chain.complete(
        [{"role": "user", "content": "How many apples are in 3 bags of 14?"}], model="large"))

    good = ask("give a synonym for x5")
    chain.feedback(good.request_id, good=True)
    print(f"feedback labels the router can learn from: {router.feedback_data()}")

    with tempfile.TemporaryDirectory() as folder:
        router.save(folder)
        again = ModelRouter.load(folder, [small, large])
        same = bool((again.predict(calib) == router.predict(calib)).all())
        print(f"saved to a folder and loaded back: same scores = {same}")

    report = chain.report()
    print(f"\nspent ${report['cost_usd']:.6f} instead of ${report['baseline_cost_usd']:.6f} "
          f"({report['saved_pct']:.0f}% saved); router stats: {router.stats()['counts']}")


if __name__ == "__main__":
    main()
