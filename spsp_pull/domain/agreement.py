"""The pull agreement: its versions, what it allows now, and how a change by the payer takes effect.

Why the rules are what they are:

* Cycles are anchored: cycle k is `[origin + (k-1)·interval, origin + k·interval)`, every boundary
  computed from the schedule's origin (the start), so month-end agreements do not drift (Jan 31 gives
  Feb 29, Mar 31, Apr 30) and the current cycle is found without walking history (see `cycles`).
* `cap = true` is "use it or lose it": each cycle grants `amount`, and whatever was not pulled in a cycle
  is gone when it ends. `cap = false` accumulates: every cycle up to the last grants `amount`, unpulled
  allowance stays pullable after the last cycle until `expiry` (RFC 0036 and the JavaScript server).
* "Used" counts settled pulls and open reservations alike, so a balance never offers value that is in
  flight, and concurrent pulls can never together exceed the allowance.
* A payer's change is a new Version effective from the start of the *current* cycle, never retroactive
  and never re-granting: what was pulled in the current cycle counts against the new terms (raising the
  amount mid-cycle tops the cycle up, lowering it may leave nothing), and under `cap = false` the
  allowance the old terms granted for earlier cycles and nobody pulled is carried over as `carry`. Under
  `cap = true` the earlier cycles are over and their leftovers lost, so nothing carries.
* A revision that keeps the interval keeps the cycle boundaries too (`Version.schedule_origin`), so
  changing the amount of a month-end agreement never moves its later boundaries. The interval may
  change as well: the new version's cycles start at the current cycle's start and carry on its global
  number, so numbering stays continuous. A shorter interval may put `now` in a later cycle of the new
  version than its first; `rebase_usage` then counts the current cycle's use against the cycle that
  is current now, which never offers more than the terms allow.
* Shortening `cycles` below the current cycle is how a payer ends an agreement (the article's way to
  cancel): nothing more is available from then on, and under `cap = false` the carry is forfeited
  (the new version's carry is 0). Only such a shortening forfeits: after the last cycle of a
  `cap = false` agreement, a change that leaves `cycles` alone or extends it (but not up to the current
  cycle) keeps the accumulated allowance pullable, as it was before the change; the new version simply
  grants nothing more.
* Cancelling ends everything: any `cancelled_at` gives 0, even for a `now` before it, so an instance
  whose clock runs behind can never reopen a cancelled agreement.
* A pause (the payer's, from `since` until `until` or until resumed) stops the agreement without moving
  its calendar: while it lasts nothing is available; a cycle that starts after it began and before it
  ends grants nothing and still counts towards `cycles`. The cycle in progress when the pause began
  (including one that began at that very moment) keeps its grant: what was
  used stays used, and under `cap = true` the rest is pullable again if the pause ends within that same
  cycle (under `cap = false` it accumulates like any grant). Pausing and resuming are revisions (new
  versions from the current cycle's start); the new version keeps the pause window whenever the
  current cycle started within the old one, so that cycle never grants by a later revision.
* Figures are exact integers. Available amounts and carries are capped at U64_MAX, the most that can
  ever be pulled (pulled totals are u64), so capping never takes away anything that could be used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from spsp_pull.domain.clock import utc
from spsp_pull.domain.cycles import cycle_at, cycle_window
from spsp_pull.domain.duration import Interval
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX

_T = TypeVar("_T")
_TICK = timedelta(microseconds=1)  # the resolution of datetime
State = Literal["pending", "active", "paused", "ended", "expired", "cancelled"]


@dataclass(frozen=True, slots=True)
class Pause:
    """The payer's pause from `since` until `until` (None: until the payer resumes)."""

    since: datetime
    until: datetime | None = None

    def __post_init__(self) -> None:
        utc(self.since)
        if self.until is not None and utc(self.until) <= self.since:
            raise ValueError("a pause must end after it begins")

    def covers(self, moment: datetime) -> bool:
        """Whether the pause holds at `moment`."""
        return self.since <= moment and (self.until is None or moment < self.until)

    def withholds(self, cycle_start: datetime) -> bool:
        """Whether a cycle starting at `cycle_start` grants nothing: it starts after the pause began (one
        starting at that very moment was in progress then) and before it ends."""
        return self.since < cycle_start and (self.until is None or cycle_start < self.until)


@dataclass(frozen=True, slots=True)
class Terms:
    amount: int
    asset_code: str
    asset_scale: int
    interval: Interval
    cycles: int
    cap: bool
    start: datetime
    expiry: datetime | None

    def __post_init__(self) -> None:
        if not 1 <= self.amount <= U64_MAX:
            raise ValueError(f"amount {self.amount} is outside 1..U64_MAX")
        if self.cycles < 1:
            raise ValueError(f"cycles must be at least 1, not {self.cycles}")
        utc(self.start)
        if self.expiry is not None and utc(self.expiry) <= self.start:
            raise ValueError("expiry must be after start")


@dataclass(frozen=True, slots=True)
class Version:
    """Terms in force from `anchor`, whose first cycle is global cycle `base_cycle`.

    Global cycle `base_cycle + j` is the j-th cycle after the one starting at `anchor`, boundaries
    computed from `schedule_origin` (when None: `anchor + j·interval`). `carry` is the unpulled
    allowance brought in from earlier versions (meaningful only under `cap = false`). `pause`: cycles that
    start within it grant nothing, and nothing is available while it lasts.

    `schedule_origin`, when set, is the anchor of an earlier version whose interval this one kept;
    `anchor` is one of its boundaries. Month-end schedules need it: re-anchored at a clamped boundary
    (Feb 29 of a Jan 31 schedule) the later boundaries would drift to the 29th; from the schedule's
    origin they stay on Mar 31, Apr 30, ...
    """

    terms: Terms
    number: int
    anchor: datetime
    base_cycle: int
    carry: int
    schedule_origin: datetime | None = None
    pause: Pause | None = None

    def __post_init__(self) -> None:
        utc(self.anchor)
        if self.number < 1 or self.base_cycle < 1:
            raise ValueError("version numbers and cycles count from 1")
        if not 0 <= self.carry <= U64_MAX:
            raise ValueError(f"carry {self.carry} is outside 0..U64_MAX")
        if self.schedule_origin is not None:
            k = cycle_at(self.schedule_origin, self.terms.interval, self.anchor)
            if k == 0 or cycle_window(self.schedule_origin, self.terms.interval, k)[0] != self.anchor:
                raise ValueError("the anchor must be a cycle boundary of the schedule_origin's schedule")

    @classmethod
    def first(cls, terms: Terms) -> Version:
        return cls(terms=terms, number=1, anchor=terms.start, base_cycle=1, carry=0)


@dataclass(frozen=True, slots=True)
class Usage:
    """What has been used (settled + reserved) of an agreement, as the store tracks it.

    `used_in_cycle` belongs to global cycle `cycle`; for any other cycle nothing has been used yet.
    """

    pulled_total: int
    used_since_anchor: int
    used_in_cycle: int
    cycle: int

    def in_cycle(self, c: int) -> int:
        return self.used_in_cycle if self.cycle == c else 0


@dataclass(frozen=True, slots=True)
class Balance:
    """`total` pulled all time, `interval` used in the current cycle, `available` now, `cycle` the current
    global cycle (0 before the start)."""

    total: int
    interval: int
    available: int
    cycle: int


@dataclass(frozen=True, slots=True)
class Changes:
    """A payer's update; None leaves a term as it is, `clear_expiry` removes the expiry."""

    amount: int | None = None
    interval: Interval | None = None
    cycles: int | None = None
    cap: bool | None = None
    expiry: datetime | None = None
    clear_expiry: bool = False
    paused: bool | None = None
    resumes_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.clear_expiry and self.expiry is not None:
            raise ValueError("either set the expiry or clear it, not both")
        if self.resumes_at is not None and self.paused is not True:
            raise ValueError("a time to resume goes with a pause")


def current_cycle(version: Version, now: datetime) -> int:
    """The global cycle at `now`; 0 before the agreement's start.

    A `now` before this version's anchor (a clock behind the one that made the version) counts as the
    anchor, never as an earlier cycle of terms that no longer apply.
    """
    if now < version.terms.start:
        return 0
    moment = max(now, version.anchor)
    return version.base_cycle + _schedule_index(version, moment) - _schedule_index(version, version.anchor)


def global_cycle_window(version: Version, c: int) -> tuple[datetime, datetime]:
    """Global cycle `c` (at least `base_cycle`) of this version as `[start, end)`; see `cycle_window`."""
    if c < version.base_cycle:
        raise ValueError(f"cycle {c} comes before this version's first cycle {version.base_cycle}")
    k = c - version.base_cycle + _schedule_index(version, version.anchor)
    return cycle_window(_origin(version), version.terms.interval, k)


def _origin(version: Version) -> datetime:
    """Where this version's cycle boundaries are computed from."""
    return version.anchor if version.schedule_origin is None else version.schedule_origin


def _schedule_index(version: Version, moment: datetime) -> int:
    return cycle_at(_origin(version), version.terms.interval, moment)


def balance(version: Version, usage: Usage, now: datetime, cancelled_at: datetime | None) -> Balance:
    """Totals and what can be pulled at `now`, `c` being the current cycle. Available is:

    * 0 before the start, at or after `expiry`, and once cancelled;
    * `cap = true`: `amount` less what was used in cycle c, while c <= `cycles`; else 0;
    * `cap = false`: `carry` + `amount` for each of this version's cycles up to min(c, `cycles`), less
      what was used since the anchor;

    never below 0 nor above U64_MAX.
    """
    c = current_cycle(version, now)
    return Balance(
        total=usage.pulled_total,
        interval=usage.in_cycle(c),
        available=_available(version, usage, now, cancelled_at, c),
        cycle=c,
    )


def _available(version: Version, usage: Usage, now: datetime, cancelled_at: datetime | None, c: int) -> int:
    terms = version.terms
    if c == 0 or cancelled_at is not None or _expired(terms, now) or paused(version, now):
        return 0
    if terms.cap:
        granted = terms.amount if c <= terms.cycles and _grants(version, c) else 0
        used = usage.in_cycle(c)
    else:
        granted = version.carry + terms.amount * _cycles_granted(version, last=min(c, terms.cycles))
        used = usage.used_since_anchor
    return _clamp_u64(granted - used)


def paused(version: Version, now: datetime) -> bool:
    """Whether the payer's pause holds at `now`."""
    return version.pause is not None and version.pause.covers(now)


def resumes_at(version: Version, now: datetime) -> datetime | None:
    """When a pause holding at `now` ends by itself; None when none holds or it lasts until resumed."""
    return version.pause.until if version.pause is not None and paused(version, now) else None


def state(version: Version, now: datetime, cancelled_at: datetime | None) -> State:
    """`cancelled` > `expired` (at/after expiry) > `paused` > `pending` (before start) > `ended` > `active`.

    `ended` means no further allowance will be granted: the current cycle is past the last one (which
    includes `cycles` shortened below the cycle of the change). Under `cap = false` unpulled allowance
    may still be available then; `balance` says how much.
    """
    if cancelled_at is not None:
        return "cancelled"
    if _expired(version.terms, now):
        return "expired"
    if paused(version, now):
        return "paused"
    c = current_cycle(version, now)
    if c == 0:
        return "pending"
    if c > version.terms.cycles:
        return "ended"
    return "active"


def validate_expiry(expiry: datetime, start: datetime | None, now: datetime) -> None:
    """Refuse an expiry that is not after the start ('start-after-expiry') or not in the future
    ('expiry-in-past'). `start` None means none was stated: it defaults to `now`."""
    if start is not None and start >= expiry:
        raise InputError("start-after-expiry", "expiry must be after the start", field="expiry")
    if expiry <= now:
        raise InputError("expiry-in-past", "expiry must be in the future", field="expiry")


def revise(version: Version, usage: Usage, changes: Changes, now: datetime) -> Version:
    """The version that applies `changes` from the start of the current cycle (see the module docstring).

    Before the start there is nothing to carry: the new terms simply replace the old ones.
    Raises InputError 'start-after-expiry' or 'expiry-in-past' for an unusable new expiry,
    'resumes-at-in-past' for a pause that would end by now, 'not-paused' for a resume without a pause.
    Whether the agreement may be changed at all (not cancelled, the caller is the payer) is the caller's
    decision.
    """
    terms = _revised_terms(version.terms, changes, now)
    c = current_cycle(version, now)
    if c == 0:
        pause = _revised_pause(version, changes, now, terms.start)
        return Version(
            terms=terms, number=version.number + 1, anchor=terms.start, base_cycle=1, carry=0, pause=pause
        )
    anchor, _ = global_cycle_window(version, c)
    return Version(
        terms=terms,
        number=version.number + 1,
        anchor=anchor,
        base_cycle=c,
        carry=0 if _ends_early(version, changes, c) else _carry(version, usage, c),
        schedule_origin=_origin(version) if terms.interval == version.terms.interval else None,
        pause=_revised_pause(version, changes, now, anchor),
    )


def _revised_pause(version: Version, changes: Changes, now: datetime, anchor: datetime) -> Pause | None:
    """The pause of the version made at `now` from `anchor` on.

    A new pause begins now, unless the old one still holds or withholds the cycle starting at `anchor`:
    then it goes on from the old one's start, so that cycle still grants nothing. A pause asked for
    again while one holds only sets its end; a resume ends the holding pause now.
    """
    old = version.pause
    if changes.paused is None:
        return old
    holding = old is not None and old.covers(now)
    if changes.paused:
        if changes.resumes_at is not None and changes.resumes_at <= now:
            raise InputError("resumes-at-in-past", "resumesAt must be in the future", field="resumesAt")
        since = old.since if old is not None and (holding or old.withholds(anchor)) else now
        return Pause(since=since, until=changes.resumes_at)
    if old is None or not holding:
        raise InputError("not-paused", "The pointer is not paused.", status=409)
    return None if old.since == now else Pause(since=old.since, until=now)


def rebase_usage(usage: Usage, new_version: Version, now: datetime) -> Usage:
    """Usage as seen from `new_version`, made by `revise` at the same `now`.

    What was used since the new anchor is exactly what was used in the cycle that was current at the
    revision (global cycle `base_cycle`). It also stays counted against the cycle that is current now:
    when a shorter new interval puts `now` in a later cycle of the new version than its first, part of
    that use may have happened in the new current cycle, and counting it all there is the one choice
    that never offers more than the terms allow. Before the start the anchor did not move: nothing
    changes.
    """
    c = current_cycle(new_version, now)
    if c == 0:
        return usage
    used = usage.in_cycle(new_version.base_cycle)
    return Usage(pulled_total=usage.pulled_total, used_since_anchor=used, used_in_cycle=used, cycle=c)


def _revised_terms(terms: Terms, changes: Changes, now: datetime) -> Terms:
    if changes.expiry is not None:
        validate_expiry(changes.expiry, terms.start, now)
    return dataclasses.replace(
        terms,
        amount=_changed(changes.amount, terms.amount),
        interval=_changed(changes.interval, terms.interval),
        cycles=_changed(changes.cycles, terms.cycles),
        cap=_changed(changes.cap, terms.cap),
        expiry=None if changes.clear_expiry else _changed(changes.expiry, terms.expiry),
    )


def _changed(new: _T | None, old: _T) -> _T:
    return old if new is None else new


def _ends_early(old: Version, changes: Changes, c: int) -> bool:
    """Whether the change shortens `cycles` below the current cycle `c`: the payer ends the agreement."""
    return changes.cycles is not None and changes.cycles < min(old.terms.cycles, c)


def _carry(old: Version, usage: Usage, c: int) -> int:
    """Unpulled allowance the old version granted for the cycles before `c` (0 under `cap = true`)."""
    if old.terms.cap:
        return 0
    granted = old.carry + old.terms.amount * _cycles_granted(old, last=min(c - 1, old.terms.cycles))
    used_before_anchor = usage.used_since_anchor - usage.in_cycle(c)
    return _clamp_u64(granted - used_before_anchor)


def _cycles_granted(version: Version, last: int) -> int:
    """How many of this version's cycles, up to global cycle `last`, have granted `amount`: all but those
    the pause withholds (consecutive cycles, from the first starting after its start to the last starting
    before its end)."""
    cycles = max(0, last - version.base_cycle + 1)
    pause = version.pause
    if pause is None:
        return cycles
    first_withheld = _first_cycle_after(version, pause.since)
    # The first cycle starting at or after the end is the first starting after the microsecond before it.
    end = last + 1 if pause.until is None else min(last + 1, _first_cycle_after(version, pause.until - _TICK))
    return cycles - max(0, end - first_withheld)


def _grants(version: Version, c: int) -> bool:
    """Whether global cycle `c` (at least `base_cycle`) grants: the pause does not withhold it."""
    return version.pause is None or not version.pause.withholds(global_cycle_window(version, c)[0])


def _first_cycle_after(version: Version, moment: datetime) -> int:
    """The first of this version's global cycles that starts after `moment`."""
    if moment < version.anchor:
        return version.base_cycle
    return current_cycle(version, moment) + 1


def _expired(terms: Terms, now: datetime) -> bool:
    return terms.expiry is not None and now >= terms.expiry


def _clamp_u64(value: int) -> int:
    return min(max(0, value), U64_MAX)
