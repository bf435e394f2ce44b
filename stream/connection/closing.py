"""The close handshake of a STREAM connection as a pure state machine: which trigger moves it to which stage.

```
OPEN ──close_when_streams_done──▶ OPEN_UNTIL_STREAMS_DONE ──close (no stream left open)──▶ CLOSING
OPEN ──close──▶ CLOSING ──say_close (ConnectionClose Prepare)──▶ CLOSE_SAID ──settle──▶ CLOSED
OPEN ──fail──▶ FAILING ──say_close (in a reply or a Prepare)──▶ CLOSE_SAID
CLOSING, FAILING ──settle (no remote address: nobody to tell)──▶ CLOSED
OPEN, CLOSING, FAILING, CLOSE_SAID ──remote_close──▶ REMOTE_CLOSED ──settle──▶ CLOSED_BY_BOTH
```

(OPEN_UNTIL_STREAMS_DONE leaves like OPEN.) A clean close (CLOSING) sends StreamClose frames for its open
streams before its ConnectionClose and keeps ConnectionClose out of replies until then; a failure (FAILING)
says ConnectionClose at the first chance. `fail` while closing only gives up the StreamClose frames not yet
sent: the stage stays. `settle` is nothing in flight and nothing left to say. Once closed the connection
still answers Prepares: with its ConnectionClose, unless the remote closed too (it hears nothing more).
"""

from __future__ import annotations

from enum import Enum


class Stage(Enum):
    OPEN = "open"
    OPEN_UNTIL_STREAMS_DONE = "open until streams done"  # closes cleanly once no stream is open
    CLOSING = "closing"  # clean close: in-flight packets, StreamClose frames, then ConnectionClose
    FAILING = "failing"  # closed with an error: ConnectionClose goes out with the next reply or Prepare
    CLOSE_SAID = "close said"  # our ConnectionClose is out; waiting for the Prepares in flight
    REMOTE_CLOSED = "remote closed"  # the remote's ConnectionClose came: we say nothing more; waiting
    CLOSED = "closed"  # settled (ConnectionClosed emitted); replies repeat our ConnectionClose
    CLOSED_BY_BOTH = "closed by both"  # settled after the remote's ConnectionClose; replies say nothing

    @property
    def is_open(self) -> bool:
        return self in _OPEN

    @property
    def is_closed(self) -> bool:
        return self in _CLOSED

    @property
    def remote_closed(self) -> bool:
        """The remote said ConnectionClose: nothing more is sent to it."""
        return self in (Stage.REMOTE_CLOSED, Stage.CLOSED_BY_BOTH)

    @property
    def close_due(self) -> bool:
        """Our ConnectionClose is still to be said."""
        return self in (Stage.CLOSING, Stage.FAILING)

    @property
    def close_in_replies(self) -> bool:
        """Replies carry our ConnectionClose."""
        return self in (Stage.FAILING, Stage.CLOSE_SAID, Stage.CLOSED)


class Trigger(Enum):
    CLOSE_WHEN_STREAMS_DONE = "close when streams done"
    CLOSE = "close"  # NoError, by the owner or once no stream is left open
    FAIL = "fail"  # an error code: by the owner, a protocol violation, the idle timeout, ...
    SAY_CLOSE = "say close"  # our ConnectionClose goes out, in a Prepare or a reply
    REMOTE_CLOSE = "remote close"  # a ConnectionClose frame from the remote
    SETTLE = "settle"  # nothing in flight, nothing left to say


_OPEN = frozenset({Stage.OPEN, Stage.OPEN_UNTIL_STREAMS_DONE})
_CLOSED = frozenset({Stage.CLOSED, Stage.CLOSED_BY_BOTH})

S, T = Stage, Trigger
_TABLE: dict[tuple[Stage, Trigger], Stage] = {
    (S.OPEN, T.CLOSE_WHEN_STREAMS_DONE): S.OPEN_UNTIL_STREAMS_DONE,
    (S.OPEN_UNTIL_STREAMS_DONE, T.CLOSE_WHEN_STREAMS_DONE): S.OPEN_UNTIL_STREAMS_DONE,
    **{(stage, T.CLOSE): S.CLOSING for stage in _OPEN},
    **{(stage, T.FAIL): S.FAILING for stage in _OPEN},
    **{(stage, T.FAIL): stage for stage in (S.CLOSING, S.FAILING, S.CLOSE_SAID, S.REMOTE_CLOSED)},
    **{(stage, T.REMOTE_CLOSE): S.REMOTE_CLOSED for stage in (*_OPEN, S.CLOSING, S.FAILING, S.CLOSE_SAID)},
    (S.REMOTE_CLOSED, T.REMOTE_CLOSE): S.REMOTE_CLOSED,
    **{(stage, T.SAY_CLOSE): S.CLOSE_SAID for stage in (S.CLOSING, S.FAILING, S.CLOSE_SAID)},
    (S.CLOSED, T.SAY_CLOSE): S.CLOSED,
    **{(stage, T.SETTLE): S.CLOSED for stage in (S.CLOSING, S.FAILING, S.CLOSE_SAID)},
    (S.REMOTE_CLOSED, T.SETTLE): S.CLOSED_BY_BOTH,
}


class IllegalTransition(RuntimeError):
    def __init__(self, stage: Stage, trigger: Trigger) -> None:
        super().__init__(f"a connection in stage {stage.value!r} cannot {trigger.value}")


def advance(stage: Stage, trigger: Trigger) -> Stage:
    """The stage `trigger` leads to from `stage`; IllegalTransition (a bug in the caller) if none."""
    found = _TABLE.get((stage, trigger))
    if found is None:
        raise IllegalTransition(stage, trigger)
    return found
