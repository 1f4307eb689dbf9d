"""Schedules, the corrections window, and failure alerts to a (local) DingTalk group robot."""

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import duckdb
import pytest

from attendance_pipeline.automation import alert_on_run_failure, corrections_sync, daily_sync
from attendance_pipeline.china_time import SHANGHAI
from attendance_pipeline.dingtalk.robot import send_markdown, signed_url

AT = datetime(2026, 11, 21, 2, 10, tzinfo=SHANGHAI)


def window(request: dg.RunRequest) -> tuple[str, str]:
    return (
        request.tags["dagster/asset_partition_range_start"],
        request.tags["dagster/asset_partition_range_end"],
    )


def test_the_daily_schedule_runs_yesterday():
    request = daily_sync(dg.build_schedule_context(scheduled_execution_time=AT))
    assert window(request) == ("2026-11-20", "2026-11-20")


def test_the_corrections_schedule_re_pulls_the_configured_window(tmp_path, monkeypatch):
    request = corrections_sync(dg.build_schedule_context(scheduled_execution_time=AT))
    assert window(request) == ("2026-11-14", "2026-11-20")
    (tmp_path / "pipeline.yaml").write_text("corrections_days: 3\n", encoding="utf-8")
    monkeypatch.setenv("ATTENDANCE_CONFIG_DIR", str(tmp_path))
    request = corrections_sync(dg.build_schedule_context(scheduled_execution_time=AT))
    assert window(request) == ("2026-11-18", "2026-11-20")


class Receiver:
    """A local stand-in for DingTalk's robot endpoint (loopback only)."""

    def __init__(self, reply: dict) -> None:
        self.requests: list[tuple[str, dict]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.path, json.loads(body)))
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/robot/send?access_token=t0k"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = []

    def make(reply=None):
        made.append(Receiver(reply or {"errcode": 0, "errmsg": "ok"}))
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_messages_are_signed_as_dingtalk_requires(receiver):
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=x", "SECxyz", 1700000000000)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    expected = base64.b64encode(
        hmac.new(b"SECxyz", b"1700000000000\nSECxyz", hashlib.sha256).digest()
    ).decode()
    assert query["timestamp"] == ["1700000000000"] and query["sign"] == [expected]
    robot = receiver()
    send_markdown(robot.url, "SECxyz", "title", "body")
    path, payload = robot.requests[0]
    assert "access_token=t0k" in path and "sign=" in path and "timestamp=" in path
    assert payload == {"msgtype": "markdown", "markdown": {"title": "title", "text": "body"}}


def test_a_refusing_robot_is_a_clear_error_without_the_secret(receiver):
    robot = receiver({"errcode": 310000, "errmsg": "sign not match"})
    with pytest.raises(RuntimeError, match="310000") as caught:
        send_markdown(robot.url, "SECret-value", "t", "b")
    assert "SECret-value" not in str(caught.value)


def test_a_failed_run_lands_in_sync_errors_and_in_the_group(receiver, tmp_path, monkeypatch):
    robot = receiver()
    monkeypatch.setenv("ATTENDANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DINGTALK_ROBOT_WEBHOOK", robot.url)
    monkeypatch.setenv("DINGTALK_ROBOT_SECRET", "SECabc")

    @dg.op
    def explode() -> None:
        raise RuntimeError("DingTalk attendance/list (code 60011): grant the permission")

    @dg.job
    def sync() -> None:
        explode()

    instance = dg.DagsterInstance.ephemeral()
    result = sync.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
    ).for_run_failure()
    alert_on_run_failure(context)

    path, payload = robot.requests[0]
    assert "sign=" in path
    assert result.run_id in payload["markdown"]["text"]
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT system, error_class, key FROM sync_errors").fetchall()
    assert rows == [("dagster", "RunFailure", result.run_id)]
