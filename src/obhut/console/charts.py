"""Numbers and bars for the dashboard, drawn on the server as SVG (no script, no style attributes). Counts only;
a count behind fewer than ten customers is shown as "fewer than 10", so that no number singles out a few
people, and the bar for it is not drawn."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_CUSTOMERS = 10
FEWER = "fewer than 10"


def counted(count: int | None, customers: int | None = None) -> str:
    """A count as the dashboard shows it. `customers`: how many customers are behind the count (the count
    itself where each thing counted is one customer). None (withheld by the API) or 1 to 9 customers is
    "fewer than 10"; none at all is "0"."""
    behind = count if customers is None else customers
    if count is None or behind is None or 0 < behind < MIN_CUSTOMERS:
        return FEWER
    return f"{count:,}"


@dataclass(frozen=True)
class Bar:
    label: str
    text: str  # what the bar says: a number, a share, "fewer than 10"
    share: float  # of the chart's full length, 0 to 1; 0 where nothing is drawn

    def length(self, full: float) -> float:
        return round(full * self.share, 1)

    @property
    def suppressed(self) -> bool:
        return self.text == FEWER


@dataclass(frozen=True)
class Chart:
    """`label` names the chart for assistive technology; `key` and `measure` head its text alternative."""

    label: str
    key: str
    measure: str
    bars: tuple[Bar, ...]

    @property
    def empty(self) -> bool:
        return not self.bars


def count_chart(label: str, key: str, measure: str, rows: Iterable[tuple[str, int | None, int | None]]) -> Chart:
    """Bars from (label, count, customers behind it); a suppressed count gets no bar and its scale no part."""
    rows = list(rows)
    texts = [counted(count, customers) for _, count, customers in rows]
    shown = [count or 0 for (_, count, _), text in zip(rows, texts, strict=True) if text != FEWER]
    longest = max(shown, default=0) or 1
    bars = tuple(
        Bar(name, text, 0.0 if text == FEWER else (count or 0) / longest)
        for (name, count, _), text in zip(rows, texts, strict=True)
    )
    return Chart(label, key, measure, bars)


def exact_chart(label: str, key: str, measure: str, rows: Iterable[tuple[str, int]]) -> Chart:
    """Bars of counts that are not about customers (alerts about staff): shown as they are."""
    rows = list(rows)
    longest = max((count for _, count in rows), default=0) or 1
    return Chart(label, key, measure, tuple(Bar(name, f"{count:,}", count / longest) for name, count in rows))


def rate(counts: Mapping[str, int | None], empty: str, part: str = "granted") -> Bar:
    """`part`'s share of all counts, as a bar labelled later. Any count withheld: "fewer than 10"; nothing
    counted: `empty`."""
    if any(value is None for value in counts.values()):
        return Bar("", FEWER, 0.0)
    total = sum(value or 0 for value in counts.values())
    if total == 0:
        return Bar("", empty, 0.0)
    share = (counts.get(part) or 0) / total
    return Bar("", f"{share:.0%}", share)
