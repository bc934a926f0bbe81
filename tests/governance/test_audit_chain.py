"""The audit trail's hash chain: intact after many appends from several processes, and any
changed, removed or inserted record is named by `verify`."""

from __future__ import annotations

import multiprocessing

import sqlalchemy as sa

from radbank.app import Services
from radbank.governance.audit import AuditTrail, Problem, record_hash
from radbank.index import Index

APPENDERS = 3
PER_APPENDER = 20


def fill(trail: AuditTrail, count: int = 5) -> None:
    for number in range(1, count + 1):
        trail.record(
            "vault.open",
            actor=f"broker-{number}",
            resource="project:ct",
            project="ct",
            detail={"pseudonyms": [f"RB-{number}"], "reason": "withdrawal"},
            source="127.0.0.1",
        )


def sql(services: Services, statement: str, **values: object) -> None:
    with services.index._engine.begin() as connection:
        connection.execute(sa.text(statement), values)


def test_an_untouched_trail_verifies_and_links_every_record(node: Services) -> None:
    fill(node.trail)
    records = list(node.trail.records())
    assert [r.id for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:], strict=False))
    assert all(record_hash(r) == r.hash for r in records)
    assert node.trail.verify() == []
    assert node.trail.head() == records[-1]


def test_a_changed_record_is_named(node: Services) -> None:
    fill(node.trail)
    sql(node, "UPDATE audit_events SET actor = 'someone-else' WHERE id = 3")
    [problem] = node.trail.verify()
    assert (problem.record_id, problem.kind) == (3, Problem.CHANGED)
    assert "audit record 3" in str(problem) and "changed" in str(problem)


def test_a_changed_detail_is_named(node: Services) -> None:
    fill(node.trail)
    sql(node, """UPDATE audit_events SET detail = '{"reason": "x"}' WHERE id = 2""")
    assert [(p.record_id, p.kind) for p in node.trail.verify()] == [(2, Problem.CHANGED)]


def test_a_removed_record_is_named(node: Services) -> None:
    fill(node.trail)
    sql(node, "DELETE FROM audit_events WHERE id = 4")
    [problem] = node.trail.verify()
    assert (problem.record_id, problem.kind) == (4, Problem.REMOVED)
    assert "record 4 removed" in str(problem)


def test_an_inserted_record_is_named(node: Services) -> None:
    fill(node.trail)
    # A forged record copied from record 2, appended under a new id: it links to record 1,
    # which record 2 already follows.
    sql(
        node,
        "INSERT INTO audit_events (id, time, actor, action, resource, project, detail, source,"
        " outcome, prev_hash, hash) SELECT 6, time, actor, action, resource, project, detail,"
        " source, outcome, prev_hash, hash FROM audit_events WHERE id = 2",
    )
    [problem] = node.trail.verify()
    assert (problem.record_id, problem.kind) == (6, Problem.INSERTED)
    assert "audit record 6" in str(problem) and "inserted" in str(problem)


def test_an_inserted_record_with_a_made_up_hash_is_named(node: Services) -> None:
    fill(node.trail)
    head = node.trail.head()
    sql(
        node,
        "INSERT INTO audit_events (id, time, actor, action, resource, project, detail, source,"
        " outcome, prev_hash, hash) SELECT 6, time, 'intruder', action, resource, project,"
        " detail, source, outcome, :prev, :hash FROM audit_events WHERE id = 5",
        prev=head.hash,
        hash="f" * 64,
    )
    assert [(p.record_id, p.kind) for p in node.trail.verify()] == [(6, Problem.CHANGED)]


def test_a_rewritten_tail_is_caught_by_the_noted_head(node: Services) -> None:
    fill(node.trail)
    noted = node.trail.head()
    # Someone who can write the database replaces record 5 and recomputes its hash.
    records = list(node.trail.records())
    forged = records[-1].__class__(**{**records[-1].__dict__, "actor": "someone-else"})
    forged_hash = record_hash(forged)
    sql(
        node,
        "UPDATE audit_events SET actor = 'someone-else', hash = :hash WHERE id = 5",
        hash=forged_hash,
    )
    assert node.trail.verify() == []
    [problem] = node.trail.verify(anchor=(noted.id, noted.hash))
    assert problem.record_id == 5 and noted.hash in str(problem)


def _append(database_url: str, worker: int) -> None:
    index = Index(database_url)
    try:
        trail = AuditTrail(index)
        for number in range(PER_APPENDER):
            trail.record(
                "test.append",
                actor=f"worker-{worker}",
                resource="node",
                detail={"number": number},
            )
    finally:
        index.close()


def test_appends_from_several_processes_never_fork_the_chain(node: Services) -> None:
    url = node.settings.resolved_database_url
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append, args=(url, n)) for n in range(APPENDERS)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    records = list(node.trail.records())
    assert [r.id for r in records] == list(range(1, APPENDERS * PER_APPENDER + 1))
    assert len({r.prev_hash for r in records}) == len(records)
    assert node.trail.verify() == []
