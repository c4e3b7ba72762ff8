from webhooks.store.stats import LATENCY_BOUNDS_MS, latency_bucket, percentile


def test_latency_buckets_by_upper_bound() -> None:
    assert latency_bucket(0) == 0
    assert latency_bucket(5) == 0
    assert latency_bucket(5.1) == 1
    assert latency_bucket(30000) == len(LATENCY_BOUNDS_MS) - 1
    assert latency_bucket(90000) == len(LATENCY_BOUNDS_MS)  # beyond the last bound


def test_percentiles_are_the_bound_of_the_bucket_they_fall_in() -> None:
    histogram = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    assert percentile(histogram, 0.5) is None
    histogram[1] = 90  # <= 10 ms
    histogram[5] = 10  # <= 250 ms
    assert percentile(histogram, 0.5) == 10.0
    assert percentile(histogram, 0.9) == 10.0
    assert percentile(histogram, 0.95) == 250.0
    histogram[-1] = 1000  # beyond the last bound: reported as the last bound
    assert percentile(histogram, 0.99) == float(LATENCY_BOUNDS_MS[-1])
