"""The audit hash chain: appends verify; edited, removed, reordered records are named."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from service_store_fixtures import BACKENDS, open_store
from sqlalchemy import delete, select, update

from assistant.audit import AuditEvent, verify_store
from assistant.store import Store
from assistant.store.schema import audit


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    for s in open_store(request.param, tmp_path):
        for i in range(6):
            s.append_audit(AuditEvent(actor=f"clin-{i % 2}", role="clinician",
                                      action="draft.read", patient_id="p-1", target=f"d{i}",
                                      evidence_ids=["Condition/c1"]))
        yield s


def _problems(store: Store) -> list[tuple[int, str]]:
    return [(p["seq"], p["problem"]) for p in verify_store(store).problems]


def test_intact_chain_verifies(store: Store) -> None:
    report = verify_store(store)
    assert report.ok and report.records == 6


def test_edited_record_is_caught(store: Store) -> None:
    with store.engine.begin() as c:
        c.execute(update(audit).where(audit.c.seq == 3).values(actor="someone-else"))
    assert _problems(store) == [(3, "edited")]


def test_removed_middle_record_is_caught(store: Store) -> None:
    with store.engine.begin() as c:
        c.execute(delete(audit).where(audit.c.seq == 4))
    assert _problems(store) == [(5, "removed")]


def test_removed_last_record_is_caught_by_the_head(store: Store) -> None:
    with store.engine.begin() as c:
        c.execute(delete(audit).where(audit.c.seq == 6))
    assert _problems(store) == [(6, "removed")]


def test_reordered_records_are_caught(store: Store) -> None:
    cols = [c for c in audit.c if c.name != "seq"]
    with store.engine.begin() as c:
        r2 = c.execute(select(*cols).where(audit.c.seq == 2)).mappings().one()
        r3 = c.execute(select(*cols).where(audit.c.seq == 3)).mappings().one()
        c.execute(update(audit).where(audit.c.seq == 2).values(**r3))
        c.execute(update(audit).where(audit.c.seq == 3).values(**r2))
    problems = _problems(store)
    assert problems and problems[0] == (2, "reordered")


def test_concurrent_appends_keep_one_chain(store: Store) -> None:
    def add(i: int) -> None:
        store.append_audit(AuditEvent(actor="svc", role="ehr-service", action="chart.read",
                                      patient_id=f"p-{i}"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(40)))
    report = verify_store(store)
    assert report.ok and report.records == 46


def test_cli_token_and_audit_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from assistant.auth import Authenticator
    from assistant.cli_admin import register
    from assistant.settings import Settings, get_settings

    monkeypatch.setenv("CHARTDRAFT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CHARTDRAFT_DEV_AUTH", "true")
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    out = runner.invoke(app, ["token", "--role", "clinician", "--patient", "p-1"])
    assert out.exit_code == 0, out.output
    p = Authenticator(Settings()).authenticate(f"Bearer {out.stdout.strip()}", None)
    assert (p.role, p.patient) == ("clinician", "p-1")
    assert runner.invoke(app, ["token", "--role", "root"]).exit_code == 2

    s = Store(Settings().sql_url)
    for i in range(3):
        s.append_audit(AuditEvent(actor="a", role="admin", action="audit.read", target=str(i)))
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 records" in ok.stdout
    with s.engine.begin() as c:
        c.execute(update(audit).where(audit.c.seq == 2).values(target="x"))
    bad = runner.invoke(app, ["audit", "verify", "--json"])
    assert bad.exit_code == 1 and '"edited"' in bad.stdout
    s.close()
    get_settings.cache_clear()
