"""Study 5 (dynamic batching): the simulator gives the latencies of a hand-derived case exactly, agrees pass for
pass with a separate event-stepping simulation written here, and with queueing theory (M/D/1, Pollaczek-
Khinchine); the real in-process queue agrees with the queue model replayed with the service times it paid
(p50 and p99) and with the forecast from service times measured before it (p50); a wrong model disagrees;
the best setting is the one that holds the highest rate within the budget."""

import math

import numpy as np
import pytest

import batchcore as bc
from batchcore.studies.queue_check import agree, simulated_summary
from batchcore.studies.serving import (
    Served,
    ServiceTimes,
    observed_times,
    poisson_arrivals,
    pool_stalls,
    serve,
    simulate,
)


def test_a_waiting_worker_pays_its_wake_up_and_a_busy_one_does_not():
    arrivals = np.array([0.0, 0.001, 0.0015, 0.01])
    service = ServiceTimes(hot={1: np.array([0.002])}, idle={1: np.array([0.0025])}, wakeup=np.array([0.0001]))
    served = simulate(arrivals, service, max_batch=1, max_delay_s=0.0)
    # 0 arrives to a waiting worker: wakes (0.1 ms), an idle pass (2.5 ms), done at 2.6 ms; 1 and 2 find it
    # busy: hot passes (2 ms) back to back, done at 4.6 and 6.6 ms; 3 finds it waiting again: 10 + 2.6 ms
    assert served.latencies == pytest.approx([0.0026, 0.0036, 0.0051, 0.0026], abs=1e-15)


def test_a_hand_derived_case():
    arrivals = np.array([0.0, 0.001, 0.0015, 0.010])
    times = {1: np.array([0.002]), 2: np.array([0.003]), 3: np.array([0.004])}
    served = simulate(arrivals, ServiceTimes(times, times, np.array([0.0])), max_batch=2, max_delay_s=0.0005)
    # request 0 waits its 0.5 ms delay alone (the second comes at 1 ms) and is served from 0.5 to 2.5 ms;
    # 1 and 2 queue meanwhile and go together from 2.5 to 5.5 ms; 3 waits its delay alone: 10.5 to 12.5 ms
    assert served.batches == [1, 2, 1]
    assert served.latencies == pytest.approx([0.0025, 0.0045, 0.004, 0.0025], abs=1e-15)
    assert served.span_s == pytest.approx(0.0125, abs=1e-15)


def stepping_reference(arrivals, service_of, max_batch, delay):
    """The same policy, simulated another way: time moves from event to event (a free worker, an arrival,
    a deadline), the queue a list of waiting requests."""
    n, latencies, batches = len(arrivals), [None] * len(arrivals), []
    free_at, nxt = 0.0, 0
    while nxt < n:
        t = max(free_at, arrivals[nxt])
        while True:
            waiting = [k for k in range(nxt, n) if arrivals[k] <= t]
            if len(waiting) >= max_batch or t >= arrivals[nxt] + delay:
                break
            coming = arrivals[nxt + len(waiting)] if nxt + len(waiting) < n else math.inf
            t = min(arrivals[nxt] + delay, coming)
        batch = waiting[:max_batch]
        end = t + service_of(len(batch))
        for k in batch:
            latencies[k] = end - arrivals[k]
        batches.append(len(batch))
        free_at, nxt = end, batch[-1] + 1
    return np.array(latencies), batches


@pytest.mark.parametrize("max_batch, delay, rate", [(1, 0.0, 800), (4, 0.0, 3000), (4, 0.002, 3000), (16, 0.001, 9000)])
def test_the_simulator_agrees_with_an_event_stepping_simulation(max_batch, delay, rate):
    arrivals = poisson_arrivals(rate, 600, seed=5)
    service_of = lambda b: 0.0009 + 0.0002 * b  # noqa: E731  (deterministic: one value per size)
    times = {b: np.array([service_of(b)]) for b in range(1, 17)}
    served = simulate(arrivals, ServiceTimes(times, times, np.array([0.0])), max_batch, delay)
    latencies, batches = stepping_reference(arrivals, service_of, max_batch, delay)
    assert served.batches == batches
    assert np.allclose(served.latencies, latencies, rtol=0, atol=1e-12)


def test_no_batching_is_an_md1_queue():
    # Poisson arrivals, one server, a constant service time D: mean time in system D + rho D / (2 (1 - rho)).
    D, rho = 0.001, 0.6
    arrivals = poisson_arrivals(rho / D, 200_000, seed=1)
    served = simulate(arrivals, ServiceTimes({1: np.array([D])}, {1: np.array([D])}, np.array([0.0])), max_batch=1,
                      max_delay_s=0.0)
    theory = D + rho * D / (2 * (1 - rho))
    assert served.latencies.mean() == pytest.approx(theory, rel=0.02)


def test_stalls_are_pooled_as_the_machines():
    # one pass of B=2 took 10x its size's median: it keeps the median, its 9 ms excess joins the pool
    times = ServiceTimes({1: np.array([0.002, 0.002, 0.003]), 2: np.array([0.001, 0.001, 0.001, 0.010])},
                         {1: np.array([0.004, 0.004]), 2: np.array([0.002, 0.002])}, np.array([0.0001]))
    pooled = pool_stalls(times)
    assert pooled.stalls == pytest.approx([0.009], abs=1e-15) and pooled.passes == 11
    assert list(pooled.hot[2]) == [0.001] * 3 and list(pooled.hot[1]) == [0.002, 0.002, 0.003]
    assert pooled.stall_fraction == pytest.approx(1 / 11)


def test_a_simulated_pass_stalls_with_the_measured_probability():
    # every pass stalls (one stall in one pass measured): the hand-derived case above, each pass 1 ms later
    arrivals = np.array([0.0, 0.001, 0.0015, 0.010])
    times = {1: np.array([0.002]), 2: np.array([0.003])}
    stalled = simulate(arrivals, ServiceTimes(times, times, np.array([0.0]), np.array([0.001]), 1), max_batch=2,
                       max_delay_s=0.0005)
    assert stalled.batches == [1, 2, 1]
    assert stalled.latencies == pytest.approx([0.0035, 0.0065, 0.006, 0.0035], abs=1e-15)
    # one in five: the share of passes that stall, over many
    arrivals = np.arange(20_000) * 0.01  # lone requests, 10 ms apart: each pass 2 ms, or 3 ms when it stalls
    served = simulate(arrivals, ServiceTimes(times, times, np.array([0.0]), np.array([0.001]), 5), max_batch=1,
                      max_delay_s=0.0)
    assert np.all(np.isclose(served.latencies, 0.002) | np.isclose(served.latencies, 0.003))
    assert np.isclose(served.latencies, 0.003).mean() == pytest.approx(0.2, abs=0.01)  # 0.2 +- 3.5 sigma


torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def slow_net():
    """An MLP whose passes take about a millisecond or more here, so that the real queue's thread hand-offs
    (tens of microseconds) are small against them."""
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10)).eval()


def summary(checks: list) -> str:
    """What disagreed, in a line per setting (medians and their intervals, ms), not the raw quantile arrays."""
    def ci(d: dict, q: str) -> str:
        lo, hi = d[f"{q}_ci_ms"]
        return f"{q} [{lo:.3g}, {hi:.3g}]"
    return "; ".join(f"max batch {c['max_batch']} delay {c['max_delay_ms']} ms: real {ci(c['real'], 'p50')} "
                     f"{ci(c['real'], 'p99')}, replay {ci(c['replayed'], 'p50')} {ci(c['replayed'], 'p99')}, "
                     f"forecast {ci(c['simulated'], 'p50')}" for c in checks)


def test_the_real_queue_is_run_and_compared_with_the_simulation(slow_net):
    # The real queue runs end to end and its percentiles are compared with the queue model's, replayed with
    # the service times the real run paid, and with the forecast; the verdicts are recomputed here from the
    # recorded intervals and the sentence follows them. Whether they agree on a given run rests on the
    # machine's speed and hiccups during it (two CI runs on a busy VM disagreed on p99 twice in a row), so it
    # is no test's verdict: the queue model's power to disagree is shown with no machine speed in it (the
    # tests below), its agreement measured in benchmarks/RESULTS.md.
    from batchcore.studies.queue_check import agree

    study = bc.studies.deployment(slow_net, torch.randn(256, 1024), max_batch_sizes=(1, 4, 8), max_delays_ms=(0, 1),
                                  requests=1200, service_samples=40, validate=[(8, 1.0), (8, 0.0)],
                                  backend=bc.native(threads=1), seed=0)
    checks = study.data["validation"]
    assert [(c["max_batch"], c["max_delay_ms"]) for c in checks] == [(8, 1.0), (8, 0.0)]
    for c in checks:
        for q in ("p50", "p99"):
            real, replayed, simulated = (c[k][f"{q}_ci_ms"] for k in ("real", "replayed", "simulated"))
            assert all(0 < lo <= hi for lo, hi in (real, replayed, simulated)), summary(checks)
            assert c["replay_agree"][q] == agree(replayed, real) and c["agree"][q] == agree(simulated, real)
        assert 1 <= c["real"]["mean_batch"] <= 8 and 1 <= c["replayed"]["mean_batch"] <= 8
    replayed_on = [q for q in ("p50", "p99") if all(c["replay_agree"][q] for c in checks)]
    said = " and ".join(replayed_on) if replayed_on else "neither p50 nor p99"
    assert f"replayed with the service times the real run paid, agrees with the real queue within the intervals " \
           f"on {said}" in study.verdict


def test_observed_service_times_are_sorted_as_the_simulator_draws_them():
    # The hand-derived case above, run for real with wake-ups: request 0 waits its 0.5 ms delay alone and is
    # taken 0.1 ms late (an idle pass of 2 ms); 1 and 2 fill a batch at 1.5 ms, while the worker is busy, and
    # go from its end at 2.6 ms to 5.6 ms (hot: 3 ms); 3 waits its delay to 10.5 ms, is taken at 10.55 ms.
    arrivals = np.array([0.0, 0.001, 0.0015, 0.010])
    passes = np.array([[0.0, 0.0006, 0.0026], [0.0015, 0.0027, 0.0056], [0.010, 0.01055, 0.01255]])
    run = Served(np.zeros(4), [1, 2, 1], 0.01255, arrivals, passes, 0.01)
    times = observed_times(run, max_batch=2, max_delay_s=0.0005)
    assert times.wakeup == pytest.approx([0.0001, 0.00005], abs=1e-15)
    assert times.idle[1] == pytest.approx([0.002, 0.002], abs=1e-15) and len(times.idle[2]) == 0
    assert times.hot[2] == pytest.approx([0.003], abs=1e-15) and len(times.hot[1]) == 0
    # replayed with these times (one wake-up of 0.1 ms), the policy gives back the run's latencies up to the
    # last request's, whose wake-up was shorter
    replay = simulate(arrivals, ServiceTimes({1: np.array([0.002]), 2: times.hot[2]}, {1: np.array([0.002]), 2: times.hot[2]},
                                             np.array([0.0001])), max_batch=2, max_delay_s=0.0005)
    assert replay.batches == [1, 2, 1]
    assert replay.latencies[:3] == pytest.approx(passes[[0, 1, 1], 2] - arrivals[:3], abs=1e-15)


def test_a_queue_model_that_forgets_the_delay_disagrees_with_the_queue_it_models():
    # The check's power, with no machine speed in the verdict (a real run on a slow moment once let the
    # wrong model pass): the queue is the event-stepping reference on planted service times, at light load
    # (a third of what unbatched passes serve) with a 2 ms delay, so most batches close by deadline. The
    # model with the delay agrees with it; one that forgets the delay does not.
    service_of = lambda b: 0.0009 + 0.0002 * b  # noqa: E731
    rate = 0.3 / service_of(1)
    arrivals = poisson_arrivals(rate, 400, 3)
    latencies, batches = stepping_reference(arrivals, service_of, 8, 0.002)
    queue = Served(latencies, batches, float(np.max(arrivals + latencies)), arrival_span_s=float(arrivals[-1]))
    real = queue.summary(rate)
    times = {b: np.array([service_of(b)]) for b in range(1, 9)}
    measured = ServiceTimes(times, times, np.array([0.0]))
    right = simulated_summary([measured], measured, [arrivals], 8, 0.002, rate, 0)
    wrong = simulated_summary([measured], measured, [arrivals], 8, 0.0, rate, 0)
    assert agree(right["p50_ci_ms"], real["p50_ci_ms"])
    assert not agree(wrong["p50_ci_ms"], real["p50_ci_ms"])
    # the right model's median is several times nearer the queue's than the wrong model's
    assert abs(right["p50_ms"] - real["p50_ms"]) < abs(wrong["p50_ms"] - real["p50_ms"]) / 3


def test_the_best_setting_holds_the_highest_rate_within_the_budget(slow_net):
    study = bc.studies.deployment(slow_net, torch.randn(64, 1024), max_batch_sizes=(1, 2, 8), max_delays_ms=(0,),
                                  requests=800, service_samples=20, validate=None)
    d = study.data
    best = max(d["settings"], key=lambda s: s["max_rate_within_budget"])
    assert d["best"] == {"max_batch": best["max_batch"], "max_delay_ms": best["max_delay_ms"]}
    service = ServiceTimes({int(b): np.array(t) / 1e3 for b, t in d["service_ms"].items()},
                           {int(b): np.array(t) / 1e3 for b, t in d["idle_service_ms"].items()},
                           np.array(d["wakeup_ms"]) / 1e3, np.array(d["stall_ms"]) / 1e3, d["measured_passes"])
    for s in d["settings"]:  # at its highest rate, the p99 is within the budget
        rate = s["max_rate_within_budget"]
        if rate > 0:
            served = simulate(poisson_arrivals(rate, 800, 0), service, s["max_batch"], 0.0, 0)
            assert np.quantile(served.latencies, 0.99) * 1e3 <= d["p99_budget_ms"]
    # The verdict follows the figures (which rest on this machine's speed and noise at the moment): a best
    # setting where some setting holds p99 within the budget at some rate, the advice to raise it where none does.
    if any(s["max_rate_within_budget"] > 0 for s in d["settings"]):
        assert "serves the most load" in study.verdict
    else:
        assert study.verdict.startswith(f"No setting keeps p99 within {d['p99_budget_ms']:.3g} ms at any rate")


def test_bad_settings_are_named(slow_net):
    x = torch.randn(8, 1024)
    with pytest.raises(bc.ArgumentError, match="rate_per_s must be a positive number"):
        bc.studies.deployment(slow_net, x, rate_per_s=-1, max_batch_sizes=(1,), service_samples=2, validate=None)
    with pytest.raises(bc.ArgumentError, match="every max batch size"):
        bc.studies.deployment(slow_net, x, max_batch_sizes=(0,), validate=None)
    with pytest.raises(bc.ArgumentError, match="validate must be"):
        bc.studies.deployment(slow_net, x, max_batch_sizes=(1,), service_samples=2, requests=10, validate="all")


def test_a_failing_forward_reaches_the_caller():
    def broken(idx):
        raise RuntimeError("planted")

    with pytest.raises(RuntimeError, match="planted"):
        serve(broken, 4, np.array([0.0, 0.001]), max_batch=2, max_delay_s=0.0)


def test_the_verdict_reports_the_real_queue_whatever_the_budget_allowed():
    # A machine slow at the moment (or a tight budget) leaves no setting within the budget: what the real
    # queue said of the model is still reported (it was dropped before, and a test read that as a failure).
    from batchcore.studies.deployment import verdict

    agree = {"p50": True, "p99": True}
    checks = [{"agree": {"p50": True, "p99": False}, "replay_agree": agree}]
    settings = [{"max_batch": 1, "max_delay_ms": 0.0, "max_rate_within_budget": 0.0},
                {"max_batch": 8, "max_delay_ms": 1.0, "max_rate_within_budget": 0.0}]
    d = {"best": {"max_batch": 8, "max_delay_ms": 1.0}, "settings": settings, "p99_budget_ms": 4.96,
         "validation": checks}
    text = verdict(d)
    assert text.startswith("No setting keeps p99 within 4.96 ms at any rate")
    assert "replayed with the service times the real run paid, agrees with the real queue within the intervals on " \
           "p50 and p99; the forecast from the times measured beforehand on p50 " in text
    settings[1]["max_rate_within_budget"] = 900.0
    assert verdict(d).startswith("With a p99 budget of 4.96 ms, max batch 8") and "replayed" in verdict(d)
    assert "replayed" not in verdict({**d, "validation": []})


def test_the_study_serves_a_keras_model_through_keras():
    from keras_models import import_keras, wide_mlp

    keras = import_keras()
    model = wide_mlp(keras, seed=8, width=16, hidden=32)
    x = np.random.default_rng(9).standard_normal((64, 16)).astype(np.float32)
    study = bc.studies.deployment(model, x, backend=bc.keras(mode="call"), requests=200, service_samples=8,
                                  max_batch_sizes=(1, 4), max_delays_ms=(0.0,), validate=None, progress=False)
    assert study.data["backend"] == "keras[call]" and len(study.data["settings"]) == 2
    assert set(study.data["service_ms"]) == {"1", "2", "3", "4"}
