"""How much of a speed-up is noise: the spread a round-robin run measures in itself.

A speed-up is a ratio of two latencies timed in turns, so load from other work on the host falls
on both alike; what is left is the noise a reviewer must not read as a change. The run's rounds
are cut into consecutive passes (each still round-robin), the speed-up computed for each pass,
and the band is how far those pass figures lie apart, relative to the whole run's figure. Two
runs whose speed-ups differ by less than their bands cannot be told apart.
"""
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
