"""The answer a ledger caller waits on: set once by the writer, read by the caller."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pacioli.ledger.service.batcher import Answer, Batcher, LoopAnswer, answer_all


def test_a_waiting_caller_gets_the_value_set_later():
    answer: Answer[int] = Answer()
    got = []
    waiter = threading.Thread(target=lambda: got.append(answer.result()))
    waiter.start()
    waiter.join(0.05)
    assert waiter.is_alive() and got == []  # still waiting: nothing was set
    answer.set_result(42)
    waiter.join(5)
    assert got == [42]
    assert answer.result() == 42  # reading again does not block


def test_an_exception_is_raised_to_the_caller_every_time():
    answer: Answer[int] = Answer()
    answer.set_exception(ValueError("refused"))
    for _ in range(2):
        with pytest.raises(ValueError, match="refused"):
            answer.result()


def test_a_batch_that_fails_as_a_whole_is_retried_item_by_item():
    calls = []

    def execute(items, while_committing):
        calls.append(list(items))
        if len(items) > 1 or items[0] == "bad":
            raise RuntimeError(f"cannot run {items}")
        return [item.upper() for item in items]

    release = threading.Event()
    batcher = Batcher(lambda items, hook: (release.wait(5), execute(items, hook))[1],
                      footprint=lambda item: (), batch_size_max=8)
    try:
        answers = [batcher.submit(item) for item in ("a", "bad", "c")]
        release.set()
        assert answers[0].result() == "A"
        with pytest.raises(RuntimeError, match="bad"):
            answers[1].result()
        assert answers[2].result() == "C"
    finally:
        batcher.close()
    assert ["a"] in calls and ["bad"] in calls and ["c"] in calls


def test_a_batch_is_answered_while_the_next_one_commits_or_at_once_if_none_follows():
    answers: dict[str, Answer[str]] = {}
    seen: list[tuple[str, bool, bool]] = []  # (batch, first answered before, after the hook)
    first_running = threading.Event()
    second_queued = threading.Event()

    def execute(items, while_committing):
        if items == ["first"]:
            first_running.set()
            second_queued.wait(5)  # so "second" waits in the queue when "first" commits
        else:
            before = answers["first"].done()
            while_committing()  # the writes and COMMIT of this batch are on their way
            seen.append((items[0], before, answers["first"].done()))
        return [item.upper() for item in items]

    batcher = Batcher(execute, footprint=lambda item: (), batch_size_max=8)
    try:
        answers["first"] = batcher.submit("first")
        first_running.wait(5)
        answers["second"] = batcher.submit("second")
        second_queued.set()
        assert answers["second"].result() == "SECOND"  # answered at once: nothing follows
        assert answers["first"].result() == "FIRST"
    finally:
        batcher.close()
    assert seen == [("second", False, True)]


def test_a_batch_wakes_each_event_loop_once_for_all_its_awaiting_callers():
    loop = asyncio.new_event_loop()
    wakes = []
    call_soon_threadsafe = loop.call_soon_threadsafe

    def counting_call_soon_threadsafe(callback, *args):
        wakes.append(callback)
        return call_soon_threadsafe(callback, *args)

    loop.call_soon_threadsafe = counting_call_soon_threadsafe
    try:
        awaiting = [LoopAnswer(loop) for _ in range(3)]
        awaiting[1].future.cancel()  # its caller gave up: skipped, the others still answered
        blocking: Answer[str] = Answer()
        answer_all([awaiting[0], blocking, awaiting[1], awaiting[2]], ["a", "b", "c", "d"])
        assert blocking.result() == "b"
        loop.run_until_complete(asyncio.sleep(0))
        assert len(wakes) == 1
        assert awaiting[0].future.result() == "a"
        assert awaiting[2].future.result() == "d"
        assert awaiting[1].future.cancelled()
    finally:
        loop.close()
