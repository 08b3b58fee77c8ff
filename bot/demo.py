"""Settings for `chatorder demo`: everything on this machine, WeChat played by the sandbox simulators."""

from __future__ import annotations

from pathlib import Path

from settings import Settings, load_settings

# Made-up credentials shared by the demo's simulator and webhook; never valid at Tencent.
DEMO_APP_ID = "wxd0c0ffee5a4db3e1"
DEMO_APP_SECRET = "sandbox-app-secret-not-real"
DEMO_TOKEN = "sandboxtoken"
DEMO_AES_KEY = "c2FuZGJveC1kZW1vLWtleS0zMi1ieXRlcy1sb25nISE"
DEMO_MCH_ID = "1900000109"
DEMO_ROBOT_KEY = "sandbox-robot-key"
DEMO_PAY_KEY = "sandboxpaykey0123456789abcdefABC"  # 32 characters, like a real v2 API key
DEMO_CORP_ID = "ww5a4db3e1c0ffee00"  # ww + 16 hex, like a real CorpID
DEMO_AGENT_ID = "1000002"
DEMO_WECOM_SECRET = "sandbox-wecom-secret-not-real"
DEMO_WECOM_TOKEN = "sandboxworktoken"
DEMO_WECOM_AES_KEY = "c2FuZGJveC13ZWNvbS1rZXktMzItYnl0ZXMtbG9uZyE"


def demo_settings(*, port: int = 8080, var_dir: Path = Path("var"), host: str = "127.0.0.1") -> Settings:
    base = f"http://{host}:{port}"
    return load_settings(
        database_url=f"sqlite+aiosqlite:///{var_dir / 'chatorder.db'}",
        host=host,
        port=port,
        public_url=base,
        sandbox=True,
        log_format="text",
        wechat_app_id=DEMO_APP_ID,
        wechat_app_secret=DEMO_APP_SECRET,
        wechat_token=DEMO_TOKEN,
        wechat_aes_key=DEMO_AES_KEY,
        wechat_api_base=f"{base}/sandbox/mp/cgi-bin/",
        wechat_subscribe_url=f"{base}/sandbox/mp/mp/subscribemsg",
        wechat_subscribe_template_id="sandbox-flash-reminder",
        wechatpay_mch_id=DEMO_MCH_ID,
        wechatpay_api_key=DEMO_PAY_KEY,
        wechatpay_api_base=f"{base}/sandbox/pay/",
        wecom_api_base=f"{base}/sandbox/wecom/cgi-bin/",
        wecom_corp_id=DEMO_CORP_ID,
        wecom_agent_id=DEMO_AGENT_ID,
        wecom_secret=DEMO_WECOM_SECRET,
        wecom_token=DEMO_WECOM_TOKEN,
        wecom_aes_key=DEMO_WECOM_AES_KEY,
        wecom_robot_key=DEMO_ROBOT_KEY,
    )


async def prepare_demo(settings: Settings) -> int:
    """What the demo needs before it serves: the schema, the demo catalog on first start, and a flash
    sale starting a few minutes after start-up (unless one is open already)."""
    from store.catalog_import import load_demo_catalog
    from store.db import make_engine, make_sessionmaker
    from store.flash import schedule_demo_sale
    from store.migrate import upgrade
    from store.models import utcnow
    from store.staff import ensure_demo_staff

    engine = make_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with make_sessionmaker(engine).begin() as session:
            await ensure_demo_staff(session)  # 张三 (zhangsan), every role, to act as in the staff pane
            added = await load_demo_catalog(session)
            sale = await schedule_demo_sale(session, utcnow())
            if sale is not None:
                print(f"demo flash sale {sale.code}: 5 units, opens in 3 minutes — say 秒杀 in the console")
            return added
    finally:
        await engine.dispose()
