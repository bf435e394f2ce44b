"""The close handshake's state machine (stream/connection/closing.py): the paths its docstring draws, what
each stage means for the connection, and that nothing else moves it."""

import pytest

from stream.connection.closing import IllegalTransition, Stage, Trigger, advance

S, T = Stage, Trigger


def walk(stage: Stage, *triggers: Trigger) -> list[Stage]:
    stages = [stage]
    for trigger in triggers:
        stages.append(advance(stages[-1], trigger))
    return stages


def test_a_clean_close_says_connection_close_once_its_streams_are_told_then_settles() -> None:
    assert walk(S.OPEN, T.CLOSE, T.SAY_CLOSE, T.SETTLE) == [S.OPEN, S.CLOSING, S.CLOSE_SAID, S.CLOSED]


def test_closing_when_the_streams_are_done_stays_open_until_then() -> None:
    stages = walk(S.OPEN, T.CLOSE_WHEN_STREAMS_DONE, T.CLOSE_WHEN_STREAMS_DONE, T.CLOSE)
    assert stages == [S.OPEN, S.OPEN_UNTIL_STREAMS_DONE, S.OPEN_UNTIL_STREAMS_DONE, S.CLOSING]
    assert [stage.is_open for stage in stages] == [True, True, True, False]


def test_a_failure_says_connection_close_at_the_first_chance() -> None:
    assert walk(S.OPEN, T.FAIL, T.SAY_CLOSE, T.SAY_CLOSE, T.SETTLE) == [
        S.OPEN,
        S.FAILING,
        S.CLOSE_SAID,
        S.CLOSE_SAID,
        S.CLOSED,
    ]
    assert S.FAILING.close_in_replies and not S.CLOSING.close_in_replies


@pytest.mark.parametrize("stage", [S.CLOSING, S.FAILING, S.CLOSE_SAID, S.REMOTE_CLOSED])
def test_a_failure_while_closing_leaves_the_stage(stage: Stage) -> None:
    assert advance(stage, T.FAIL) is stage


@pytest.mark.parametrize("stage", [S.OPEN, S.OPEN_UNTIL_STREAMS_DONE, S.CLOSING, S.FAILING, S.CLOSE_SAID])
def test_the_remotes_close_silences_the_connection_until_it_settles(stage: Stage) -> None:
    assert walk(stage, T.REMOTE_CLOSE, T.REMOTE_CLOSE, T.SETTLE)[1:] == [
        S.REMOTE_CLOSED,
        S.REMOTE_CLOSED,
        S.CLOSED_BY_BOTH,
    ]
    assert S.REMOTE_CLOSED.remote_closed and not S.REMOTE_CLOSED.close_in_replies


@pytest.mark.parametrize("stage", [S.CLOSING, S.FAILING])
def test_with_nobody_to_tell_a_close_settles_without_saying_it(stage: Stage) -> None:
    assert advance(stage, T.SETTLE) is S.CLOSED
    assert advance(S.CLOSED, T.SAY_CLOSE) is S.CLOSED  # a late Prepare's reply says it


def test_what_each_stage_means() -> None:
    for stage in Stage:
        assert not (stage.is_open and stage.is_closed)
        assert not (stage.close_in_replies and stage.remote_closed)
        assert not (stage.close_due and (stage.is_open or stage.is_closed or stage.remote_closed))
    assert [s for s in Stage if s.is_closed] == [S.CLOSED, S.CLOSED_BY_BOTH]
    assert [s for s in Stage if s.close_due] == [S.CLOSING, S.FAILING]


def test_nothing_else_moves_it() -> None:
    legal = {
        (S.OPEN, T.CLOSE_WHEN_STREAMS_DONE),
        (S.OPEN_UNTIL_STREAMS_DONE, T.CLOSE_WHEN_STREAMS_DONE),
        *((stage, trigger) for stage in (S.OPEN, S.OPEN_UNTIL_STREAMS_DONE) for trigger in (T.CLOSE, T.FAIL)),
        *((stage, T.FAIL) for stage in (S.CLOSING, S.FAILING, S.CLOSE_SAID, S.REMOTE_CLOSED)),
        *((stage, T.REMOTE_CLOSE) for stage in Stage if not stage.is_closed),
        *((stage, T.SAY_CLOSE) for stage in (S.CLOSING, S.FAILING, S.CLOSE_SAID, S.CLOSED)),
        *((stage, T.SETTLE) for stage in (S.CLOSING, S.FAILING, S.CLOSE_SAID, S.REMOTE_CLOSED)),
    }
    for stage in Stage:
        for trigger in Trigger:
            if (stage, trigger) in legal:
                advance(stage, trigger)
            else:
                with pytest.raises(IllegalTransition):
                    advance(stage, trigger)
