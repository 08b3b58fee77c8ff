"""Reading a WeChat request body safely: bounded size, a hardened XML parser, well-formed documents.

Every XML that reaches us from outside — Official Account and WeCom callbacks (envelope and decrypted
message), WeChat Pay notifications and the decrypted refund `req_info` — goes through `parse_xml`.
It refuses DTDs, entity declarations and external references as defusedxml does (its three handlers
and exceptions), whatever the document's encoding (a UTF-16 or UTF-32 body cannot hide a `<!DOCTYPE`
from expat, as it could from a byte search): an expat pass with only those handlers set, then the C
ElementTree. defusedxml's own parser is ElementTree's pure-Python one, twice the CPU of both passes
together — and every safe-mode message is parsed twice (envelope and message).
Nothing here gives a value a meaning: webhooks/fields.py turns the dict into typed values.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError, fromstring
from xml.parsers import expat

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.common import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

MAX_BODY = 64 * 1024


class BadRequest(Exception):
    """The body is not a WeChat message we can read (answered 400)."""


class TooLarge(Exception):
    """The body is over MAX_BODY (answered 413)."""


async def read_body(request: web.Request) -> bytes:
    """Read at most MAX_BODY bytes, without trusting Content-Length."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise TooLarge
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise TooLarge
    return body


def parse_xml(data: bytes | str, *, root: str = "xml") -> dict[str, Any]:
    """The children of the `<root>` element as a dict, the way xmltodict shapes them: a leaf is its
    stripped text (None when empty), an element with children a dict, a repeated element a list.
    Attributes are ignored (WeChat sends none). DTDs, entities and malformed XML raise BadRequest."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        _refuse_declarations(raw)
        element = fromstring(raw)
    except DefusedXmlException as exc:
        raise BadRequest(f"xml declarations are not accepted: {type(exc).__name__}") from None
    except (
        expat.ExpatError,
        ParseError,
        ValueError,
        LookupError,
        UnicodeError,
    ) as exc:  # malformed, encoding
        raise BadRequest(f"malformed xml: {exc}") from None
    if element.tag != root:
        raise BadRequest(f"no <{root}> root")
    value = _value(element)
    return value if isinstance(value, dict) else {}


def _refuse_declarations(raw: bytes) -> None:
    """defusedxml's forbid_dtd, forbid_entities and forbid_external on a C expat pass: no Python runs
    per element, a handler only when a declaration or an external reference appears.

    A document whose first byte opens its root element (`<xml>`, as WeChat sends them) has no prolog:
    no XML declaration (so UTF-8, no switch of encoding) and no DOCTYPE, which may only come before
    the root — after it `<!DOCTYPE` is a syntax error. Without a DOCTYPE there is no entity to
    declare or reference, so that pass is skipped (every safe-mode message is two such documents)."""
    if raw[:1] == b"<" and raw[1:2].isalpha():
        return
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _dtd
    parser.EntityDeclHandler = _entity
    parser.UnparsedEntityDeclHandler = _unparsed_entity
    parser.ExternalEntityRefHandler = _external
    parser.Parse(raw, True)


def _dtd(name: str, sysid: str | None, pubid: str | None, _internal_subset: bool) -> None:
    raise DTDForbidden(name, sysid, pubid)


def _entity(
    name: str,
    _is_parameter: bool,
    value: str | None,
    base: str | None,
    sysid: str | None,
    pubid: str | None,
    notation_name: str | None,
) -> None:
    raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)


def _unparsed_entity(
    name: str, base: str | None, sysid: str | None, pubid: str | None, notation_name: str | None
) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)


def _external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


def _value(element: Element) -> Any:
    if len(element) == 0:
        text = element.text.strip() if element.text else ""
        return text or None
    out: dict[str, Any] = {}
    for child in element:
        value = _value(child)
        if child.tag not in out:
            out[child.tag] = value
        elif isinstance(out[child.tag], list):
            out[child.tag].append(value)
        else:
            out[child.tag] = [out[child.tag], value]
    return out
