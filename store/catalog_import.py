"""Import of services with their packages from YAML or CSV files into the catalog (store.catalog).

Imports come from YAML or CSV and are checked completely before anything is written
(`parse_catalog` is pure; `import_catalog` upserts). Prices are written in yuan (元) and converted
exactly to fen with Decimal; engagement as "8.1%" or 8.1; followers/exposure as 52000 or "5.2万".

YAML — a list of services, or a mapping with a `services` list:

    - code: xhs-xiaolu-coffee          # required, stable id (letters, digits, - _ .; ≤ 32)
      title: 小鹿爱咖啡                  # required
      platform: 小红书                   # required, one of PLATFORMS
      category: 达人营销                 # required, one of CATEGORIES
      forms: [图文, 视频]                # FORMS
      tags: [咖啡, 探店]
      summary: …                        # ≤ 200 characters
      description: …
      followers: 52000                  # or "5.2万"; optional
      engagement: 8.1%                  # optional
      commission: 15%                   # what the buyer's inviter earns; default 10%
      exposure: 30000                   # estimated exposure per placement; optional
      audience: {gender: {女: 82, 男: 18}, age: {18-24: 40, …}, region: {华东: 46, …}}  # each sums to 100
      cover_url: ""
      cases: [{title: …, result: …, url: …}]
      status: listed                    # draft | listed | unlisted; default listed
      packages:                         # at least one; position = order in the list unless given
        - name: 1 篇图文笔记              # required
          price: 1000                   # required, yuan, > 0, at most 2 decimals
          deliverables: …
          lead_days: 5                  # default 7
          stock: 3                      # empty = unlimited
          requirements: [brand, link, selling_points, publish_time, ref_images]  # REQUIREMENT_KEYS

CSV — UTF-8 (a BOM is fine), a header row, then one row per package. The service columns are repeated
on every row of the same code (or left empty on the later rows); they must agree:

    code,title,platform,category,forms,tags,summary,description,followers,engagement,commission,exposure,
    audience_gender,audience_age,audience_region,cover_url,cases,status,
    position,package_name,price,deliverables,lead_days,stock,requirements

Lists (forms, tags, requirements) are separated by | (or , 、 ;). audience_* cells read "女:82|男:18".
`cases` is a JSON list. Required columns: code, package_name, price (title/platform/category must be
filled on the first row of each code). Error lines are CSV line numbers (the header is line 1).

An import upserts services by code and packages by (service, position); services missing from the file
are left as they are. A package dropped from the file is deleted, unless an order refers to it: then it
stays with stock 0, and the report says so.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, Literal

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalog import (
    CATEGORIES,
    DEFAULT_COMMISSION_BP,
    FORMS,
    PLATFORM_ALIASES,
    PLATFORMS,
    REQUIREMENT_KEYS,
    STATUSES,
)
from store.models import OrderItem, Package, Service

DEMO_CATALOG = "demo_catalog.yaml"
MAX_PRICE_FEN = 10_000_000_000  # ¥100,000,000: anything above is a typo, and must fit a BIGINT
_AUDIENCE_KEYS = ("gender", "age", "region")


# --- Parsing -------------------------------------------------------------------------------------


@dataclass
class RowError:
    """One problem in an import file, at a line of that file."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"第 {self.line} 行：{self.message}"


@dataclass(frozen=True)
class PackageSpec:
    position: int
    name: str
    price_fen: int
    deliverables: str = ""
    lead_days: int = 7
    stock: int | None = None
    requirements: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class ServiceSpec:
    code: str
    title: str
    platform: str
    category: str
    packages: tuple[PackageSpec, ...]
    forms: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    summary: str = ""
    description: str = ""
    followers: int | None = None
    engagement_bp: int | None = None
    commission_bp: int | None = None
    exposure: int | None = None
    audience: dict[str, dict[str, int]] = field(default_factory=dict)
    cover_url: str = ""
    cases: tuple[dict[str, str], ...] = ()
    status: str = "listed"
    line: int = 0


SERVICE_FIELDS = (
    "code",
    "title",
    "platform",
    "category",
    "forms",
    "tags",
    "summary",
    "description",
    "followers",
    "engagement",
    "commission",
    "exposure",
    "audience",
    "cover_url",
    "cases",
    "status",
)
PACKAGE_FIELDS = ("position", "name", "price", "deliverables", "lead_days", "stock", "requirements")
_CSV_SERVICE = tuple(f for f in SERVICE_FIELDS if f != "audience") + tuple(
    f"audience_{k}" for k in _AUDIENCE_KEYS
)
_CSV_PACKAGE = {"position": "position", "package_name": "name", "price": "price"} | {
    f: f for f in ("deliverables", "lead_days", "stock", "requirements")
}
CSV_COLUMNS = _CSV_SERVICE + tuple(_CSV_PACKAGE)

Fields = dict[str, tuple[Any, int]]  # field name → (raw value, line)


@dataclass
class _Raw:
    """A service as read from the file, before any checking."""

    line: int
    fields: Fields
    packages: list[tuple[int, Fields]]


def parse_catalog(text: str, fmt: Literal["yaml", "csv"]) -> tuple[list[ServiceSpec], list[RowError]]:
    """Read and check a whole catalog file; the specs are only meant for import when errors is empty."""
    errors: list[RowError] = []
    raws = _read_yaml(text, errors) if fmt == "yaml" else _read_csv(text, errors)
    specs: list[ServiceSpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raws, start=1):
        code = str(raw.fields.get("code", ("", 0))[0] or "").strip()
        if code and code in seen:
            errors.append(RowError(raw.line, f"code {code} is repeated (already used on line {seen[code]})"))
            continue
        seen.setdefault(code, raw.line)
        if (spec := _service(raw, index, errors)) is not None:
            specs.append(spec)
    if not raws and not errors:
        errors.append(RowError(1, "the file holds no services"))
    errors.sort(key=lambda e: e.line)
    return specs, errors


def _read_yaml(text: str, errors: list[RowError]) -> list[_Raw]:
    # Compose to nodes (not plain objects) so that every service, package and field keeps its line.
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            errors.append(RowError(mark.line + 1 if mark else 1, f"not valid YAML: {exc.problem or exc}"))
            return []
        except yaml.YAMLError as exc:
            errors.append(RowError(1, f"not valid YAML: {exc}"))
            return []
        if root is None:
            return []
        if isinstance(root, yaml.MappingNode):
            root = dict(_pairs(root)).get("services", root)
        if not isinstance(root, yaml.SequenceNode):
            errors.append(
                RowError(
                    _line(root),
                    "the top level must be a list of services (or hold a services list)",
                )
            )
            return []
        raws = []
        for node in root.value:
            if not isinstance(node, yaml.MappingNode):
                errors.append(RowError(_line(node), "each service must be a mapping (code: …, title: …)"))
                continue
            raws.append(_yaml_service(loader, node, errors))
        return raws
    finally:
        loader.dispose()


def _yaml_service(loader: yaml.SafeLoader, node: yaml.MappingNode, errors: list[RowError]) -> _Raw:
    fields_ = _yaml_fields(loader, node, (*SERVICE_FIELDS, "packages"), errors)
    raw = _Raw(_line(node), fields_, [])
    packages, _ = fields_.pop("packages", (None, 0))
    if packages is None:
        return raw
    if not isinstance(packages, yaml.SequenceNode):
        errors.append(RowError(_line(packages), "packages must be a list of packages"))
        return raw
    for item in packages.value:
        if isinstance(item, yaml.MappingNode):
            raw.packages.append((_line(item), _yaml_fields(loader, item, PACKAGE_FIELDS, errors)))
        else:
            errors.append(RowError(_line(item), "each package must be a mapping (name: …, price: …)"))
    return raw


def _yaml_fields(
    loader: yaml.SafeLoader, node: yaml.MappingNode, allowed: tuple[str, ...], errors: list[RowError]
) -> Fields:
    result: Fields = {}
    for key, value in _pairs(node):
        line = _line(value)
        if key not in allowed:
            errors.append(RowError(_line(value), f"unknown field {key} (known: {', '.join(allowed)})"))
        elif key in result:
            errors.append(RowError(line, f"field {key} is repeated"))
        elif key == "packages":
            result[key] = (value, line)  # kept as nodes: each package needs its own line
        else:
            result[key] = (_yaml_value(loader, value), line)
    return result


def _pairs(node: yaml.MappingNode) -> list[tuple[str, yaml.Node]]:
    return [(str(k.value).strip(), v) for k, v in node.value]


def _yaml_value(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    # Scalars stay as written: "1000.10" must not become the float 1000.1, nor "no" the bool False.
    if isinstance(node, yaml.ScalarNode):
        return None if node.tag == "tag:yaml.org,2002:null" else node.value
    if isinstance(node, yaml.SequenceNode) and all(isinstance(n, yaml.ScalarNode) for n in node.value):
        return [n.value for n in node.value if n.tag != "tag:yaml.org,2002:null"]
    return loader.construct_object(node, deep=True)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _read_csv(text: str, errors: list[RowError]) -> list[_Raw]:
    rows = _csv_rows(text.lstrip("\ufeff"))
    if not rows:
        return []
    header_line, header = rows[0]
    columns = [c.strip().lower() for c in header]
    if unknown := [c for c in columns if c not in CSV_COLUMNS]:
        errors.append(
            RowError(header_line, f"unknown column(s) {', '.join(unknown)} (known: {','.join(CSV_COLUMNS)})")
        )
    if missing := [c for c in ("code", "package_name", "price") if c not in columns]:
        errors.append(RowError(header_line, f"missing column(s) {', '.join(missing)}"))
    if unknown or missing:
        return []
    by_code: dict[str, _Raw] = {}
    for line, row in rows[1:]:
        if len(row) != len(columns):
            errors.append(RowError(line, f"{len(row)} cells where the header has {len(columns)} columns"))
            continue
        cells = {c: v.strip() for c, v in zip(columns, row, strict=True)}
        if not cells["code"]:
            errors.append(RowError(line, "code is required"))
            continue
        raw = by_code.get(cells["code"])
        if raw is None:
            raw = by_code[cells["code"]] = _Raw(line, _csv_service_fields(cells, line), [])
        else:
            _csv_check_repeat(raw, cells, line, errors)
        package = {_CSV_PACKAGE[c]: (cells[c], line) for c in _CSV_PACKAGE if c in cells}
        raw.packages.append((line, package))
    return list(by_code.values())


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    """Non-blank rows with the line each starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, end = [], 0
    for row in reader:
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in row):
            rows.append((start, row))
    return rows


def _csv_service_fields(cells: dict[str, str], line: int) -> Fields:
    fields_: Fields = {c: (cells[c], line) for c in SERVICE_FIELDS if c in cells}
    dims = {k: cells.get(f"audience_{k}", "") for k in _AUDIENCE_KEYS}
    fields_["audience"] = ({k: v for k, v in dims.items() if v}, line)
    if cells.get("cases"):
        try:
            fields_["cases"] = (json.loads(cells["cases"]), line)
        except json.JSONDecodeError:
            fields_["cases"] = ("not json", line)  # reported by the checker as a bad list
    return fields_


def _csv_check_repeat(raw: _Raw, cells: dict[str, str], line: int, errors: list[RowError]) -> None:
    """Later rows of a service may leave service columns empty, but must not contradict the first."""
    first = raw.line
    for column in _CSV_SERVICE:
        value = cells.get(column, "")
        if not value or column == "code":
            continue
        if column.startswith("audience_"):
            before = raw.fields["audience"][0].get(column.removeprefix("audience_"), "")
        elif column == "cases":
            before = json.dumps(raw.fields.get("cases", ([], 0))[0], ensure_ascii=False)
            value = json.dumps(_json_or(value), ensure_ascii=False)
        else:
            before = raw.fields.get(column, ("", 0))[0]
        if value != before:
            errors.append(
                RowError(
                    line,
                    f"{column} differs from line {first} (a service's rows must agree, or leave it empty)",
                )
            )


def _json_or(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class _Checker:
    """Converts one raw record's fields, collecting errors at the line of each offending field."""

    def __init__(self, fields_: Fields, line: int, where: str, errors: list[RowError]) -> None:
        self.fields, self.line, self.where, self.errors = fields_, line, where, errors
        self.ok = True

    def fail(self, key: str, message: str) -> None:
        self.errors.append(
            RowError(self.fields.get(key, (None, self.line))[1] or self.line, self.where + message)
        )
        self.ok = False

    def get(self, key: str) -> Any:
        value = self.fields.get(key, (None, 0))[0]
        if isinstance(value, str):
            value = value.strip()
        return None if value is None or value == "" else value

    def text(self, key: str, *, required: bool = False, max_len: int = 10_000) -> str:
        value = self.get(key)
        if value is None:
            if required:
                self.fail(key, f"{key} is required")
            return ""
        if not isinstance(value, str):
            self.fail(key, f"{key} must be text")
            return ""
        if len(value) > max_len:
            self.fail(key, f"{key} is too long: at most {max_len} characters, this has {len(value)}")
        return value

    def choice(self, key: str, options: Sequence[str], *, default: str | None = None) -> str:
        value = self.text(key, required=default is None)
        if not value:
            return default or ""
        if value not in options:
            self.fail(key, f"{key} “{value}” is not one of: {', '.join(options)}")
        return value

    def words(self, key: str, options: Sequence[str] | None = None) -> tuple[str, ...]:
        value = self.get(key)
        if value is None:
            return ()
        items = re.split(r"[|,，、;；\s]+", value) if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str | int) for i in items):
            self.fail(key, f"{key} must be a list, e.g. [a, b] or a|b")
            return ()
        words = tuple(dict.fromkeys(str(i).strip() for i in items if str(i).strip()))
        if options is not None and (bad := [w for w in words if w not in options]):
            self.fail(key, f"{key}: {', '.join(bad)} not allowed; one of: {', '.join(options)}")
        return words

    def count(self, key: str, *, default: int | None = None, maximum: int = 2**31 - 1) -> int | None:
        """A whole number from 0 to `maximum`: 52000, "52,000" or "5.2万"."""
        value = self.get(key)
        if value is None:
            return default
        text = str(value).replace(",", "")
        scale = 10_000 if text.endswith("万") else 1
        number = _decimal(text.removesuffix("万"))
        if number is None or number < 0 or (number * scale) % 1 or number * scale > maximum:
            self.fail(key, f"{key} must be a whole number from 0 to {maximum}, got “{value}”")
            return default
        return int(number * scale)

    def price_fen(self, key: str) -> int:
        value = self.get(key)
        if value is None:
            self.fail(key, f"{key} is required (in yuan)")
            return 0
        number = _decimal(re.sub(r"^[¥￥]|元$", "", str(value).strip()).replace(",", ""))
        fen = None if number is None else number * 100
        if fen is None or fen <= 0 or fen % 1 or fen > MAX_PRICE_FEN:
            self.fail(key, f"{key} must be a positive amount in yuan, at most two decimals; got “{value}”")
            return 0
        return int(fen)

    def engagement_bp(self, key: str) -> int | None:
        value = self.get(key)
        if value is None:
            return None
        number = _decimal(str(value).strip().removesuffix("%").removesuffix("％"))
        bp = None if number is None else number * 100
        if bp is None or bp < 0 or bp > 10_000 or bp % 1:
            self.fail(
                key,
                f"{key} must be a percentage from 0 to 100 (8.1% or 8.1), got “{value}”",
            )
            return None
        return int(bp)

    def audience(self, key: str) -> dict[str, dict[str, int]]:
        value = self.get(key)
        if not value:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"{key} must be a mapping, e.g. {{gender: {{女: 82, 男: 18}}}}")
            return {}
        result: dict[str, dict[str, int]] = {}
        for dim, split in value.items():
            if dim not in _AUDIENCE_KEYS:
                self.fail(key, f"{key}: {dim} is not one of: {', '.join(_AUDIENCE_KEYS)}")
                continue
            shares = _shares(split)
            if shares is None:
                self.fail(key, f"{key}.{dim} must be name: whole percentage pairs, e.g. 女:82|男:18")
            elif sum(shares.values()) != 100:
                self.fail(key, f"{key}.{dim} percentages must add up to 100, not {sum(shares.values())}")
            else:
                result[dim] = shares
        return result

    def cases(self, key: str) -> tuple[dict[str, str], ...]:
        value = self.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(_is_case(c) for c in value):
            self.fail(
                key,
                f"{key} must be a list of items with a title and optional result, url",
            )
            return ()
        return tuple({k: str(c.get(k) or "") for k in ("title", "result", "url")} for c in value)


def _is_case(case_: Any) -> bool:
    return isinstance(case_, dict) and bool(case_.get("title")) and set(case_) <= {"title", "result", "url"}


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _shares(split: Any) -> dict[str, int] | None:
    """{"女": 82, "男": 18} or "女:82|男:18" → {"女": 82, "男": 18}; None when malformed."""
    if isinstance(split, str):
        pairs = [p.partition(":")[::2] for p in re.split(r"[|,，;；]+", split.replace("：", ":")) if p]
        split = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(split, dict) or not split:
        return None
    shares: dict[str, int] = {}
    for name, share in split.items():
        number = None if isinstance(share, bool) else _decimal(str(share).removesuffix("%"))
        if number is None or number % 1 or not 0 <= number <= 100 or not str(name).strip():
            return None
        shares[str(name).strip()] = int(number)
    return shares


_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


def _service(raw: _Raw, index: int, errors: list[RowError]) -> ServiceSpec | None:
    code = str(raw.fields.get("code", ("", 0))[0] or "").strip()
    c = _Checker(raw.fields, raw.line, f"service {code}: " if code else f"service #{index}: ", errors)
    if not code:
        c.fail("code", "code is required")
    elif not _CODE.match(code):
        c.fail("code", f"code “{code}” may only use letters, digits and - _ . (at most 32 characters)")
    if not raw.packages:
        c.fail("packages", "at least one package is required (packages)")
    packages = [_package(code, n, line, f, errors) for n, (line, f) in enumerate(raw.packages, start=1)]
    spec = ServiceSpec(
        code=code,
        title=c.text("title", required=True, max_len=100),
        platform=c.choice("platform", PLATFORMS),
        category=c.choice("category", CATEGORIES),
        packages=tuple(p for p in packages if p),
        forms=c.words("forms", FORMS),
        tags=c.words("tags"),
        summary=c.text("summary", max_len=200),
        description=c.text("description"),
        followers=c.count("followers"),
        engagement_bp=c.engagement_bp("engagement"),
        commission_bp=c.engagement_bp("commission"),
        exposure=c.count("exposure"),
        audience=c.audience("audience"),
        cover_url=c.text("cover_url", max_len=512),
        cases=c.cases("cases"),
        status=c.choice("status", STATUSES, default="listed"),
        line=raw.line,
    )
    positions: dict[int, int] = {}
    for package in spec.packages:
        if package.position in positions:
            where = f"line {positions[package.position]}"
            c.errors.append(
                RowError(
                    package.line, f"service {code}: package position {package.position} is repeated ({where})"
                )
            )
            c.ok = False
        positions.setdefault(package.position, package.line)
    return spec if c.ok and None not in packages else None


def _package(code: str, n: int, line: int, fields_: Fields, errors: list[RowError]) -> PackageSpec | None:
    c = _Checker(fields_, line, f"service {code} package {n}: ", errors)
    spec = PackageSpec(
        position=c.count("position", default=n, maximum=99) or 0,
        name=c.text("name", required=True, max_len=100),
        price_fen=c.price_fen("price"),
        deliverables=c.text("deliverables"),
        lead_days=c.count("lead_days", default=7, maximum=365) or 0,
        stock=c.count("stock"),
        requirements=c.words("requirements", REQUIREMENT_KEYS),
        line=line,
    )
    if spec.position < 1 and c.ok:
        c.fail("position", "position starts at 1")
    return spec if c.ok else None


# --- Writing -------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    packages: int = 0  # package rows created or updated
    notes: list[str] = field(default_factory=list)


def build_search_text(spec: ServiceSpec) -> str:
    """The lower-cased words that 搜 matches: title, platform (and aliases), category, forms, tags …"""
    parts = [
        spec.title,
        spec.platform,
        *PLATFORM_ALIASES.get(spec.platform, ()),
        spec.category,
        *spec.forms,
        *spec.tags,
        spec.summary,
        *(p.name for p in spec.packages),
    ]
    return " ".join(p for p in parts if p).lower()


async def import_catalog(session: AsyncSession, specs: Sequence[ServiceSpec]) -> ImportReport:
    """Upsert services by code and packages by position, in the caller's transaction (it commits)."""
    report = ImportReport()
    codes = [s.code for s in specs]
    existing = {s.code: s for s in await session.scalars(select(Service).where(Service.code.in_(codes)))}
    services: list[tuple[ServiceSpec, Service]] = []
    for spec in specs:
        service = existing.get(spec.code)
        if service is None:
            service = Service(code=spec.code)
            session.add(service)
            report.created += 1
        else:
            report.updated += 1
        _apply_service(service, spec)
        services.append((spec, service))
    await session.flush()  # new services get their ids
    ids = [service.id for _, service in services]
    current: dict[int, dict[int, Package]] = {}
    for row in await session.scalars(select(Package).where(Package.service_id.in_(ids))):
        current.setdefault(row.service_id, {})[row.position] = row
    leftovers: list[tuple[str, Package]] = []
    for spec, service in services:
        have = current.get(service.id, {})
        for package_spec in spec.packages:
            package = have.pop(package_spec.position, None)
            if package is None:
                package = Package(service_id=service.id, position=package_spec.position)
                session.add(package)
            _apply_package(package, package_spec)
            report.packages += 1
        leftovers += [(spec.code, p) for p in have.values()]
    await _retire(session, leftovers, report)
    await session.flush()
    return report


async def _retire(session: AsyncSession, leftovers: list[tuple[str, Package]], report: ImportReport) -> None:
    """Delete packages dropped from the file, except those orders refer to: they only sell out."""
    if not leftovers:
        return
    ids = [p.id for _, p in leftovers]
    ordered = set(
        await session.scalars(select(OrderItem.package_id).where(OrderItem.package_id.in_(ids)).distinct())
    )
    for code, package in sorted(leftovers, key=lambda item: (item[0], item[1].position)):
        if package.id in ordered:
            package.stock = 0
            report.notes.append(
                f"{code} package {package.position} “{package.name}” is no longer in the file, "
                "but orders refer to it: kept, with stock 0"
            )
        else:
            await session.delete(package)
            report.notes.append(
                f"{code} package {package.position} “{package.name}” is no longer in the file: deleted"
            )


def _apply_service(service: Service, spec: ServiceSpec) -> None:
    service.title = spec.title
    service.platform = spec.platform
    service.category = spec.category
    service.forms = list(spec.forms)
    service.tags = list(spec.tags)
    service.summary = spec.summary
    service.description = spec.description
    service.followers = spec.followers
    service.engagement_bp = spec.engagement_bp
    service.commission_bp = DEFAULT_COMMISSION_BP if spec.commission_bp is None else spec.commission_bp
    service.exposure = spec.exposure
    service.audience = spec.audience
    service.cover_url = spec.cover_url or None
    service.cases = [dict(c) for c in spec.cases]
    service.status = spec.status
    service.search_text = build_search_text(spec)


def _apply_package(package: Package, spec: PackageSpec) -> None:
    package.name = spec.name
    package.price_fen = spec.price_fen
    package.deliverables = spec.deliverables
    package.lead_days = spec.lead_days
    package.stock = spec.stock
    package.requirements = list(spec.requirements)


async def load_demo_catalog(session: AsyncSession) -> int:
    """Import the packaged demo catalog when there are no services yet; returns how many were added."""
    if await session.scalar(select(func.count()).select_from(Service)):
        return 0
    text = resources.files("store").joinpath(DEMO_CATALOG).read_text(encoding="utf-8")
    specs, errors = parse_catalog(text, "yaml")
    if errors:
        raise ValueError("the packaged demo catalog is broken: " + "; ".join(map(str, errors)))
    return (await import_catalog(session, specs)).created
