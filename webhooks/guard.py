"""Reading a WeChat request body safely: bounded size, a hardened XML parser, well-formed documents.

Every XML that reaches us from outside — Official Account and WeCom callbacks (envelope and decrypted
message), WeChat Pay notifications and the decrypted refund `req_info` — goes through `parse_xml`.
It uses defusedxml, which refuses DTDs, entity declarations and external references whatever the
document's encoding (a UTF-16 or UTF-32 body cannot hide a `<!DOCTYPE` from it, as it could from a
byte search). Nothing here gives a value a meaning: webhooks/fields.py turns the dict into typed values.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

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
        element = fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadRequest(f"xml declarations are not accepted: {type(exc).__name__}") from None
    except (ParseError, ValueError, LookupError, UnicodeError) as exc:  # malformed, unknown encoding
        raise BadRequest(f"malformed xml: {exc}") from None
    if element.tag != root:
        raise BadRequest(f"no <{root}> root")
    value = _value(element)
    return value if isinstance(value, dict) else {}


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
