"""Counters exposed at /metrics in the Prometheus text format."""

from __future__ import annotations

from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self._counters: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        self._help: dict[str, str] = {}

    def inc(self, name: str, amount: int = 1, help_text: str = "", **labels: str) -> None:
        self._counters[(name, tuple(sorted(labels.items())))] += amount
        if help_text:
            self._help.setdefault(name, help_text)

    def value(self, name: str, **labels: str) -> int:
        return self._counters[(name, tuple(sorted(labels.items())))]

    def render(self) -> str:
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in sorted(self._counters.items()):
            if name not in seen:
                seen.add(name)
                if name in self._help:
                    lines.append(f"# HELP {name} {self._help[name]}")
                lines.append(f"# TYPE {name} counter")
            label_text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")
        return "\n".join(lines) + "\n"
