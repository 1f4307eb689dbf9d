"""DingTalk Stream mode (issue 13, items 1 and 3): the simulator's gateway, the real
`dingtalk-stream` client against it, and `attendance-pipeline listen` storing each event exactly
once across duplicates, dropped connections and a crash between storing and acknowledging."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import dingtalk_stream
import pytest
import requests
from websockets.exceptions import ConnectionClosed

from attendance_pipeline.event_queue import EventQueue
from attendance_pipeline.listen import CRASH_AFTER_STORE, Listener

OPEN = "/v1.0/gateway/connections/open"


def wait_for(condition: Callable[[], Any], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def acked(sim: Any, event_id: str) -> bool:
    return any(e["eventId"] == event_id and e["acked"] for e in sim.stream.snapshot()["events"])


@pytest.fixture
def listener(dingtalk_sim, tmp_path) -> Iterator[tuple[Any, EventQueue, Listener]]:
    sim, url = dingtalk_sim()
    queue = EventQueue(tmp_path / "events.sqlite")
    listen = Listener(queue, "sim-key", "sim-secret", url, max_backoff_s=2)
    thread = threading.Thread(target=listen.run, daemon=True)
    thread.start()
    yield sim, queue, listen
    listen.stop.set()
    thread.join(timeout=10)
    sim.stream.stop()


def test_open_needs_the_app_key_and_secret_and_a_ticket_is_single_use(dingtalk_sim):
    sim, url = dingtalk_sim()
    body = {"clientId": "sim-key", "clientSecret": "wrong", "subscriptions": [{"type": "EVENT"}]}
    assert requests.post(url + OPEN, json=body, timeout=5).status_code == 401
    body["clientSecret"] = "sim-secret"
    reply = requests.post(url + OPEN, json=body, timeout=5)
    assert reply.status_code == 200
    opened = reply.json()
    assert opened["endpoint"].startswith("ws://127.0.0.1:") and opened["ticket"]

    import websockets.sync.client as ws_client

    uri = f"{opened['endpoint']}?ticket={opened['ticket']}"
    with ws_client.connect(uri) as ws:
        eid = sim.stream.publish("user_add_org", {"UserId": ["u9"]})
        frame = json.loads(ws.recv(timeout=5))
        assert frame["type"] == "EVENT" and frame["specVersion"] == "1.0"
        headers = frame["headers"]
        assert headers["eventId"] == eid and headers["eventType"] == "user_add_org"
        assert {"topic", "messageId", "eventBornTime", "eventCorpId"} <= set(headers)
    with ws_client.connect(uri) as ws, pytest.raises(ConnectionClosed):  # the ticket was used
        ws.recv(timeout=5)
    sim.stream.stop()


def test_the_real_dingtalk_stream_client_receives_the_simulators_events(dingtalk_sim, monkeypatch):
    """Fidelity: the official client, unmodified but for its endpoint constant and its host-IP
    lookup (which would open a UDP socket towards 8.8.8.8)."""
    sim, url = dingtalk_sim()
    monkeypatch.setattr(dingtalk_stream.DingTalkStreamClient, "OPEN_CONNECTION_API", url + OPEN)
    monkeypatch.setattr(dingtalk_stream.DingTalkStreamClient, "get_host_ip", lambda self: "")
    received: list[Any] = []

    class Recorder(dingtalk_stream.EventHandler):
        async def process(self, event: dingtalk_stream.EventMessage) -> tuple[int, str]:
            received.append(event)
            return dingtalk_stream.AckMessage.STATUS_OK, "OK"

    # Its own logger, silenced after the test: the client keeps retrying once the simulator is
    # gone, and its retry log line is malformed (`logger.exception('unknown exception', e)`).
    sdk_log = logging.getLogger("tests.dingtalk_stream")
    credential = dingtalk_stream.Credential("sim-key", "sim-secret")
    client = dingtalk_stream.DingTalkStreamClient(credential, logger=sdk_log)
    client.register_all_event_handler(Recorder())
    threading.Thread(target=lambda: asyncio.run(client.start()), daemon=True).start()
    leave = {"approveId": "ap-1", "userId": "u1", "bizType": 3, "tagName": "请假"}
    ids = sim.publish_approval(leave)
    ids += sim.publish_approval(
        {**leave, "approveId": "ap-2", "bizType": 4, "beginTime": "2026-11-18 09:00"}
    )
    wait_for(lambda: len(received) == 3)
    assert [e.headers.event_id for e in received] == ids
    first = received[0]
    assert first.headers.event_type == "bpms_instance_change"
    assert first.data["processInstanceId"] == "ap-1" and first.data["staffId"] == "u1"
    assert received[2].data["dataList"][0]["userId"] == "u1"
    wait_for(lambda: all(acked(sim, i) for i in ids))
    sdk_log.disabled = True
    sim.stream.stop()


def test_listen_stores_each_event_once_before_acking_and_duplicates_are_no_ops(listener):
    sim, queue, _ = listener
    eid = sim.stream.publish(
        "attendance_check_record", {"dataList": [{"userId": "u1", "checkTime": "2026-11-18"}]}
    )
    wait_for(lambda: acked(sim, eid))
    assert queue.counts() == {"events": 1, "pending": 1, "deliveries": 1}
    sim.stream.redeliver(eid)  # DingTalk delivers at least once
    wait_for(lambda: acked(sim, eid) and queue.counts()["deliveries"] == 2)
    assert queue.counts()["events"] == 1
    [event] = queue.pending()
    assert event.users() == ["u1"] and event.days() == [date(2026, 11, 18)]


def test_a_dropped_connection_is_reopened_and_nothing_is_lost(listener):
    sim, queue, listen = listener
    first = sim.stream.publish("user_leave_org", {"UserId": ["u2"]})
    wait_for(lambda: acked(sim, first))
    assert sim.stream.drop() == 1
    second = sim.stream.publish("user_add_org", {"UserId": ["u3"]})  # while disconnected
    wait_for(lambda: acked(sim, second))
    assert listen.connections >= 2
    assert [e.event_id for e in queue.pending()] == [first, second]


def test_clock_changes_become_events(dingtalk_sim):
    sim, _ = dingtalk_sim(today=date(2026, 11, 10))
    ids = sim.advance(date(2026, 11, 20))
    events = {e["eventId"]: e for e in sim.stream.snapshot()["events"]}
    assert ids and set(ids) == set(events)
    kinds = {e["eventType"] for e in events.values()}
    assert "bpms_instance_change" in kinds
    approvals = {a["approveId"] for a in sim.truth_approvals(date(2026, 9, 26), date(2026, 12, 20))}
    finished = {
        e["data"]["processInstanceId"]
        for e in events.values()
        if e["eventType"] == "bpms_instance_change"
    }
    assert finished <= approvals
    assert sim.advance(date(2026, 11, 20)) == []  # nothing changed, nothing pushed
    sim.stream.stop()


@pytest.mark.slow
def test_killed_between_storing_and_acking_the_event_is_processed_once(dingtalk_sim, tmp_path):
    sim, url = dingtalk_sim()
    env = {
        **os.environ,
        "ATTENDANCE_DATA_DIR": str(tmp_path / "data"),
        "DINGTALK_API_BASE_URL": url,
        "DINGTALK_BASE_URL": url,
        CRASH_AFTER_STORE: "1",
    }
    env.pop("DINGTALK_APP_KEY", None)
    eid = sim.stream.publish(
        "bpms_instance_change", {"processInstanceId": "p1", "staffId": "u1", "type": "finish"}
    )
    command = [sys.executable, "-m", "attendance_pipeline.cli", "listen"]
    crashed = subprocess.run(command, env=env, timeout=60, capture_output=True)
    assert crashed.returncode == 17  # exited after the commit, before the ack
    queue = EventQueue(tmp_path / "data" / "events.sqlite")
    assert queue.counts()["events"] == 1 and not acked(sim, eid)

    del env[CRASH_AFTER_STORE]
    again = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: acked(sim, eid), 30)
    finally:
        again.terminate()
        again.wait(timeout=10)
    assert queue.counts() == {"events": 1, "pending": 1, "deliveries": 2}
    sim.stream.stop()
