"""Official Account signatures and message crypto, with wechatpy's signer and AES code.

wechatpy compares signatures with `!=`; we compute with its signer and compare in constant time.
"""

from __future__ import annotations

import hmac
import struct
import time
from collections.abc import Mapping
from typing import Any

from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.utils import WeChatSigner


class Forbidden(Exception):
    """Signature missing or wrong (answered 403)."""


def sign(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def now() -> float:
    """Our clock (tests replaying official samples signed years ago set it to their moment)."""
    return time.time()


def fresh(timestamp: str, window: int) -> bool:
    """The signed timestamp is within `window` seconds of our clock (either way: clocks drift).
    A signature never expires by itself, so this is what turns an old signed URL into a 403."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return abs(now() - int(timestamp)) <= window


def _same(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


class MpCrypto:
    """Verify, decrypt and encrypt for one Official Account (plain, compatible and safe modes)."""

    def __init__(
        self, token: str, aes_key: str, app_id: str, *, mode: str = "plain", replay_window: int = 300
    ) -> None:
        self.token = token
        self.app_id = app_id
        self.mode = mode  # safe | compat | plain (settings.wechat_message_mode)
        self.replay_window = replay_window
        self._crypto = WeChatCrypto(token, aes_key, app_id) if aes_key else None
        # One AES context for every message: wechatpy builds a PrpCrypto (and its Cipher) per call.
        self._prp = PrpCrypto(self._crypto.key) if self._crypto else None

    def check(self, query: Mapping[str, str]) -> None:
        """The plain `signature` WeChat puts on every callback, including URL verification, made
        within the replay window."""
        ts, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not (ts and nonce and _same(sign(self.token, ts, nonce), query.get("signature"))):
            raise Forbidden("bad signature")
        if not fresh(ts, self.replay_window):
            raise Forbidden("timestamp outside the replay window")

    def check_mode(self, encrypted: bool) -> None:
        """In safe mode only encrypted bodies are read: a plaintext one is what a replayed or leaked
        signed URL would carry, since only the AES key makes a valid ciphertext."""
        if not encrypted and self.mode == "safe":
            raise Forbidden("plaintext message in safe mode")

    def encrypted(self, query: Mapping[str, str]) -> bool:
        return query.get("encrypt_type", "raw") == "aes"

    def open(self, query: Mapping[str, str], envelope: Mapping[str, Any]) -> str:
        """The plaintext XML of an `<Encrypt>` envelope, after checking `msg_signature`."""
        if self._prp is None:
            raise Forbidden("encrypted message but WECHAT_AES_KEY is not set")
        encrypt = envelope.get("Encrypt")
        if not isinstance(encrypt, str):
            raise Forbidden("no Encrypt element")
        expected = sign(self.token, query.get("timestamp", ""), query.get("nonce", ""), encrypt)
        if not _same(expected, query.get("msg_signature")):
            raise Forbidden("bad msg_signature")
        try:
            return str(self._prp.decrypt(encrypt, self.app_id))
        except InvalidAppIdException:
            raise Forbidden("message for another app id") from None
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as exc:
            raise Forbidden(f"undecryptable: {exc}") from None

    def seal(self, xml: str, nonce: str, timestamp: str) -> str:
        """Encrypt a passive reply the way WeChat expects in compatible and safe modes."""
        assert self._crypto is not None
        return str(self._crypto.encrypt_message(xml, nonce, timestamp))
