"""All configuration in one pydantic-settings class: environment variables or `.env`.

Names follow the design brief's settings table. Secrets are `SecretStr`, so they never reach a log.
"""

from __future__ import annotations

import base64
import binascii
from typing import Self

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str, *aliases: str) -> AliasChoices:
    return AliasChoices(name, *aliases)


class SettingsError(Exception):
    """Raised with one human-readable line per problem found in the configuration."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Level(BaseModel):
    """One rung of the creators' ladder: reached with `invites` direct invitees and `team_sales_fen`
    of completed team sales; `team_bp` is the team reward on orders two and three levels down."""

    name: str
    invites: int = Field(ge=0)
    team_sales_fen: int = Field(0, ge=0)
    team_bp: tuple[int, int] = (0, 0)


DEFAULT_LEVELS = (
    Level(name="一星", invites=0, team_bp=(300, 100)),
    Level(name="二星", invites=3, team_bp=(500, 300)),
    Level(name="三星", invites=10, team_sales_fen=500_000, team_bp=(600, 400)),
    Level(name="百星", invites=30, team_sales_fen=5_000_000, team_bp=(800, 500)),
    Level(name="千星", invites=100, team_sales_fen=20_000_000, team_bp=(1000, 600)),
)
REFERRAL_POLICIES = ("first_touch", "time_limited", "new_users", "first_paid")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        "sqlite+aiosqlite:///var/chatorder.db", validation_alias=_env("CHATORDER_DATABASE_URL")
    )
    # PostgreSQL connections each server process keeps open (None: store.db.PG_POOL_SIZE); SQLite ignores it.
    database_pool_size: int | None = Field(
        None, ge=1, le=500, validation_alias=_env("CHATORDER_DATABASE_POOL_SIZE")
    )
    redis_url: str | None = Field(None, validation_alias=_env("CHATORDER_REDIS_URL"))
    public_url: str = Field("http://127.0.0.1:8080", validation_alias=_env("CHATORDER_PUBLIC_URL"))
    host: str = Field("127.0.0.1", validation_alias=_env("CHATORDER_HOST"))
    port: int = Field(8080, ge=0, le=65535, validation_alias=_env("CHATORDER_PORT"))
    sandbox: bool = Field(False, validation_alias=_env("CHATORDER_SANDBOX"))
    # Name of this deployment's Official Account in texts ("欢迎来到「星推」").
    brand: str = Field("星推", validation_alias=_env("CHATORDER_BRAND"))
    # Seconds we let a handler run before answering `success` and replying through the API.
    # WeChat gives up after 5 s; the rest is network and parsing headroom.
    reply_budget: float = Field(4.0, gt=0, lt=5, validation_alias=_env("CHATORDER_REPLY_BUDGET"))
    # A font with Chinese glyphs for posters; found on the system when unset.
    font_path: str | None = Field(None, validation_alias=_env("CHATORDER_FONT_PATH"))
    log_format: str = Field("json", pattern="^(json|text)$", validation_alias=_env("CHATORDER_LOG_FORMAT"))
    # Optional language model (OpenAI-compatible chat completions), asked only when the local
    # understanding is unsure; off unless both the URL and the model are set. README says what is sent.
    llm_base_url: str = Field("", validation_alias=_env("CHATORDER_LLM_BASE_URL"))
    llm_model: str = Field("", validation_alias=_env("CHATORDER_LLM_MODEL"))
    llm_api_key: SecretStr = Field(SecretStr(""), validation_alias=_env("CHATORDER_LLM_API_KEY"))
    llm_timeout: float = Field(1.5, gt=0, le=4, validation_alias=_env("CHATORDER_LLM_TIMEOUT"))

    wechat_app_id: str = Field("", validation_alias=_env("WECHAT_APP_ID"))
    wechat_app_secret: SecretStr = Field(SecretStr(""), validation_alias=_env("WECHAT_APP_SECRET"))
    wechat_token: SecretStr = Field(SecretStr(""), validation_alias=_env("WECHAT_TOKEN"))
    wechat_aes_key: SecretStr = Field(SecretStr(""), validation_alias=_env("WECHAT_AES_KEY"))
    wechat_api_base: str = Field(
        "https://api.weixin.qq.com/cgi-bin/", validation_alias=_env("WECHAT_API_BASE")
    )
    # safe: only encrypted bodies; compat: encrypted or plaintext; plain: plaintext (encrypted ones are
    # still read when the key is set). Empty = safe when WECHAT_AES_KEY is set, plain otherwise.
    wechat_message_mode: str = Field(
        "", pattern="^(|safe|compat|plain)$", validation_alias=_env("WECHAT_MESSAGE_MODE")
    )
    # A signed Official Account or WeCom callback whose timestamp is further than this from our clock is
    # a replay (403). WeChat's own retries come within 15 s of the first attempt.
    replay_window_seconds: int = Field(
        300, ge=30, le=86_400, validation_alias=_env("CHATORDER_REPLAY_WINDOW_SECONDS")
    )
    # Template used when a customer-service message is refused (45015, outside the 48-hour window).
    # Its fields: first, keyword1 (what), keyword2 (when), remark.
    wechat_notice_template_id: str = Field("", validation_alias=_env("WECHAT_NOTICE_TEMPLATE_ID"))
    # One-time subscription messages (一次性订阅消息) for flash-sale reminders outside the 48-hour window:
    # the template id from the MP admin, and WeChat's authorisation page (the sandbox serves its own).
    wechat_subscribe_template_id: str = Field("", validation_alias=_env("WECHAT_SUBSCRIBE_TEMPLATE_ID"))
    wechat_subscribe_url: str = Field(
        "https://mp.weixin.qq.com/mp/subscribemsg", validation_alias=_env("WECHAT_SUBSCRIBE_URL")
    )

    wecom_corp_id: str = Field("", validation_alias=_env("WECOM_CORP_ID"))
    wecom_agent_id: str = Field("", validation_alias=_env("WECOM_AGENT_ID"))
    wecom_secret: SecretStr = Field(SecretStr(""), validation_alias=_env("WECOM_SECRET"))
    wecom_token: SecretStr = Field(SecretStr(""), validation_alias=_env("WECOM_TOKEN"))
    wecom_aes_key: SecretStr = Field(SecretStr(""), validation_alias=_env("WECOM_AES_KEY"))
    wecom_api_base: str = Field(
        "https://qyapi.weixin.qq.com/cgi-bin/", validation_alias=_env("WECOM_API_BASE")
    )
    wecom_robot_key: SecretStr = Field(SecretStr(""), validation_alias=_env("WECOM_ROBOT_KEY"))

    wechatpay_mch_id: str = Field("", validation_alias=_env("WECHATPAY_MCH_ID"))
    wechatpay_api_key: SecretStr = Field(SecretStr(""), validation_alias=_env("WECHATPAY_API_KEY"))
    # The merchant's API client certificate (apiclient_cert.pem / apiclient_key.pem from the merchant
    # platform): WeChat Pay requires it for refunds through WeChat and for transfers (creator payouts).
    wechatpay_cert_file: str = Field("", validation_alias=_env("WECHATPAY_CERT_FILE"))
    wechatpay_key_file: str = Field("", validation_alias=_env("WECHATPAY_KEY_FILE"))
    # Signature of the WeChat Pay v2 requests we send (a notification is checked by its own sign_type).
    wechatpay_sign_type: str = Field(
        "HMAC-SHA256", pattern="^(MD5|HMAC-SHA256)$", validation_alias=_env("WECHATPAY_SIGN_TYPE")
    )
    # Minutes an unpaid order keeps its stock before it is cancelled (one reminder comes first).
    order_ttl_minutes: int = Field(30, ge=5, le=24 * 60, validation_alias=_env("CHATORDER_ORDER_TTL_MINUTES"))
    # Flash sales (README, "秒杀"): repeated 抢 from one person within this many ms is turned away
    # politely (0: off); a unit given back is held this long for the person first on the waitlist.
    flash_throttle_ms: int = Field(800, ge=0, le=60_000, validation_alias=_env("CHATORDER_FLASH_THROTTLE_MS"))
    # The staff group gets a short post on a running sale every this many minutes (0: only alerts).
    flash_room_minutes: int = Field(1, ge=0, le=60, validation_alias=_env("CHATORDER_FLASH_ROOM_MINUTES"))
    # Reminders written to the outbox per run of the reminder job (every 10 s): spread under the rate limit.
    flash_reminders_per_run: int = Field(
        500, ge=1, le=100_000, validation_alias=_env("CHATORDER_FLASH_REMINDERS_PER_RUN")
    )
    # Remarketing goes out this long after a sale ends (to who subscribed or took a unit and did not buy).
    flash_remarket_after_minutes: int = Field(
        30, ge=0, le=24 * 60, validation_alias=_env("CHATORDER_FLASH_REMARKET_AFTER_MINUTES")
    )
    flash_waitlist_hold_minutes: int = Field(
        3, ge=1, le=60, validation_alias=_env("CHATORDER_FLASH_WAITLIST_HOLD_MINUTES")
    )
    # A new follower's first-order coupon (fen off; 0: off), from a minimum spend, valid this many days.
    new_follower_coupon_fen: int = Field(
        0, ge=0, le=1_000_000, validation_alias=_env("CHATORDER_NEW_FOLLOWER_COUPON_FEN")
    )
    new_follower_coupon_min_fen: int = Field(
        0, ge=0, le=100_000_000, validation_alias=_env("CHATORDER_NEW_FOLLOWER_COUPON_MIN_FEN")
    )
    new_follower_coupon_days: int = Field(
        7, ge=1, le=365, validation_alias=_env("CHATORDER_NEW_FOLLOWER_COUPON_DAYS")
    )
    wechatpay_api_base: str = Field(
        "https://api.mch.weixin.qq.com/", validation_alias=_env("WECHATPAY_API_BASE")
    )
    # Creators: referral binding, commission, withdrawals (docs in README, "Creators").
    referral_policy: str = Field(
        "first_touch",
        pattern="^(first_touch|time_limited|new_users|first_paid)$",
        validation_alias=_env("CHATORDER_REFERRAL_POLICY"),
    )
    referral_rebind_days: int = Field(30, ge=1, validation_alias=_env("CHATORDER_REFERRAL_REBIND_DAYS"))
    poster_template: str = Field(
        "default", pattern=r"^[a-z0-9_-]{1,40}$", validation_alias=_env("CHATORDER_POSTER_TEMPLATE")
    )  # a file in posters/templates/
    # Multi-level payouts beyond three levels are illegal in China: the cap is in the type.
    commission_depth: int = Field(3, ge=1, le=3, validation_alias=_env("CHATORDER_COMMISSION_DEPTH"))
    freeze_days: int = Field(7, ge=0, le=90, validation_alias=_env("CHATORDER_FREEZE_DAYS"))
    # Inbound message bodies and customers' pictures older than this are purged by a daily job.
    retention_days: int = Field(180, ge=1, le=3650, validation_alias=_env("CHATORDER_RETENTION_DAYS"))
    levels: tuple[Level, ...] = Field(DEFAULT_LEVELS, min_length=1, validation_alias=_env("CHATORDER_LEVELS"))
    withdraw_min_fen: int = Field(10_000, ge=100, validation_alias=_env("CHATORDER_WITHDRAW_MIN_FEN"))
    withdraw_fee_bp: int = Field(100, ge=0, le=2000, validation_alias=_env("CHATORDER_WITHDRAW_FEE_BP"))
    withdraw_daily_limit_fen: int = Field(
        500_000, ge=100, validation_alias=_env("CHATORDER_WITHDRAW_DAILY_LIMIT_FEN")
    )
    # More than `invite_burst_count` new invitees within `invite_burst_minutes`: their commissions are held.
    invite_burst_count: int = Field(20, ge=2, validation_alias=_env("CHATORDER_INVITE_BURST_COUNT"))
    invite_burst_minutes: int = Field(60, ge=1, validation_alias=_env("CHATORDER_INVITE_BURST_MINUTES"))
    # Staff in WeCom work chat (README, "Staff").
    staff_max_open: int = Field(10, ge=1, validation_alias=_env("CHATORDER_STAFF_MAX_OPEN"))
    escalate_minutes: int = Field(30, ge=1, validation_alias=_env("CHATORDER_ESCALATE_MINUTES"))
    report_hour: int = Field(9, ge=0, le=23, validation_alias=_env("CHATORDER_REPORT_HOUR"))
    # The scheduled pushes of results (daily report texts, Monday summaries, the board to the group).
    pushes: bool = Field(True, validation_alias=_env("CHATORDER_PUSHES"))
    publish_remind_hours: int = Field(2, ge=1, le=72, validation_alias=_env("CHATORDER_PUBLISH_REMIND_HOURS"))

    @model_validator(mode="after")
    def _normalise(self) -> Self:
        for name in ("wechat_api_base", "wecom_api_base", "wechatpay_api_base"):
            value = getattr(self, name)
            if not value.endswith("/"):
                setattr(self, name, value + "/")
        self.public_url = self.public_url.rstrip("/")
        if not self.wechat_message_mode:
            self.wechat_message_mode = "safe" if self.wechat_aes_key.get_secret_value() else "plain"
        if any(a.invites > b.invites for a, b in zip(self.levels, self.levels[1:], strict=False)):
            raise ValueError("CHATORDER_LEVELS must be ordered from the lowest level up")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def problems(self) -> list[str]:
        """What stops the Official Account from working, one sentence each (empty = fine)."""
        found: list[str] = []
        for env, value in (
            ("WECHAT_APP_ID", self.wechat_app_id),
            ("WECHAT_APP_SECRET", self.wechat_app_secret.get_secret_value()),
            ("WECHAT_TOKEN", self.wechat_token.get_secret_value()),
        ):
            if not value:
                found.append(f"{env} is not set: copy it from the Official Account's 基本配置 page.")
        aes = self.wechat_aes_key.get_secret_value()
        if aes and not _valid_aes_key(aes):
            found.append("WECHAT_AES_KEY must be the 43-character EncodingAESKey from 基本配置.")
        if self.wechat_message_mode in ("safe", "compat") and not aes:
            found.append(f"WECHAT_MESSAGE_MODE={self.wechat_message_mode} needs WECHAT_AES_KEY.")
        if not self.database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            found.append(
                "CHATORDER_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://."
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            found.append("CHATORDER_REDIS_URL must be a redis:// or rediss:// URL.")
        return found


def _valid_aes_key(key: str) -> bool:
    if len(key) != 43:
        return False
    try:
        return len(base64.b64decode(key + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning pydantic's errors into one line per field."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            env = Settings.model_fields.get(field)
            name = env.validation_alias.choices[0] if env and env.validation_alias else field  # type: ignore[union-attr]
            secret = env is not None and env.annotation is SecretStr
            shown = "" if secret else f" (got {err.get('input')!r})"
            lines.append(f"{name}: {err['msg']}{shown}")
        raise SettingsError(lines) from None
