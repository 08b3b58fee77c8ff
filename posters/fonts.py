"""Finding a font that has Chinese glyphs (posters must never show boxes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Debian/Ubuntu (fonts-noto-cjk, fonts-wqy-*), Fedora, macOS: checked when fc-list is absent.
KNOWN = [
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
]

INSTALL_HINT = "install one: `apt-get install fonts-noto-cjk` (Debian/Ubuntu), or set CHATORDER_FONT_PATH"


def find_cjk_font(configured: str | None = None) -> Path | None:
    """The configured font if it exists, else the first CJK font the system knows."""
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    if shutil.which("fc-list"):
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        files = sorted(line.split(":")[0].strip() for line in out.splitlines() if line.strip())
        preferred = [f for f in files if "Regular" in f or "microhei" in f] or files
        if preferred:
            return Path(preferred[0])
    return next((Path(p) for p in KNOWN if Path(p).is_file()), None)
