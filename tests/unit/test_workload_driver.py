"""The driver's history records, against a scripted RunClient (no target, no Docker)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Mapping
from typing import Any

import pytest

from chaos.record.history import History, Record
from chaos.record.vocabulary import OP_START_RUN
from chaos.sut.base import Rejection, RunRejected, RunRequest
from chaos.wait import eventually
from chaos.workload import OP_RUN_STATUS, CapPolicy, CutPlan, Driver, RetryPolicy
from chaos.workload.scripted import Script, ScriptedRunClient

QUOTA = "per_user_quota_exhausted"


def req(agent_id: str = "tp-a0", user_id: str | None = "tp-u0") -> RunRequest:
    return RunRequest(agent="chaos", agent_id=agent_id, prompt="hi", user_id=user_id)


def always(script: Script) -> ScriptedRunClient:
    return ScriptedRunClient(script=lambda _req, _attempt: script)


def make_driver(client: ScriptedRunClient, **kw: Any) -> tuple[Driver, History]:
    history = History(seed=7)
    kw.setdefault("poll_timeout_s", 1.0)
    kw.setdefault("poll_interval_s", 0.01)
    return Driver(client, history, **kw), history


def ops(history: History, op: str = OP_START_RUN) -> list[tuple[str, Mapping[str, Any]]]:
    """(outcome, completion data) per invoke, in order."""
    return [(o.outcome or "open", o.result) for o in history.operations(op)]


def assert_all_completed(history: History) -> None:
    """The driver's contract: no invoke is left without an outcome."""
    open_ops = [o.invoke for o in history.operations() if o.completion is None]
    assert open_ops == [], open_ops


def status(value: str, stop: str | None = None) -> Mapping[str, Any]:
    return {"status": value, "stop_reason": stop, "run_id": "r_1", "replica_id": "r2"}


async def test_done_is_ok_with_run_id_owner_stop_reason_and_events() -> None:
    client = always(Script.done("r_9", replica_id="replica-2"))
    driver, history = make_driver(client)

    result = await driver.run(req(), tags={"wave": "p0w0"})

    assert result.completed and result.outcome == "ok" and result.attempts == 1
    [(outcome, data)] = ops(history)
    assert outcome == "ok"
    assert data["end"] == "done"
    assert data["run_id"] == "r_9"
    assert data["replica_id"] == "replica-2"
    assert data["stop_reason"] == "end_turn"
    assert [e["type"] for e in data["events"]] == ["session", "agent", "done"]
    inv = history.operations()[0].invoke
    assert inv.key == "tp-a0" and inv.data["user_id"] == "tp-u0"
    assert inv.data["via"] == "lb" and inv.data["agent"] == "chaos" and inv.data["wave"] == "p0w0"
    assert history.operations(OP_RUN_STATUS) == []  # the stream said it all: no poll
    assert client.closed_early == []
    assert_all_completed(history)


async def test_error_event_is_ok_ended_error_not_a_refusal() -> None:
    driver, history = make_driver(always(Script.error("r_3", "provider exploded")))

    result = await driver.run(req())

    assert result.outcome == "ok" and result.end == "error" and not result.completed
    [(outcome, data)] = ops(history)
    assert outcome == "ok"
    assert data["end"] == "error" and data["error"] == "provider exploded"
    assert data["run_id"] == "r_3" and data["stop_reason"] is None
    assert history.operations(OP_RUN_STATUS) == []


async def test_429_under_the_gate_is_one_fail_and_no_retry() -> None:
    client = always(Script.rejected(429, QUOTA))
    driver, history = make_driver(client, policy=CapPolicy.gated(4))

    result = await driver.run(req())

    assert result.outcome == "fail" and result.code == QUOTA and result.http_status == 429
    [(outcome, data)] = ops(history)
    assert outcome == "fail"
    assert data["status"] == 429 and data["code"] == QUOTA and data["end"] == "rejected"
    assert client.starts["tp-a0"] == 1


async def test_429_sent_anyway_is_retried_with_backoff_until_admitted() -> None:
    def script(_r: RunRequest, attempt: int) -> Script:
        return Script.rejected(429, QUOTA) if attempt < 3 else Script.done()

    client = ScriptedRunClient(script=script)
    retry = RetryPolicy(attempts=5, base_s=0.001, max_s=0.004)
    driver, history = make_driver(client, policy=CapPolicy.send_anyway(4, retry))

    result = await driver.run(req())

    assert result.completed and result.attempts == 3
    assert [o for o, _ in ops(history)] == ["fail", "fail", "ok"]
    assert [o.invoke.data["attempt"] for o in history.operations()] == [1, 2, 3]
    assert all(o.key == "tp-a0" for o in history.operations())
    assert_all_completed(history)


async def test_retries_are_bounded() -> None:
    client = always(Script.rejected(429, QUOTA))
    retry = RetryPolicy(attempts=3, base_s=0.001, max_s=0.002)
    driver, history = make_driver(client, policy=CapPolicy.send_anyway(4, retry))

    result = await driver.run(req())

    assert result.outcome == "fail" and result.attempts == 3
    assert [o for o, _ in ops(history)] == ["fail"] * 3
    assert client.starts["tp-a0"] == 3


async def test_only_listed_codes_are_retried() -> None:
    client = always(Script.rejected(429, "backpressure"))
    retry = RetryPolicy(attempts=4, base_s=0.001, max_s=0.002)
    driver, history = make_driver(client, policy=CapPolicy.send_anyway(4, retry))

    result = await driver.run(req())

    assert result.code == "backpressure" and result.attempts == 1
    assert len(history.operations()) == 1


async def test_broken_stream_is_info_then_a_recorded_status_poll() -> None:
    client = always(Script.broken("r_5"))
    client.statuses["tp-a0"] = [status("running"), status("failed")]
    driver, history = make_driver(client)

    result = await driver.run(req())

    assert result.outcome == "info" and result.end == "broken"
    [(outcome, data)] = ops(history)
    assert outcome == "info"
    assert "StreamBroke" in data["error"] and data["run_id"] == "r_5" and data["cut"] is False
    [(poll_outcome, poll)] = ops(history, OP_RUN_STATUS)
    assert poll_outcome == "ok"
    assert poll["status"] == "failed" and poll["found"] is True and poll["polls"] == 2
    assert history.operations(OP_RUN_STATUS)[0].key == "tp-a0"
    assert result.polled is not None and result.polled["status"] == "failed"
    assert_all_completed(history)


async def test_broken_before_admission_polls_and_finds_no_run() -> None:
    client = always(Script(events=(), after="break"))  # no event at all
    driver, history = make_driver(client)

    result = await driver.run(req())

    assert result.outcome == "info" and result.run_id is None
    [(outcome, poll)] = ops(history, OP_RUN_STATUS)
    assert outcome == "ok" and poll["found"] is False


async def test_status_poll_that_never_sees_terminal_is_info() -> None:
    client = always(Script.broken())
    client.statuses["tp-a0"] = [status("running")]
    driver, history = make_driver(client, poll_timeout_s=0.1)

    await driver.run(req())

    [(outcome, poll)] = ops(history, OP_RUN_STATUS)
    assert outcome == "info"
    assert poll["status"] == "running" and "terminal status" in poll["error"]


async def test_stream_that_ends_without_terminal_event_is_info() -> None:
    client = always(Script(events=Script.hanging().events, after="end"))
    driver, history = make_driver(client)

    await driver.run(req())

    [(outcome, data)] = ops(history)
    assert outcome == "info" and data["error"] == "stream ended without done/error"


async def test_deliberate_cut_after_event_closes_the_stream_and_says_cut() -> None:
    client = always(Script.done(delay_s=0.01))
    client.statuses["tp-a0"] = [status("cancelled", "client disconnected")]
    driver, history = make_driver(client)

    result = await driver.run(req(), cut=CutPlan(after_event="agent"))

    assert result.outcome == "info" and result.end == "cut"
    [(outcome, data)] = ops(history)
    assert outcome == "info" and data["cut"] is True and data["run_id"] == "r_1"
    assert [e["type"] for e in data["events"]] == ["session", "agent"]
    assert client.closed_early == ["tp-a0"]  # the driver really closed it
    [(_, poll)] = ops(history, OP_RUN_STATUS)
    assert poll["stop_reason"] == "client disconnected"


async def test_deliberate_cut_after_time() -> None:
    client = always(Script.hanging())
    client.statuses["tp-a0"] = [status("cancelled", "client disconnected")]
    driver, history = make_driver(client)

    result = await driver.run(req(), cut=CutPlan(after_s=0.05))

    [(outcome, data)] = ops(history)
    assert outcome == "info" and data["cut"] is True and "timeout" not in data
    assert result.end == "cut" and client.closed_early == ["tp-a0"]


async def test_run_timeout_is_a_cut_flagged_timeout() -> None:
    client = always(Script.hanging())
    driver, history = make_driver(client, run_timeout_s=0.05)

    result = await driver.run(req())

    [(outcome, data)] = ops(history)
    assert outcome == "info" and data["cut"] is True and data["timeout"] is True
    assert result.end == "timeout"


async def test_a_client_timeout_is_a_broken_stream_not_ours() -> None:
    def script(_r: RunRequest, _a: int) -> Script:
        raise TimeoutError("client read timeout")

    driver, history = make_driver(ScriptedRunClient(script=script))

    result = await driver.run(req())

    assert result.end == "broken"
    assert ops(history)[0][1]["cut"] is False


async def test_a_client_that_refuses_when_called_is_still_recorded() -> None:
    class Eager(ScriptedRunClient):
        def start_run(self, req: RunRequest) -> Any:
            raise RunRejected(Rejection(status=503, code="runtime_paused", body="{}"))

    driver, history = make_driver(Eager(script=lambda _r, _a: Script.done()))

    result = await driver.run(req())

    assert result.outcome == "fail" and result.code == "runtime_paused"
    assert ops(history)[0][1]["status"] == 503


async def test_cancelling_the_driver_records_info_and_closes_the_stream() -> None:
    client = always(Script.hanging())
    driver, history = make_driver(client)

    task = asyncio.create_task(driver.run(req()))
    await eventually(lambda: _true(client.open_total == 1), what="the stream to open", timeout=2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [(outcome, data)] = ops(history)
    assert outcome == "info" and data["cut"] is True and data["cancelled"] is True
    assert client.closed_early == ["tp-a0"] and client.open_total == 0


async def _true(value: bool) -> bool:
    return value


async def test_driver_history_round_trips_through_jsonl() -> None:
    client = always(Script.broken())
    client.statuses["tp-a0"] = [status("failed")]
    driver, history = make_driver(client)
    await driver.run(req())

    buf = io.StringIO()
    history.dump(buf)
    loaded = History.load(io.StringIO(buf.getvalue()).readlines())

    assert [r.to_json() for r in loaded.records] == [r.to_json() for r in history.records]
    assert isinstance(loaded.records[0], Record)


async def test_run_group_requires_one_user() -> None:
    driver, _ = make_driver(always(Script.done()))
    with pytest.raises(ValueError, match="one user"):
        await driver.run_group([req("a", "u1"), req("b", "u2")])


async def test_a_gated_429_right_after_the_users_release_is_retried_as_release_lag() -> None:
    # loomcycle gives a slot back in a background goroutine after the stream ends:
    # the user's next run may be refused for a slot still on its way back.
    refused = {"n": 0}

    def script(r: RunRequest, attempt: int) -> Script:
        if r.agent_id.endswith("second") and attempt < 3:
            refused["n"] += 1
            return Script.rejected(429, QUOTA)
        return Script.done()

    client = ScriptedRunClient(script=script)
    policy = CapPolicy.gated(1, release_lag_s=5.0)
    driver, _history = make_driver(client, policy=policy)

    first = await driver.run(req("first"))
    second = await driver.run(req("second"))

    assert first.completed and second.completed and second.attempts == 3
    assert refused["n"] == 2


async def test_a_gated_429_with_no_recent_release_is_a_finding_not_retried() -> None:
    client = always(Script.rejected(429, QUOTA))
    driver, _history = make_driver(client, policy=CapPolicy.gated(4, release_lag_s=5.0))

    result = await driver.run(req())

    assert result.outcome == "fail" and result.code == QUOTA and result.attempts == 1


async def test_release_lag_retries_are_bounded() -> None:
    def script(r: RunRequest, attempt: int) -> Script:
        return Script.rejected(429, QUOTA) if r.agent_id.endswith("second") else Script.done()

    client = ScriptedRunClient(script=script)
    policy = CapPolicy.gated(1, release_lag_s=5.0)
    policy = dataclasses.replace(
        policy, lag_retry=RetryPolicy(attempts=3, base_s=0.001, max_s=0.001)
    )
    driver, _ = make_driver(client, policy=policy)

    await driver.run(req("first"))
    second = await driver.run(req("second"))

    assert second.outcome == "fail" and second.code == QUOTA and second.attempts == 3
