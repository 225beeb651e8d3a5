"""Every latency figure the pipeline reports: models timed in turns, one set of statistics, and
how much of a speed-up is noise (the spread a round-robin run measures in itself).

Runners are timed round-robin: each input goes through every runner, the order rotated by one
each round, so load from other work on the host falls on all alike. Only the call is timed.

A speed-up is a ratio of two latencies timed in turns, so load from other work on the host falls
on both alike; what is left is the noise a reviewer must not read as a change. The run's rounds
are cut into consecutive passes (each still round-robin), the speed-up computed for each pass,
and the band is how far those pass figures lie apart, relative to the whole run's figure. Two
runs whose speed-ups differ by less than their bands cannot be told apart.
"""
import time

import numpy as np

PASSES = 3  # at least two; each pass must keep enough rounds for its own minimum
STATISTICS = {"min": np.min, "p50": np.median, "mean": np.mean}  # a latency statistic by its name


def speedup_spread(reference, variant, statistic=np.min, passes: int = PASSES) -> float:
    """(max - min) / whole-run value of statistic(reference) / statistic(variant) over `passes`
    consecutive blocks of the timings; 0 when there are too few rounds to cut."""
    reference, variant = np.asarray(reference, float), np.asarray(variant, float)
    n = min(len(reference), len(variant))
    if n < 2 * passes:
        return 0.0
    blocks = np.array_split(np.arange(n), passes)
    ratios = [statistic(reference[b]) / statistic(variant[b]) for b in blocks]
    return float((max(ratios) - min(ratios)) / (statistic(reference[:n]) / statistic(variant[:n])))


def noise_band(times: dict, reference: str, statistic=np.min, passes: int = PASSES) -> float:
    """The largest speed-up spread over every variant timed against `reference` (a fraction:
    0.05 means speed-ups within 5% of each other are the same)."""
    spreads = [speedup_spread(times[reference], ms, statistic, passes) for name, ms in times.items()
               if name != reference]
    return max(spreads, default=0.0)


def round_robin(runners: dict, inputs, warmup_input=None, warmup: int = 0, keep: bool = False,
                desc=None, total=None):
    """{name: milliseconds per call} of every runner over the inputs, in turns (and, with `keep`,
    {name: outputs} too). `warmup` untimed calls of each on `warmup_input` come first."""
    from tqdm import tqdm

    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name](warmup_input)
    times, outputs = {n: [] for n in names}, {n: [] for n in names}
    for i, x in enumerate(tqdm(inputs, desc=desc, total=total, unit="input", disable=desc is None)):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            out = runners[name](x)
            times[name].append((time.perf_counter() - t0) * 1000.0)
            if keep:
                outputs[name].append(out)
    return (times, outputs) if keep else times


def latency(ms) -> dict:
    """Mean, median, 90th percentile and minimum of milliseconds: the keys every latency has."""
    return {"latency_ms_mean": float(np.mean(ms)), "latency_ms_p50": float(np.percentile(ms, 50)),
            "latency_ms_p90": float(np.percentile(ms, 90)), "latency_ms_min": float(np.min(ms))}
