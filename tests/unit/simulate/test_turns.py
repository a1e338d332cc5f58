"""A simulated person's calls go one after another (their app waits for each answer), while
people go side by side."""

from __future__ import annotations

import threading
import time

from emeuse.simulate.turns import Turns


def test_a_persons_next_call_waits_for_the_answer_to_the_one_in_flight():
    turns: Turns[str] = Turns()
    assert turns.take("psn-aide-resident", "check-in")
    assert not turns.take("psn-aide-resident", "check-out")  # check-in not answered yet
    assert not turns.take("psn-aide-resident", "second visit")
    # Answers hand the person's calls on in the order they were due.
    assert turns.answered("psn-aide-resident") == "check-out"
    assert turns.answered("psn-aide-resident") == "second visit"
    assert turns.answered("psn-aide-resident") is None
    # Nothing in flight for them any more: their next call goes at once.
    assert turns.take("psn-aide-resident", "later")


def test_people_go_side_by_side_and_calls_for_no_one_never_wait():
    turns: Turns[str] = Turns()
    assert turns.take("psn-a", "a1")
    assert turns.take("psn-b", "b1")
    assert turns.take("", "register a place")
    assert turns.take("", "register a practitioner")
    assert turns.answered("") is None


def test_calls_taken_and_answered_from_many_threads_are_each_made_once():
    """Calls taken on one thread while their answers come on others, as gRPC's do: each
    is made once, none is left waiting."""
    turns: Turns[int] = Turns()
    made: list[int] = []
    lock = threading.Lock()
    in_flight = threading.Semaphore(0)

    def make(call: int) -> None:
        with lock:
            made.append(call)
        in_flight.release()  # its answer will come

    def answering() -> None:  # each answer hands the person's next call on
        while True:
            in_flight.acquire()
            following = turns.answered("psn-x")
            if following is not None:
                make(following)
            with lock:
                if len(made) == 2000:
                    return

    answerers = [threading.Thread(target=answering, daemon=True) for _ in range(2)]
    for thread in answerers:
        thread.start()
    for call in range(2000):
        if turns.take("psn-x", call):
            make(call)
    deadline = time.monotonic() + 10
    while len(made) < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in answerers:  # wakes an answerer still waiting once all are made
        in_flight.release()
    for thread in answerers:
        thread.join(10)
    assert sorted(made) == list(range(2000))
    assert turns.take("psn-x", 2000)  # none left waiting: the person's next call goes
