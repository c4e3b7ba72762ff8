"""Shared bench helpers: percentiles, partner specs; the runtime and receivers come from tests/."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


from runtime_process import RuntimeProcess  # noqa: E402
from support import CountingReceiver, partner_spec  # noqa: E402

partner = partner_spec

__all__ = ["CountingReceiver", "RuntimeProcess", "partner", "pct", "quiet_runtime", "summary"]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):.1f} ms, p99 {pct(values, 99):.1f} ms, mean {statistics.fmean(values):.1f} ms"
    )


def quiet_runtime(partners: list[dict[str, Any]], env: dict[str, str] | None = None) -> RuntimeProcess:
    return RuntimeProcess(partners, {"POWERTOOLS_LOG_LEVEL": "WARNING", **(env or {})}, capture=False)
