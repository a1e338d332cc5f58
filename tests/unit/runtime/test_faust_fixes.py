"""faust's flow control keeps records queued while it already flows (runtime/faust_fixes)."""

import asyncio

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from emeuse.runtime.faust_fixes import keep_queued_records_while_flowing


def queued_after(*steps: str) -> list[str]:
    """Run flow-control steps ("resume", "suspend", or a record to queue): what is queued."""

    async def run() -> list[str]:
        flow = FlowControlEvent()  # suspended at first, as faust's is
        queue: FlowControlQueue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        for step in steps:
            if step == "resume":
                flow.resume()
            elif step == "suspend":
                flow.suspend()
            else:
                queue.put_nowait(step)
        return [queue.get_nowait() for _ in range(queue.qsize())]

    return asyncio.run(run())


def test_a_second_resume_keeps_the_records_fetched_since_the_first():
    keep_queued_records_while_flowing()
    assert queued_after("resume", "enrolment", "resume") == ["enrolment"]


def test_the_first_resume_after_a_suspend_still_drops_what_was_fetched_before():
    keep_queued_records_while_flowing()
    assert queued_after("stale") == ["stale"]
    assert queued_after("stale", "resume") == []
    assert queued_after("resume", "stale", "suspend", "resume", "fresh") == ["fresh"]
