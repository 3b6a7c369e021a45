"""Health, metrics, OpenAPI, problem documents for failures, and the access log."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from pacioli.api.app import create_app
from pacioli.api.observability import JsonFormatter, configure_logging
from pacioli.ledger import LedgerUnavailable
from tests.e2e.conftest import assert_problem


class BrokenLedger:
    """A stand-in ledger whose reads fail, to reach the API's failure paths."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def list_assets(self):
        raise self.error


def test_healthz_reports_ok_when_the_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_reports_unavailable_when_the_database_does_not(engine):
    unreachable = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app(unreachable, ledger=BrokenLedger(RuntimeError()))
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_an_unexpected_error_is_a_500_problem_without_internals(engine, admin_key):
    app = create_app(engine, ledger=BrokenLedger(RuntimeError("secret internals")))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/assets", headers={"Authorization": f"Bearer {admin_key}"})
    assert_problem(response, 500, "internal_error")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


def test_a_busy_ledger_is_a_503_with_retry_after(engine, admin_key):
    app = create_app(engine, ledger=BrokenLedger(LedgerUnavailable("busy")))
    with TestClient(app) as client:
        response = client.get("/v1/assets", headers={"Authorization": f"Bearer {admin_key}"})
    assert_problem(response, 503, "ledger_unavailable")
    assert int(response.headers["retry-after"]) >= 1


def test_an_unknown_path_is_a_not_found_problem(client):
    assert_problem(client.get("/v2/nothing"), 404, "not_found")


def test_a_wrong_method_is_a_problem(api):
    response = api.client.delete("/v1/assets", headers=api.headers())
    assert_problem(response, 405, "method_not_allowed")


def test_metrics_count_requests_by_route_template_and_include_the_ledger(api):
    account = api.open_account()
    api.get(f"/v1/accounts/{account['id']}")
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert ('pacioli_http_requests_total{method="GET",route="/v1/accounts/{account_id}",'
            'status="200"}') in text
    assert ('pacioli_http_request_seconds_bucket{le="0.005",method="POST",'
            'route="/v1/accounts"') in text
    assert 'pacioli_ledger_commands_total{command="OpenAccount",outcome="ok"}' in text
    assert "pacioli_ledger_commit_seconds_bucket" in text


def test_openapi_and_docs_are_served(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    assert "/v1/transfers/{transfer_id}/post" in paths
    assert "HTTPBearer" in spec.json()["components"]["securitySchemes"]
    assert "application/problem+json" in paths["/v1/transfers"]["post"]["responses"]["422"][
        "content"]
    assert client.get("/docs").status_code == 200


def test_each_request_writes_one_access_log_line(api, caplog):
    caplog.set_level(logging.INFO, logger="pacioli.api.access")
    response = api.client.get("/v1/assets", headers={**api.headers(), "X-Request-ID": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    records = [r for r in caplog.records
               if r.name == "pacioli.api.access" and r.request_id == "req-42"]
    assert len(records) == 1
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["method"] == "GET" and line["path"] == "/v1/assets" and line["status"] == 200
    assert line["route"] == "/v1/assets" and line["request_id"] == "req-42"
    assert line["duration_ms"] >= 0 and line["level"] == "INFO"


def test_a_request_without_an_id_gets_a_fresh_one(client):
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(first) == 32
    assert second.headers["x-request-id"] not in (first, "bad id with spaces")


def test_configure_logging_installs_one_json_handler():
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        configure_logging("INFO", "json")
        configure_logging("DEBUG", "json")
        ours = [h for h in root.handlers if h not in before[0]]
        assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
        assert root.level == logging.DEBUG
        with pytest.raises(ValueError):
            configure_logging("INFO", "xml")
    finally:
        for handler in [h for h in root.handlers if h not in before[0]]:
            root.removeHandler(handler)
        root.setLevel(before[1])
