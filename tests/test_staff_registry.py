"""The staff registry: `chatorder staff add|list|remove|duty`, and the store's rules behind it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from flows.notices import order_notice
from store import staff
from store.db import make_engine, make_sessionmaker
from store.errors import DomainError
from store.migrate import upgrade
from store.models import AuditEntry, Order, Staff, utcnow
from tests.factories import Maker
from tests.test_staff_desk import add_service, desk_settings, pay, register


def _query(url: str, stmt: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                return list(await session.scalars(stmt))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite database that `chatorder` (run in-process) uses through the environment."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def migrate() -> None:
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()

    asyncio.run(migrate())
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CHATORDER_DATABASE_URL", url)
    return url


def test_cli_adds_lists_sets_duty_and_removes(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    added = main(
        [
            "staff",
            "add",
            "zhangsan",
            "--name",
            "张三",
            "--roles",
            "admin,ops",
            "--skills",
            "达人营销,广告投放",
        ]
    )
    assert added == 0
    assert (
        main(
            ["staff", "add", "lisi", "--name", "李四", "--roles", "reviewer", "--max-open", "3", "--off-duty"]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["staff", "list"]) == 0
    listing = {line.split("\t")[0]: line for line in capsys.readouterr().out.splitlines()}
    assert listing["lisi"] == "lisi\t李四\treviewer (审核)\toff duty\topen 0/3\tall"
    assert (
        listing["zhangsan"]
        == "zhangsan\t张三\tadmin,ops (管理员、运营)\ton duty\topen 0/10\t广告投放,达人营销"
    )

    assert main(["staff", "duty", "lisi", "on"]) == 0
    assert main(["staff", "remove", "lisi"]) == 0
    capsys.readouterr()
    assert main(["staff", "list"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["zhangsan"]
    assert main(["staff", "list", "--all"]) == 0
    assert "lisi\t李四\treviewer (审核)\tremoved" in capsys.readouterr().out

    trail = _query(cli_db, select(AuditEntry).order_by(AuditEntry.id))
    assert [(e.actor, e.action, e.target) for e in trail] == [
        ("cli", "staff_add", "staff:zhangsan"),
        ("cli", "staff_add", "staff:lisi"),
        ("cli", "duty_on", "staff:lisi"),
        ("cli", "staff_remove", "staff:lisi"),
    ]
    assert trail[0].detail["roles"] == ["admin", "ops"]


def test_cli_refusals_change_nothing(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staff", "add", "wangwu", "--name", "王五", "--roles", "boss"]) == 1
    said = capsys.readouterr().err  # what was wrong and what to do, in words
    assert "unknown role(s) boss" in said and "admin, ops, reviewer, finance" in said
    assert main(["staff", "add", "bad id!", "--name", "X", "--roles", "ops"]) == 1
    assert main(["staff", "remove", "nobody"]) == 1
    assert "no active staff member nobody" in capsys.readouterr().err
    assert main(["staff", "duty", "nobody", "off"]) == 1
    assert _query(cli_db, select(Staff)) == []
    assert _query(cli_db, select(AuditEntry)) == []


async def test_adding_again_updates_and_brings_a_removed_member_back(sm: Maker) -> None:
    await register(sm, "zhao", "ops", name="赵六")
    async with sm.begin() as s:
        await staff.remove_member(s, userid="zhao", actor="staff:boss", now=utcnow())
        assert await staff.get_member(s, "zhao") is None
        back = await staff.add_member(
            s,
            userid="zhao",
            name="赵六",
            roles=["finance", "ops"],
            skills=[" 课程 "],
            actor="cli",
            now=utcnow(),
        )
    assert (back.active, back.roles, back.skills) == (True, ["ops", "finance"], ["课程"])
    async with sm() as s:
        trail = [(e.actor, e.action) for e in await staff.audit_trail(s, "staff:zhao")]
    assert trail == [("cli", "staff_add"), ("staff:boss", "staff_remove"), ("cli", "staff_add")]


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"userid": "", "name": "A", "roles": ["ops"]}, "bad_userid"),
        ({"userid": "a" * 65, "name": "A", "roles": ["ops"]}, "bad_userid"),
        ({"userid": "ok", "name": " ", "roles": ["ops"]}, "bad_name"),
        ({"userid": "ok", "name": "A", "roles": []}, "bad_roles"),
        ({"userid": "ok", "name": "A", "roles": ["ops", "king"]}, "bad_roles"),
        ({"userid": "ok", "name": "A", "roles": ["ops"], "max_open": 0}, "bad_max_open"),
    ],
)
async def test_registry_refusals(lite: Maker, values: dict[str, Any], code: str) -> None:
    with pytest.raises(DomainError) as refused:
        async with lite.begin() as s:
            await staff.add_member(s, actor="cli", now=utcnow(), **values)
    assert refused.value.code == code
    async with lite() as s:
        assert list(await s.scalars(select(Staff))) == []


async def test_removing_a_member_hands_back_what_they_had_not_started(sm: Maker) -> None:
    settings = desk_settings()
    package = await add_service(sm)
    await register(sm, "qian", "ops", "reviewer")
    waiting, working = await pay(sm, settings, package), await pay(sm, settings, package)
    qian = (await _members(sm))["qian"]
    async with sm.begin() as s:
        await staff.approve(s, order_id=working.id, member=qian, notify=order_notice, now=utcnow())
        kept = await staff.remove_member(s, userid="qian", actor="cli", now=utcnow())
    assert kept == [working.number]  # 已分配: an admin reassigns it
    async with sm() as s:
        owners = {o.id: o.assignee for o in await s.scalars(select(Order))}
    assert owners == {waiting.id: None, working.id: "qian"}  # 待审核: back in the backlog


async def _members(sm: Maker) -> dict[str, Staff]:
    async with sm() as s:
        return {m.userid: m for m in await s.scalars(select(Staff))}


async def test_the_demo_has_one_member_with_every_role(lite: Maker) -> None:
    async with lite.begin() as s:
        assert await staff.ensure_demo_staff(s) is True
        assert await staff.ensure_demo_staff(s) is False
    members = await _members(lite)
    assert [(m.userid, m.name, m.roles) for m in members.values()] == [
        ("zhangsan", "张三", ["admin", "ops", "reviewer", "finance"])
    ]
