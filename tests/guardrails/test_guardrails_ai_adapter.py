"""guardrails-ai runs our checks offline: no network call is attempted."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from chartdraft_guardrails.corpus import synthetic_charts
from chartdraft_guardrails.statement import Statement

pytest.importorskip("guardrails", reason="guardrails-ai is not installed")


@pytest.mark.slow
def test_guard_runs_our_checks_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        try:
            if isinstance(host, str) and ipaddress.ip_address(host).is_loopback:
                return real_connect(self, address)
        except ValueError:
            pass
        attempts.append(address)
        raise OSError(f"network disabled in this test: {address}")

    def no_dns(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args[0] if args else kwargs)
        raise OSError("DNS disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    from chartdraft_guardrails.guardrails_ai_adapter import validate_statement

    chart = synthetic_charts()["ana"]
    by_id = {e.id: e for e in chart}
    common = {"chart": chart, "shown_ids": set(by_id), "patient_id": "p-ana", "doc_type": "summary"}
    ok, reasons = validate_statement(
        Statement(text="Hemoglobin was 16.6 g/dL.", citations=["Observation/hgb"]),
        cited=[by_id["Observation/hgb"]],
        **common,
    )
    assert ok and reasons == []
    ok, reasons = validate_statement(
        Statement(text="Hemoglobin was 11.2 g/dL.", citations=["Observation/hgb"]),
        cited=[by_id["Observation/hgb"]],
        **common,
    )
    assert not ok and any("11.2" in r for r in reasons)
    assert attempts == []
