"""Finding services in chat: categories, 搜, 筛选, 排序, paging, picking a number, the detail view."""

from __future__ import annotations

import dataclasses
from typing import Any

from flows import browse, ratings, texts
from flows import recommend as suggested
from flows.engine import OrderForm
from flows.format import circled, count, rate, yuan
from flows.requirements import InvalidInput
from handlers.context import Ctx, UserFacingError
from handlers.router import Router
from store import catalog, recommend, reviews
from store.catalog import Query, ServiceDetail

router = Router("catalog")
picks = Router("catalog_picks")  # numbers, included after the form's answers


def _browse(ctx: Ctx) -> dict[str, Any]:
    return ctx.state.data.setdefault("browse", {})


def _query(ctx: Ctx) -> Query:
    saved = _browse(ctx).get("query")
    return Query.from_dict(saved) if saved else Query()


def _listing(ctx: Ctx, kind: str) -> bool:
    return ctx.state.data.get("list") == kind


@router.text("分类", "浏览", "找服务", "全部分类", "服务分类")
async def on_categories(ctx: Ctx) -> None:
    """Platforms and categories with how many services each has."""
    async with ctx.read() as session:
        facets = await catalog.facets(session)
    platforms = "、".join(f"{p}({n})" for p, n in facets["platform"].items() if n)
    categories = "、".join(f"{c}({n})" for c, n in facets["category"].items() if n)
    ctx.say(texts.CATEGORIES, platforms=platforms, categories=categories)


def _is_facet(ctx: Ctx) -> bool:
    return not OrderForm.active(ctx.state) and ctx.command in (*catalog.PLATFORMS, *catalog.CATEGORIES)


@router.when(_is_facet, only=frozenset((*catalog.PLATFORMS, *catalog.CATEGORIES)))
async def on_facet(ctx: Ctx) -> None:
    """A platform or category name lists its services."""
    name = ctx.command or ""
    base = Query(sort=_query(ctx).sort)
    query = (
        dataclasses.replace(base, platform=name)
        if name in catalog.PLATFORMS
        else (dataclasses.replace(base, category=name))
    )
    await show_page(ctx, query, 1)


@router.prefix("搜")
async def on_search(ctx: Ctx) -> None:
    """'搜 咖啡 探店': ranked by relevance (the best matches first, partial ones lower); filters are kept."""
    words = ctx.argument.split() if ctx.command and " " in ctx.command else _glued(ctx.command or "")
    if not words:
        ctx.say(texts.SEARCH_EMPTY_QUERY)
        return
    ctx.mark("searched")
    query = dataclasses.replace(_query(ctx), keywords=tuple(words[:5]), sort="relevance")
    await show_page(ctx, query, 1)


def _glued(command: str) -> list[str]:
    """'搜咖啡' (no space) → ['咖啡']."""
    for head in ("搜索", "搜"):
        if command.startswith(head) and len(command) > len(head):
            return [command[len(head) :]]
    return []


@router.text("筛选", "过滤")
async def on_filter_help(ctx: Ctx) -> None:
    """How to filter and sort."""
    ctx.say(texts.FILTER_HELP)


@router.prefix("筛选 ")
async def on_filter(ctx: Ctx) -> None:
    """'筛选 价格 500-2000' narrows the current list."""
    try:
        query = browse.apply_filter(_query(ctx), ctx.argument)
    except InvalidInput as exc:
        raise UserFacingError(exc.text) from None
    await show_page(ctx, query, 1)


@router.text("清除筛选", "取消筛选", "重置筛选")
async def on_clear_filters(ctx: Ctx) -> None:
    """Keep the keywords and the sort, drop every filter."""
    old = _query(ctx)
    ctx.say(texts.FILTERS_CLEARED)
    await show_page(
        ctx, Query(keywords=old.keywords, sort=old.sort), 1, prefix=ctx.replies.pop().payload["content"]
    )


@router.prefix("排序")
async def on_sort(ctx: Ctx) -> None:
    """'排序 价格' reorders the current list."""
    try:
        sort = browse.sort_of(ctx.argument)
    except InvalidInput as exc:
        raise UserFacingError(exc.text) from None
    await show_page(ctx, dataclasses.replace(_query(ctx), sort=sort), 1)


@router.said(("下一页", "更多", "下页"), when=lambda ctx: _listing(ctx, "catalog"))
async def on_next(ctx: Ctx) -> None:
    """The next page of the current list."""
    state = _browse(ctx)
    if state.get("page", 1) >= state.get("pages", 1):
        ctx.say(texts.NO_MORE_PAGES)
        return
    await show_page(ctx, _query(ctx), state["page"] + 1)


@router.said(("上一页", "上页"), when=lambda ctx: _listing(ctx, "catalog"))
async def on_previous(ctx: Ctx) -> None:
    """The previous page."""
    page = _browse(ctx).get("page", 1)
    if page <= 1:
        ctx.say(texts.NO_PREVIOUS_PAGE)
        return
    await show_page(ctx, _query(ctx), page - 1)


async def show_page(ctx: Ctx, query: Query, page: int, *, prefix: str = "") -> None:
    """Run the query, remember what was shown (for numbers and paging), and list it; when nothing
    matches, say which condition did it and list the nearest services instead."""
    async with ctx.read() as session:
        found = await catalog.find(
            session, query, page=page, per_page=browse.PER_PAGE, index=ctx.services.search
        )
    shown = found.cards or (found.alternatives.cards if found.alternatives else [])
    state = _browse(ctx)
    state.update(
        query=query.to_dict(),
        page=page,
        pages=max(1, -(-found.total // browse.PER_PAGE)),
        ids=[c.id for c in shown],
    )
    ctx.state.data["list"] = "catalog"
    if found.cards:
        ctx.say(prefix + browse.results(found.cards, total=found.total, page=page, query=query))
        return
    # Nothing matched: the nearest services (numbered), then 「猜你喜欢」 beside them.
    async with ctx.read() as session:
        liked = await recommend.for_person(session, account=ctx.event.account, openid=ctx.openid, k=8)
    if found.alternatives is not None:
        listed = {c.id for c in shown}
        others = [c for c in liked if c.id not in listed][:3]
        more = texts.RECOMMEND_BESIDE.format(lines=suggested.bullets(others)) if others else ""
        ctx.say(prefix + browse.nearest(query, found.alternatives, found.blocked_by) + "{more}", more=more)
        return
    filters = browse.describe(query)
    hint = texts.NO_RESULTS_FILTER_HINT.format(filters=filters) if filters else ""
    liked = liked[:5]
    state["ids"] = [c.id for c in liked]  # their numbers open them
    more = texts.RECOMMEND_AFTER_SEARCH + suggested.numbered(liked) + texts.RECOMMEND_FOOT if liked else ""
    ctx.say(prefix + texts.NO_RESULTS + "{more}", filters_hint=hint, more=more)


@picks.when(lambda ctx: _listing(ctx, "catalog") and (ctx.command or "").isdigit())
async def on_pick(ctx: Ctx) -> None:
    """A number from the last list opens that service."""
    ids: list[int] = _browse(ctx).get("ids", [])
    n = int(ctx.command or 0)
    if not 1 <= n <= len(ids):
        raise (
            UserFacingError(texts.PICK_OUT_OF_RANGE, n=n, max=len(ids))
            if ids
            else UserFacingError(texts.NO_LIST)
        )
    async with ctx.read() as session:
        detail = await catalog.get_detail(session, ids[n - 1])
        rated = await reviews.for_service(session, ids[n - 1])
    if detail is None:
        raise UserFacingError(texts.NO_RESULTS, filters_hint="")
    ctx.state.data["viewing"] = detail.card.id
    ctx.mark("viewed")
    ctx.say(render_detail(detail, review_line=ratings.service_line(rated)))


def render_detail(d: ServiceDetail, *, review_line: str = "") -> str:
    c = d.card
    metrics = (
        texts.DETAIL_METRICS.format(
            followers=count(c.followers), engagement=rate(c.engagement_bp), exposure=count(c.exposure)
        )
        if c.followers is not None
        else ""
    )
    audience = _audience(d.audience)
    cases = "；".join(
        f"{x['title']}（{x['result']}）" if x.get("result") else x["title"] for x in d.cases[:3]
    )
    packages = "\n".join(
        texts.DETAIL_PACKAGE.format(
            mark=circled(p.position),
            name=p.name,
            price=yuan(p.price_fen),
            lead=texts.LEAD_DAYS.format(days=p.lead_days) if p.lead_days else texts.LEAD_NOW,
            availability=p.availability,
            deliverables=p.deliverables or "—",
        )
        for p in d.packages
    )
    return texts.DETAIL.format(
        title=c.title,
        platform=c.platform,
        category=c.category,
        summary=c.summary,
        metrics=metrics,
        audience=texts.DETAIL_AUDIENCE.format(audience=audience) if audience else "",
        cases=(texts.DETAIL_CASES.format(cases=cases) if cases else "") + review_line,
        packages=packages,
    )


def _audience(audience: dict[str, dict[str, int]]) -> str:
    """The largest group of each dimension: '女性 82%，18–30 岁 71%，华东 46%'."""
    parts = []
    for dim, suffix in (("gender", ""), ("age", " 岁"), ("region", "")):
        groups = audience.get(dim) or {}
        if groups:
            name, share = max(groups.items(), key=lambda kv: kv[1])
            label = {"女": "女性", "男": "男性"}.get(name, name)
            parts.append(f"{label}{suffix} {share}%")
    return "，".join(parts)
