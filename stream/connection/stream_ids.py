"""Which stream ids the remote has opened, in space bounded by the streams it may hold open.

The remote opens its streams in any order (ids of its parity up to our ConnectionMaxStreamId), and the
connection forgets a stream once its close handshake is over, so "never opened" and "opened and closed" must
be told apart without a record of each stream. Every id of the remote's parity up to the highest it opened
counts as opened but for the ids it skipped on the way. Skipped ids stay below our maximum stream id, which
rises by one stream for each of its streams the remote closes: at most `max_remote_streams` of them exist.
"""


class RemoteStreamIds:
    __slots__ = ("_highest", "_skipped")

    def __init__(self, first: int) -> None:
        self._highest = first - 2
        self._skipped: set[int] = set()

    def __contains__(self, stream_id: object) -> bool:
        """Whether the remote has opened `stream_id` (an id of its parity)."""
        return isinstance(stream_id, int) and stream_id <= self._highest and stream_id not in self._skipped

    def add(self, stream_id: int) -> None:
        if stream_id > self._highest:
            self._skipped.update(range(self._highest + 2, stream_id, 2))
            self._highest = stream_id
        else:
            self._skipped.discard(stream_id)

    @property
    def skipped(self) -> int:
        """How many ids below the highest opened one the remote has not opened (what this remembers)."""
        return len(self._skipped)
