"""Reading a WeChat request body safely: bounded size, no DTDs or entities, well-formed XML."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import xmltodict
from aiohttp import web
from wechatpy.messages import BaseMessage
from wechatpy.parser import parse_message

MAX_BODY = 64 * 1024

# A DOCTYPE or ENTITY declaration is how XXE and billion-laughs attacks start; WeChat never sends one.
_DECLARATION = re.compile(rb"<!\s*(doctype|entity|element|attlist)", re.IGNORECASE)


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


def _refuse_declarations(raw: bytes) -> None:
    if _DECLARATION.search(raw):
        raise BadRequest("xml declarations are not accepted")


def _flat(text: bytes | str) -> dict[str, Any] | None:
    """The fast path for the envelopes WeChat sends: `<xml>` holding only leaf elements, each once, without
    attributes or namespaces. Parsed with the C ElementTree (expat, like xmltodict) into exactly the
    dict xmltodict gives for such a document; None for anything else (the caller then takes the
    xmltodict path, which also produces its errors). Declarations are refused before this runs.
    """
    try:
        root = ElementTree.fromstring(text)
    except Exception:  # malformed, bad encoding, ...: let xmltodict report it
        return None
    if root.tag != "xml" or root.attrib or len(root) == 0 or (root.text and root.text.strip()):
        return None
    out: dict[str, Any] = {}
    for child in root:
        tag = child.tag
        if (
            not isinstance(tag, str)
            or tag in out
            or "{" in tag
            or child.attrib
            or len(child)
            or (child.tail and child.tail.strip())
        ):
            return None
        value = child.text.strip() if child.text else None
        out[tag] = value or None
    return out


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """The <xml> element as a dict; refuses declarations and anything malformed."""
    raw = data.encode() if isinstance(data, str) else data
    _refuse_declarations(raw)
    if (flat := _flat(raw)) is not None:
        return flat
    try:
        doc = xmltodict.parse(raw, disable_entities=True)
    except Exception as exc:  # expat raises several types for broken input
        raise BadRequest(f"malformed xml: {exc}") from None
    root = doc.get("xml") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise BadRequest("no <xml> root")
    return root


def parse_mp(data: bytes | str) -> BaseMessage:
    """A WeChat message or event object (wechatpy's parser), from XML we have checked first."""
    raw = data.encode() if isinstance(data, str) else data
    _refuse_declarations(raw)
    try:
        message = parse_message(raw.decode())
    except Exception as exc:  # expat errors, missing <xml>, missing MsgType
        raise BadRequest(f"malformed message: {exc}") from None
    if message is None or not message.source or not message.target:
        raise BadRequest("message without sender or receiver")
    return message
