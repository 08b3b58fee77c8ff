"""`/wechat/work`: the WeCom app callback. verify → decrypt → parse → dedupe → dispatch → respond.

WeCom always encrypts (msg_signature over token, timestamp, nonce and the ciphertext) and retries a
callback that is not answered within 5 s, up to 3 times with the same MsgId (events: same CreateTime).
Replies never travel in the HTTP answer: the handler writes them to the outbox, so we answer an empty
200 once the handler has run.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from wechatpy.work.crypto import PrpCrypto, WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

from bot import keys
from handlers.events import WorkEvent
from handlers.work.dispatch import WorkHandler
from store.models import InboundMessage
from webhooks.crypto import Forbidden, fresh, sign
from webhooks.fields import work_event
from webhooks.guard import BadRequest, TooLarge, parse_xml, read_body

log = logging.getLogger(__name__)

# inbound_messages.reply_xml of a WeCom claim: NULL while its handler runs, this once it has finished.
DONE = "done"


class WorkCrypto:
    """Verify and decrypt WeCom callbacks with wechatpy's work crypto (receive id = CorpID).

    wechatpy compares signatures with `!=`; we compute with its signer and compare in constant time.
    """

    def __init__(self, token: str, aes_key: str, corp_id: str, *, replay_window: int = 300) -> None:
        self.token = token
        self.corp_id = corp_id
        self.replay_window = replay_window
        try:
            key = WeChatCrypto(token, aes_key, corp_id).key
        except (AssertionError, ValueError) as exc:  # wechatpy asserts the key is 32 bytes
            raise ValueError("WECOM_AES_KEY must be the 43-character EncodingAESKey") from exc
        # One AES context for every callback: wechatpy builds a PrpCrypto (and its Cipher) per call.
        self._prp = PrpCrypto(key)

    def echo(self, query: Mapping[str, str]) -> str:
        """GET URL verification: the decrypted `echostr`, which WeCom expects back as the body."""
        return self._open(query, query.get("echostr", ""))

    def open(self, query: Mapping[str, str], envelope: Mapping[str, Any]) -> str:
        """The plaintext XML of a POSTed `<Encrypt>` envelope."""
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str):
            raise Forbidden("no Encrypt element")
        return self._open(query, encrypt)

    def _open(self, query: Mapping[str, str], encrypt: str) -> str:
        ts, nonce, given = query.get("timestamp", ""), query.get("nonce", ""), query.get("msg_signature")
        if not (ts and nonce and encrypt and given):
            raise Forbidden("no msg_signature, timestamp, nonce or ciphertext")
        if not hmac.compare_digest(sign(self.token, ts, nonce, encrypt).encode(), given.encode()):
            raise Forbidden("bad msg_signature")
        if not fresh(ts, self.replay_window):
            raise Forbidden("timestamp outside the replay window")
        try:
            return str(self._prp.decrypt(encrypt, self.corp_id))
        except InvalidCorpIdException:
            raise Forbidden("message for another corp id") from None
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as exc:
            raise Forbidden(f"undecryptable: {exc}") from None


@dataclass(slots=True)
class WorkHooks:
    """What /wechat/work needs; `crypto` is None when WECOM_TOKEN/AES_KEY/CORP_ID are not all set."""

    crypto: WorkCrypto | None
    handle: WorkHandler


WORK_HOOKS = web.AppKey("work_hooks", WorkHooks)


async def verify_url(request: web.Request) -> web.Response:
    """GET: WeCom checks the callback URL by asking us to decrypt `echostr`."""
    crypto = request.app[WORK_HOOKS].crypto
    if crypto is None:
        return _unconfigured(request)
    try:
        return web.Response(text=crypto.echo(request.query))
    except Forbidden as exc:
        return _refuse(request, 403, str(exc))


async def receive(request: web.Request) -> web.Response:
    """POST: one encrypted message or event, run once however often WeCom retries it.

    200 only once the handler has finished (or had finished for an earlier delivery); a callback we
    could not record, whose handler failed, or that another delivery is still handling gets 503, so
    WeCom sends it again rather than forgetting it.
    """
    hooks = request.app[WORK_HOOKS]
    if hooks.crypto is None:
        return _unconfigured(request)
    try:
        plain = hooks.crypto.open(request.query, parse_xml(await read_body(request)))
        event = to_event(plain)
    except Forbidden as exc:
        return _refuse(request, 403, str(exc))
    except TooLarge:
        return _refuse(request, 413, "body too large")
    except BadRequest as exc:
        return _refuse(request, 400, f"unreadable message: {exc}")
    sessionmaker, metrics = request.app[keys.SESSIONMAKER], request.app[keys.METRICS]
    try:
        claimed = await claim(sessionmaker, event)
        if not claimed:
            metrics.duplicates.inc()
            if await finished(sessionmaker, event):
                return web.Response()
            return _refuse(request, 503, "still being handled")
    except Exception as exc:  # the database is unreachable: nothing was recorded
        log.exception("wecom callback not recorded", extra={"userid": event.userid, "msg_key": event.key})
        return _refuse(request, 503, f"not recorded: {type(exc).__name__}")
    metrics.messages_in.labels(f"wecom:{event.name}").inc()
    try:
        await hooks.handle(event)
    except asyncio.CancelledError:  # the server is stopping: let WeCom's retry run it
        await _forget(sessionmaker, event)
        raise
    except Exception:
        # Give the key back, so that WeCom's next retry of this callback is processed.
        log.exception("wecom handler failed", extra={"userid": event.userid, "msg_key": event.key})
        metrics.handler_errors.inc()
        await _forget(sessionmaker, event)
        return _refuse(request, 503, "handler failed")
    await _mark_done(sessionmaker, event)
    return web.Response()


def to_event(plain: str) -> WorkEvent:
    """A WorkEvent from decrypted callback XML (hardened parse, then typed fields)."""
    return work_event(parse_xml(plain))


def _where(event: WorkEvent) -> Any:
    return (
        (InboundMessage.account == f"wecom:{event.corp_id}")
        & (InboundMessage.sender == event.userid)
        & (InboundMessage.msg_key == event.key)
    )


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def claim(sessionmaker: async_sessionmaker[AsyncSession], event: WorkEvent) -> bool:
    """Record the callback's key in its own transaction; False when a retry already recorded it."""
    async with sessionmaker() as session, session.begin():
        stmt = (
            _insert(session)(InboundMessage)
            .values(
                account=f"wecom:{event.corp_id}",
                sender=event.userid,
                msg_key=event.key,
                msg_type=event.name,
                content=event.text or event.event_key or event.media_id or None,
            )
            .on_conflict_do_nothing()
            .returning(InboundMessage.id)
        )
        return (await session.execute(stmt)).scalar_one_or_none() is not None


async def finished(sessionmaker: async_sessionmaker[AsyncSession], event: WorkEvent) -> bool:
    """The claimed callback's handler has finished (rather than still running, or failed)."""
    async with sessionmaker() as session:
        return await session.scalar(select(InboundMessage.reply_xml).where(_where(event))) == DONE


async def _mark_done(sessionmaker: async_sessionmaker[AsyncSession], event: WorkEvent) -> None:
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(update(InboundMessage).where(_where(event)).values(reply_xml=DONE))
    except Exception:  # handled all the same; a retry is then answered 503 until WeCom gives up
        log.exception("wecom claim not marked done", extra={"msg_key": event.key})


async def release(sessionmaker: async_sessionmaker[AsyncSession], event: WorkEvent) -> None:
    """Forget a claim whose handler failed."""
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(InboundMessage).where(_where(event)))


async def _forget(sessionmaker: async_sessionmaker[AsyncSession], event: WorkEvent) -> None:
    try:
        await release(sessionmaker, event)
    except Exception:  # the claim stays in progress: retries get 503 and the log says which one
        log.exception("wecom claim of a failed handler could not be released", extra={"msg_key": event.key})


def _unconfigured(request: web.Request) -> web.Response:
    log.error("wecom callback refused: WECOM_TOKEN, WECOM_AES_KEY and WECOM_CORP_ID must all be set")
    return web.Response(status=503, text="wecom callback is not configured")


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    log.warning("wecom callback refused", extra={"status": status, "reason": reason, "peer": request.remote})
    request.app[keys.METRICS].rejected.labels(str(status)).inc()
    return web.Response(status=status, text=reason if status != 403 else "forbidden")


def setup(app: web.Application, *, crypto: WorkCrypto | None, handle: WorkHandler) -> None:
    """Mount GET/POST /wechat/work; `handle` runs once per distinct callback."""
    app[WORK_HOOKS] = WorkHooks(crypto, handle)
    app.router.add_get("/wechat/work", verify_url)
    app.router.add_post("/wechat/work", receive)
