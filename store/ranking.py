"""The in-memory search index: BM25 per field (bm25s), weighted, with the filters as boolean arrays.

Chinese is tokenised into overlapping character bigrams (咖啡探店 → 咖啡 啡探 探店), plus single
characters in the short fields so that a one-character query (茶) still finds something; Latin
letters and digits make words. Bigrams need no dictionary (no start-up cost, no memory for one) and
find a word wherever it sits in a run of text without spaces; synonyms are folded upstream (the
understanding step), so the index only has to match what it is given.

A service's score is the weighted sum of its per-field BM25 scores (title > tags > platform/category >
summary > description). Filters are arrays over the same positions, so a query, and every relaxation
of it when nothing matches, is a handful of numpy operations. Built by `store.search.SearchIndex`,
which decides when; this module only builds and answers.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt

from store.catalog import PLATFORM_ALIASES, Availability, Query, ServiceCard, availability, service_card
from store.search import relax

# How much a match in each field counts; title words say most about a service, its prose least.
FIELD_WEIGHTS: dict[str, float] = {
    "title": 3.0,
    "tags": 2.0,
    "platform": 1.5,
    "category": 1.5,
    "summary": 1.0,
    "description": 0.5,
}
MIN_COVERAGE_SHARE = 0.5  # of the best candidate's share of the query, for a result to be listed
_SHORT_FIELDS = frozenset(("title", "tags", "platform", "category", "summary"))  # also single characters
# Particles split runs of Chinese: a bigram across one (的探 in 抖音的探店) is noise, not a word.
_PARTICLES = "的了吗呢吧啊么呀哦嘛"
_RUN = re.compile(rf"[a-z0-9]+|[^\W\da-z_{_PARTICLES}]+")
_LATIN = re.compile(r"[a-z0-9]+")
# Bigrams of how people ask, not of what they ask for.
_STOP_BIGRAMS = frozenset(
    ("有没", "没有", "我想", "我要", "想找", "一个", "一下", "什么", "哪些", "推荐", "有什")
)

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def normalise(text: str) -> str:
    """Full-width to half-width, lower case: 'ＸＨＳ' and 'xhs' are the same word."""
    return unicodedata.normalize("NFKC", text).lower()


def doc_tokens(text: str, *, unigrams: bool) -> list[str]:
    """What a field is indexed as: Latin words, Chinese bigrams (and single characters when asked)."""
    out: list[str] = []
    for run in _RUN.findall(normalise(text)):
        if len(run) == 1 or _LATIN.fullmatch(run):
            out.append(run)
            continue
        if unigrams:
            out.extend(run)
        pairs = (run[i : i + 2] for i in range(len(run) - 1))
        out.extend(pair for pair in pairs if pair not in _STOP_BIGRAMS)
    return out


def query_terms(words: Iterable[str]) -> tuple[dict[str, set[int]], dict[int, float]]:
    """What a search is looked up as: each token (bigrams of Chinese, a lone character as itself, Latin
    words) with the units of the query it stands for (a Chinese character or a Latin word); and what
    each unit weighs in the share of the query a service covers: every word the same, split among
    its units (so 小红书 美食 is two halves, not three fifths and two fifths)."""
    terms: dict[str, set[int]] = {}
    words_units: list[set[int]] = []
    start = 0
    for word in words:
        mine: set[int] = set()
        for run in _RUN.findall(normalise(word)):
            for token, spans in _run_terms(run, start):
                terms.setdefault(token, set()).update(spans)
                mine.update(spans)
            start += 1 if _LATIN.fullmatch(run) else len(run)
        if mine:
            words_units.append(mine)
    weights = {u: 1 / (len(words_units) * len(mine)) for mine in words_units for u in mine}
    return terms, weights


def _run_terms(run: str, start: int) -> Iterable[tuple[str, tuple[int, ...]]]:
    if len(run) == 1 or _LATIN.fullmatch(run):
        yield run, (start,)
        return
    for i in range(len(run) - 1):
        pair = run[i : i + 2]
        if pair not in _STOP_BIGRAMS:
            yield pair, (start + i, start + i + 1)


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """A listed service as read for the index (description is tokenised, not kept)."""

    id: int
    code: str
    title: str
    platform: str
    category: str
    forms: Sequence[str]
    tags: Sequence[str]
    summary: str
    description: str
    followers: int | None
    engagement_bp: int | None
    exposure: int | None
    cover_url: str | None


@dataclass(frozen=True, slots=True)
class PackageRow:
    id: int
    service_id: int
    price_fen: int


# Availability as a number, higher is better (its index here): 0 已售罄, 1 库存紧张, 2 可下单.
_AVAILABILITY = (Availability.SOLD_OUT, Availability.LOW, Availability.AVAILABLE)


def _rank(stock: int | None) -> int:
    return _AVAILABILITY.index(availability(stock))


def _field_texts(row: ServiceRow) -> dict[str, str]:
    aliases = " ".join(PLATFORM_ALIASES.get(row.platform, ()))
    return {
        "title": row.title,
        "tags": " ".join(row.tags),
        "platform": f"{row.platform} {aliases}",
        "category": " ".join((row.category, *row.forms)),
        "summary": row.summary,
        "description": row.description,
    }


class TextIndex:
    """Services' text and fixed attributes, by position; rebuilt when a service changes."""

    def __init__(self, rows: Sequence[ServiceRow]) -> None:
        self.rows = [_without_description(r) for r in rows]
        self.ids: Ints = np.array([r.id for r in rows], dtype=np.int64)
        self.position = {r.id: i for i, r in enumerate(rows)}
        self._fields: dict[str, bm25s.BM25 | None] = {}
        for name in FIELD_WEIGHTS:
            corpus = [doc_tokens(_field_texts(r)[name], unigrams=name in _SHORT_FIELDS) for r in rows]
            self._fields[name] = _bm25(corpus)
        self.platform = np.array([r.platform for r in rows], dtype=object)
        self.category = np.array([r.category for r in rows], dtype=object)
        self.followers = _numbers(r.followers for r in rows)
        self.engagement = _numbers(r.engagement_bp for r in rows)
        self.exposure = _numbers(r.exposure for r in rows)
        self._tag_rows: dict[str, list[int]] = {}
        self._form_rows: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            for tag in {normalise(t) for t in r.tags}:
                self._tag_rows.setdefault(tag, []).append(i)
            for form in set(r.forms):
                self._form_rows.setdefault(form, []).append(i)

    def __len__(self) -> int:
        return len(self.rows)

    def scores(self, words: Sequence[str]) -> tuple[Floats, Floats]:
        """For every service: its relevance to `words` and the share of the query it covers (0–1).

        Relevance ranks by that share first and the weighted BM25 of the query's tokens second, so a
        service that matches every word outranks one that matches a single word many times (partial
        matches still count, lower).
        """
        terms, weights = query_terms(words)
        units = sorted(weights)
        total = np.zeros(len(self), dtype=np.float64)
        covered = np.zeros((len(units), len(self)), dtype=np.bool_)
        row = {unit: i for i, unit in enumerate(units)}
        for token, spans in terms.items():
            found = self._token_score(token)
            if found is not None:
                total += found
                covered[[row[u] for u in spans]] |= found > 0
        share = np.array([weights[u] for u in units]) @ covered if units else total
        # BM25 sums stay far below the factor, so this orders by share, then by BM25.
        return share * 1e6 + total, share

    def _token_score(self, token: str) -> Floats | None:
        """The weighted BM25 of one token over the fields; None where no field has it."""
        score: Floats | None = None
        for name, weight in FIELD_WEIGHTS.items():
            index = self._fields[name]
            if index is not None and token in index.vocab_dict:
                part = weight * index.get_scores([token]).astype(np.float64)
                score = part if score is None else score + part
        return score

    def equals(self, values: npt.NDArray[Any], value: str) -> Bools:
        return np.asarray(values == value, dtype=np.bool_)

    def has_form(self, form: str) -> Bools:
        return self._rows_mask(self._form_rows.get(form, []))

    def has_any_tag(self, tags: Sequence[str]) -> Bools:
        """Any of `tags` is among the service's tags or in its title (a tag the catalog forgot)."""
        mask = np.zeros(len(self), dtype=np.bool_)
        for tag in (normalise(t) for t in tags):
            mask |= self._rows_mask(self._tag_rows.get(tag, [])) | self._in_title(tag)
        return mask

    def _in_title(self, text: str) -> Bools:
        """Every token of `text` is in the title (its words, near enough to a substring test)."""
        index = self._fields["title"]
        tokens = doc_tokens(text, unigrams=False)
        mask = np.full(len(self), bool(tokens), dtype=np.bool_)
        for token in tokens:
            if index is None or token not in index.vocab_dict:
                return np.zeros(len(self), dtype=np.bool_)
            mask &= index.get_scores([token]) > 0
        return mask

    def _rows_mask(self, rows: list[int]) -> Bools:
        mask = np.zeros(len(self), dtype=np.bool_)
        mask[rows] = True
        return mask


def _without_description(row: ServiceRow) -> ServiceRow:
    """Cards never show the description: keep memory for the index, not for prose."""
    return dataclasses.replace(row, description="")


def _bm25(corpus: list[list[str]]) -> bm25s.BM25 | None:
    if not any(corpus):
        return None
    index = bm25s.BM25(k1=1.2, b=0.75)
    index.index(corpus, show_progress=False)
    return index


def _numbers(values: Iterable[int | None]) -> Floats:
    """NaN where unknown: every comparison with it is False, like SQL NULL in a filter."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


class PackageTable:
    """Every package of an indexed service, grouped by the service's position: price and id."""

    def __init__(self, text: TextIndex, rows: Sequence[PackageRow]) -> None:
        kept = sorted(
            (r for r in rows if r.service_id in text.position), key=lambda r: text.position[r.service_id]
        )
        self.row_of = {r.id: i for i, r in enumerate(kept)}
        owner = np.array([text.position[r.service_id] for r in kept], dtype=np.int64)
        self.price: Ints = np.array([r.price_fen for r in kept], dtype=np.int64)
        # Where each service's packages start: per-service minima are one reduceat over the groups.
        self._starts: Ints = np.flatnonzero(np.diff(owner, prepend=-1)) if len(kept) else owner
        self.owners: Ints = owner[self._starts]
        self.size = len(text)

    def __len__(self) -> int:
        return len(self.price)

    def ranks(self, low: Sequence[tuple[int, int]]) -> Ints:
        """Each package's availability rank: 可下单 unless it is among `low` (package id, stock)."""
        rank = np.full(len(self), _AVAILABILITY.index(Availability.AVAILABLE), dtype=np.int64)
        for package_id, stock in low:
            row = self.row_of.get(package_id)
            if row is not None:
                rank[row] = _rank(stock)
        return rank

    def per_service(self, in_range: Bools, rank: Ints) -> tuple[Floats, Ints]:
        """The cheapest in-range package's price (inf when none) and the best availability, per service."""
        price = np.full(self.size, _NO_PRICE, dtype=np.float64)
        best = np.full(self.size, -1, dtype=np.int64)
        if len(self):
            price[self.owners] = np.minimum.reduceat(np.where(in_range, self.price, _NO_PRICE), self._starts)
            best[self.owners] = np.maximum.reduceat(np.where(in_range, rank, -1), self._starts)
        return price, best

    def distance(self, lo: int | None, hi: int | None) -> Floats:
        """How far each service's nearest package is from the price range (0 inside it)."""
        below = (lo - self.price) if lo is not None else np.zeros_like(self.price)
        above = (self.price - hi) if hi is not None else np.zeros_like(self.price)
        gap = np.maximum(np.maximum(below, above), 0).astype(np.float64)
        out = np.full(self.size, _NO_PRICE, dtype=np.float64)
        if len(self):
            out[self.owners] = np.minimum.reduceat(gap, self._starts)
        return out


_NO_PRICE = float("inf")


@dataclass(frozen=True, slots=True)
class Hits:
    """Matching positions in display order, with each one's price and availability as shown."""

    positions: Ints
    price: Floats
    rank: Ints

    def __len__(self) -> int:
        return len(self.positions)


class Snapshot:
    """A text index with its packages: answers queries, and says what to relax when none match."""

    def __init__(self, text: TextIndex, packages: PackageTable, low: Sequence[tuple[int, int]]) -> None:
        self.text, self.packages = text, packages
        self.rank = packages.ranks(low)
        self._all_packages = np.ones(len(packages), dtype=np.bool_)
        self._prices: dict[tuple[int | None, int | None], tuple[Floats, Ints]] = {}
        self.has_package = self._price(_NO_RANGE)[0] < _NO_PRICE
        # The last query's scores, reused by its relaxations.
        self._memo: tuple[tuple[str, ...], Floats, Floats] | None = None

    def conditions(self, query: Query) -> dict[str, Bools]:
        """One mask per condition the query sets (absent conditions are not in the dict)."""
        t = self.text
        masks: dict[str, Bools] = {}
        if query.keywords or query.tags:  # words that yield no token ("%") match nothing
            masks["keywords"] = self._scores(query)[1] > 0
        if query.platform:
            masks["platform"] = t.equals(t.platform, query.platform)
        if query.category:
            masks["category"] = t.equals(t.category, query.category)
        if query.tags:
            masks["tags"] = t.has_any_tag(query.tags)
        if query.form:
            masks["form"] = t.has_form(query.form)
        if query.price_min_fen is not None or query.price_max_fen is not None:
            masks["price"] = self._price(query)[0] < _NO_PRICE
        if query.followers_min is not None or query.followers_max is not None:
            masks["followers"] = _within(t.followers, query.followers_min, query.followers_max)
        if query.engagement_min_bp is not None:
            masks["engagement"] = _within(t.engagement, query.engagement_min_bp, None)
        return masks

    def find(self, query: Query, masks: dict[str, Bools], *, without: Iterable[str] = ()) -> Hits:
        """The services meeting every mask but those named in `without`, ordered as the query sorts."""
        dropped = set(without)
        keep, price, rank = self._matching(query, masks, dropped)
        positions = np.flatnonzero(keep)
        order = self._order(query, positions, price, rank, dropped)
        chosen = positions[order]
        return Hits(chosen, price[chosen], rank[chosen])

    def any_match(self, query: Query, masks: dict[str, Bools], *, without: Iterable[str]) -> bool:
        """Whether any service meets every mask but those named in `without` (nothing sorted)."""
        return bool(self._matching(query, masks, set(without))[0].any())

    def _matching(
        self, query: Query, masks: dict[str, Bools], dropped: set[str]
    ) -> tuple[Bools, Floats, Ints]:
        """Which services match, and the price and availability each would show."""
        keep = self.has_package.copy()
        for name, mask in masks.items():
            if name not in dropped:
                keep &= mask
        price, rank = self._price(_NO_RANGE if "price" in dropped else query)
        if "keywords" in masks and "keywords" not in dropped:
            keep &= self._well_covered(query, keep)
        return keep, price, rank

    def cards(self, hits: Hits, start: int, stop: int) -> list[ServiceCard]:
        return [
            service_card(self.text.rows[int(p)], int(price), _AVAILABILITY[int(rank)])
            for p, price, rank in zip(
                hits.positions[start:stop], hits.price[start:stop], hits.rank[start:stop], strict=True
            )
        ]

    def _scores(self, query: Query) -> tuple[Floats, Floats]:
        """Relevance and coverage of the query's words (kept for the relaxations of the same query)."""
        words = (*query.keywords, *query.tags)
        if self._memo is None or self._memo[0] != words:
            self._memo = (words, *self.text.scores(words))
        return self._memo[1], self._memo[2]

    def _well_covered(self, query: Query, keep: Bools) -> Bools:
        """Services matching at least half as much of the query as the best candidate does: one
        stray bigram of a long sentence does not make a result."""
        coverage = self._scores(query)[1]
        best = float(coverage[keep].max(initial=0.0))
        return np.asarray(coverage >= best * MIN_COVERAGE_SHARE, dtype=np.bool_)

    def _price(self, query: Query) -> tuple[Floats, Ints]:
        """Per service, the cheapest package within the query's price range and the best availability
        among them (inf / -1 where none is); kept for the query's relaxations."""
        bounds = (query.price_min_fen, query.price_max_fen)
        if bounds not in self._prices:
            p = self.packages
            in_range = self._all_packages
            if query.price_min_fen is not None:
                in_range = in_range & (p.price >= query.price_min_fen)
            if query.price_max_fen is not None:
                in_range = in_range & (p.price <= query.price_max_fen)
            if len(self._prices) > 8:  # a handful of recent ranges, not every one ever asked for
                self._prices.clear()
            self._prices[bounds] = p.per_service(in_range, self.rank)
        return self._prices[bounds]

    def _order(self, query: Query, positions: Ints, price: Floats, rank: Ints, dropped: set[str]) -> Ints:
        """Sold out last; then the nearest to a dropped range, or the query's sort; then id."""
        primary = self._primary(query, positions, price, dropped)
        ids = self.text.ids[positions]
        sold_out = rank[positions] == 0
        missing = np.isnan(primary)
        primary = np.where(missing, 0.0, primary)
        return np.lexsort((ids, primary, missing, sold_out)).astype(np.int64)

    def _primary(self, query: Query, positions: Ints, price: Floats, dropped: set[str]) -> Floats:
        """The main sort key, ascending (NaN = unknown, sorted after every known value)."""
        t = self.text
        if "price" in dropped and _has_price(query):
            return self.packages.distance(query.price_min_fen, query.price_max_fen)[positions]
        if "followers" in dropped and (query.followers_min is not None or query.followers_max is not None):
            return _gap(t.followers, query.followers_min, query.followers_max)[positions]
        if "engagement" in dropped and query.engagement_min_bp is not None:
            return _gap(t.engagement, query.engagement_min_bp, None)[positions]
        # Without its words a query's relevance is the default order.
        sort = (relax(query, ("keywords", "tags")) if "keywords" in dropped else query).effective_sort
        if sort == "relevance":
            return -self._scores(query)[0][positions]
        if sort == "price":
            return price[positions]
        if sort == "price_desc":
            return -price[positions]
        metric = {"engagement": t.engagement, "followers": t.followers, "exposure": t.exposure}[sort]
        return -metric[positions]


_NO_RANGE = Query()


def build(
    previous: Snapshot | None,
    services: Sequence[Any] | None,
    packages: Sequence[Any],
    low: Sequence[tuple[int, int]],
) -> Snapshot:
    """A snapshot from rows read from the database; `services` None keeps the previous text index."""
    if services is None and previous is not None:
        text = previous.text
    else:
        text = TextIndex([ServiceRow(**row._mapping) for row in services or ()])
    return Snapshot(text, PackageTable(text, [PackageRow(**row._mapping) for row in packages]), low)


def with_stock(snapshot: Snapshot, low: Sequence[tuple[int, int]]) -> Snapshot:
    """The same catalog with other packages low or sold out (an order, a cancellation)."""
    return Snapshot(snapshot.text, snapshot.packages, low)


def _has_price(query: Query) -> bool:
    return query.price_min_fen is not None or query.price_max_fen is not None


def _within(values: Floats, lo: int | None, hi: int | None) -> Bools:
    mask = ~np.isnan(values)
    if lo is not None:
        mask &= values >= lo
    if hi is not None:
        mask &= values <= hi
    return mask


def _gap(values: Floats, lo: int | None, hi: int | None) -> Floats:
    """Distance from the range (0 inside, NaN when unknown)."""
    below = (lo - values) if lo is not None else np.zeros_like(values)
    above = (values - hi) if hi is not None else np.zeros_like(values)
    return np.maximum(np.maximum(below, above), 0.0)
