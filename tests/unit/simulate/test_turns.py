"""A simulated person's calls go one after another (their app waits for each answer), while
people go side by side."""

from __future__ import annotations

import threading

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
    turns: Turns[int] = Turns()
    made: list[int] = []
    lock = threading.Lock()

    def make(call: int) -> None:
        with lock:
            made.append(call)

    def answer_all() -> None:
        while (following := turns.answered("psn-x")) is not None:
            make(following)

    if turns.take("psn-x", 0):
        make(0)
    takers = [
        threading.Thread(target=lambda n=n: turns.take("psn-x", n) and make(n))
        for n in range(1, 200)
    ]
    for thread in takers:
        thread.start()
    for thread in takers:
        thread.join()
    answer_all()
    assert sorted(made) == list(range(200))
