"""Local targets priced per 1M tokens or per machine-hour (converted with measured throughput)."""

from __future__ import annotations

from pathlib import Path

import pytest
from costmw.adapters import HFTarget

from costmw import ConfigError, Price, Request


async def test_hourly_price_is_converted_with_the_throughput_measured_on_first_use(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm, hourly_usd=3.6)
    assert target.measured_tokens_per_s is None
    response = await target.acomplete(Request.create([{"role": "user", "content": "the cat"}], "t",
                                                     params={"max_tokens": 4}))
    tps, prompt_tps = target.measured_tokens_per_s, target.measured_prompt_tokens_per_s
    assert tps and prompt_tps and tps > 0 and prompt_tps > 0
    price = target.price
    assert price is not None
    assert price.output_per_1m == pytest.approx(3.6 / 3600 / tps * 1e6)
    assert price.input_per_1m == pytest.approx(3.6 / 3600 / prompt_tps * 1e6)
    assert response.cost_usd == pytest.approx(price.cost(response.usage.prompt_tokens,
                                                         response.usage.completion_tokens))
    shown = target.describe()
    assert shown["measured_tokens_per_s"] == tps and shown["price_per_1m"]["output"] == price.output_per_1m


def test_asking_the_price_measures_it_and_recalibration_updates_it(tiny_lm: Path) -> None:
    target = HFTarget(tiny_lm, hourly_usd=1.0)
    assert target.price is not None and target.measured_tokens_per_s is not None
    result = target.calibrate(batch_size=4)
    assert result["batch_size"] == 4 and target.price.output_per_1m == pytest.approx(result["output_per_1m"])


def test_fixed_price_and_no_price(tiny_lm: Path) -> None:
    assert HFTarget(tiny_lm, price=(0.1, 0.2)).price == Price(0.1, 0.2)
    free = HFTarget(tiny_lm, name="gpt-4o")  # a local model never takes a hosted model's list price
    assert free.price is None and free.cost(1000, 1000) == 0.0
    with pytest.raises(ConfigError, match="not both"):
        HFTarget(tiny_lm, price=(0.1, 0.2), hourly_usd=1.0)
    with pytest.raises(ConfigError, match="hourly_usd"):
        HFTarget(tiny_lm, hourly_usd=-1.0)


def test_hourly_price_takes_the_median_of_warm_runs_and_records_it() -> None:
    from costmw.adapters import Capabilities
    from costmw.adapters.local import LocalTarget

    class Timed(LocalTarget):
        """Throughput readings as a shared machine gives them: a cold first one, then noise."""

        def __init__(self) -> None:
            super().__init__("timed", model="timed", price=None, hourly_usd=3.6, capabilities=Capabilities())
            self.readings = iter([(10.0, 1.0), (100.0, 50.0), (90.0, 10.0), (110.0, 60.0)])

        def _measure_throughput(self, batch_size: int) -> tuple[float, float]:
            return next(self.readings)

    target = Timed()
    result = target.calibrate(runs=3)
    assert (target.measured_prompt_tokens_per_s, target.measured_tokens_per_s) == (100.0, 50.0)  # cold run dropped
    assert target.price == Price(3.6 / 3600 / 100.0 * 1e6, 3.6 / 3600 / 50.0 * 1e6)
    assert result["runs"] == 3 and (result["tokens_per_s_min"], result["tokens_per_s_max"]) == (10.0, 60.0)
    assert target.describe()["calibration"] == result
