"""The answer a ledger caller waits on: set once by the writer, read by the caller."""

from __future__ import annotations

import threading

import pytest

from pacioli.ledger.service.batcher import Answer, Batcher


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

    def execute(items):
        calls.append(list(items))
        if len(items) > 1 or items[0] == "bad":
            raise RuntimeError(f"cannot run {items}")
        return [item.upper() for item in items]

    release = threading.Event()
    batcher = Batcher(lambda items: (release.wait(5), execute(items))[1],
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
