"""Counters exposed at /metrics in the Prometheus text format."""

from __future__ import annotations

from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self._counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._help: dict[str, str] = {}
        self._gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, name: str, amount: int = 1, help_text: str = "", **labels: str) -> None:
        self._counters[(name, tuple(sorted(labels.items())))] += amount
        if help_text:
            self._help.setdefault(name, help_text)

    def set(self, name: str, value: float, help_text: str = "", **labels: str) -> None:
        """A gauge: the last value set."""
        self._gauges[(name, tuple(sorted(labels.items())))] = value
        if help_text:
            self._help.setdefault(name, help_text)

    def gauge(self, name: str, **labels: str) -> float | None:
        return self._gauges.get((name, tuple(sorted(labels.items()))))

    def value(self, name: str, **labels: str) -> int:
        return self._counters[(name, tuple(sorted(labels.items())))]

    def render(self) -> str:
        lines: list[str] = []
        seen: set[str] = set()
        series: list[tuple[tuple[str, tuple[tuple[str, str], ...]], float, str]]
        series = [(key, value, "counter") for key, value in self._counters.items()]
        series += [(key, value, "gauge") for key, value in self._gauges.items()]
        for (name, labels), value, kind in sorted(series):
            if name not in seen:
                seen.add(name)
                if name in self._help:
                    lines.append(f"# HELP {name} {self._help[name]}")
                lines.append(f"# TYPE {name} {kind}")
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")
        return "\n".join(lines) + "\n"
