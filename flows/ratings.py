"""Reviews as people see them: the one ask after completion, the customer's 「评分 5 …」, staff told of
low scores at once, and the line a service's detail shows."""

from __future__ import annotations

import re
import unicodedata

from flows import desk, texts
from flows import texts_staff as ts
from flows.staff import staff_alert
from settings import Settings
from store.models import Order, Review
from store.outbox import Outgoing, text
from store.reviews import ServiceReviews

LOW = 2  # scores at or below this reach staff at once
_SCORE = re.compile(
    # A Chinese numeral counts only with its unit (五星, 四分): 「一下」 is no score.
    r"^\s*(?:([1-5])\s*(?:分|星|颗星)?|([一二三四五])\s*(?:分|星|颗星)|(★{1,5}))(?![\d.])"
    r"\s*[,，。.!！:：、]?\s*(.*)$",
    re.S,
)
_CN = "一二三四五"


def ask(order: Order) -> list[Outgoing]:
    """Asked once per order (the dedupe key), right after it completes; ignoring it is fine."""
    return [
        text(order.openid, texts.REVIEW_ASK.format(number=order.number), dedupe_key=f"review-ask:{order.id}")
    ]


def parse(argument: str) -> tuple[int, str] | None:
    """「5 很满意」 / 「五星」 / 「★★★★ 不错」 → (score, comment); None when no 1–5 score leads."""
    found = _SCORE.match(unicodedata.normalize("NFKC", argument))
    if found is None:
        return None
    digit, chinese, stars, comment = found.groups()
    score = int(digit) if digit else _CN.index(chinese) + 1 if chinese else len(stars)
    return score, comment.strip()


def stars(score: int) -> str:
    return "★" * score + "☆" * (5 - score)


def thanks(review: Review) -> str:
    extra = texts.REVIEW_SORRY if review.score <= LOW else texts.REVIEW_GLAD if review.score >= 4 else ""
    return texts.REVIEW_THANKS.format(stars=stars(review.score), extra=extra)


def low_score_alert(settings: Settings, order: Order, review: Review, owner: str) -> list[Outgoing]:
    """To the group and the order's owner at once: a score of LOW or less."""
    if review.score > LOW:
        return []
    content = ts.LOW_REVIEW.format(
        number=order.number,
        score=review.score,
        comment=f"：「{review.comment}」" if review.comment else "（没有留言）",
        owner=owner,
    )
    out = staff_alert(settings, content, key=f"low-review:{order.id}")
    if order.assignee:
        out += desk.to_staff(order.assignee, content)
    return out


def service_line(summary: ServiceReviews | None) -> str:
    """评价：⭐ 4.7 分（23 条） and the latest comments, for a service's detail."""
    if summary is None:
        return ""
    comments = "".join(f"\n  「{c}」" for c in summary.latest)
    return texts.DETAIL_REVIEWS.format(
        average=f"{summary.average:.1f}", count=summary.count, comments=comments
    )
