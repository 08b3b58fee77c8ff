"""Forms as conversations: ordered steps, one question at a time, with back, cancel, template and resume.

```mermaid
stateDiagram-v2
    [*] --> step1: begin
    step1 --> step2: valid answer
    step1 --> step1: invalid (re-asked with the reason) / 模板
    step1 --> checking: an answer with a part assumed (下周五晚上 → 19:00)
    checking --> step2: 对
    checking --> step1: anything else, read as a new answer
    step2 --> step1: 返回
    step2 --> confirm: last valid answer
    confirm --> step2: 返回
    confirm --> [*]: 确认 (the handler acts) / 取消 from anywhere
    step2 --> paused: another command
    paused --> step2: 继续
```
The state lives in FlowState (flow, step, data["form"]) and is persisted with each turn, so a form
survives restarts and a person can wander off and come back. An answer waiting to be confirmed is kept
in data["form"]["pending"] with the question that asks for it; the step's prompt is that question.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Self

from flows import texts
from flows.requirements import MAX_IMAGES, STEPS, InvalidInput, NeedsConfirmation, Step
from store.turns import FlowState

CONFIRM = "confirm"
DONE_WORDS = {"好了", "好", "完成", "发完了", "没有了", "ok", "下一步"}
SKIP_WORDS = {"跳过", "没有", "无", "不用", "skip"}
# 对 keeps an answer the form asked back about (flows.requirements.NeedsConfirmation)
YES_WORDS = {"对", "对的", "对呀", "对啊", "是", "是的", "是呀", "好", "好的", "好呀", "嗯", "嗯嗯", "可以"}
YES_WORDS |= {"行", "没错", "没问题", "确认", "确定", "ok", "okay", "yes", "y", "👌", "👍"}


class Form:
    """Base of every form: subclasses name themselves; steps come from STEPS by key."""

    name: ClassVar[str]

    def __init__(self, state: FlowState) -> None:
        self.state = state

    @classmethod
    def active(cls, state: FlowState) -> bool:
        return state.flow == cls.name

    @classmethod
    def begin(cls, state: FlowState, keys: list[str], **extra: Any) -> Self:
        ordered = [k for k in STEPS if k in set(keys)]
        state.flow = cls.name
        state.data["form"] = {"keys": ordered, "answers": {}, "reminded": False, **extra}
        state.step = ordered[0] if ordered else CONFIRM
        return cls(state)

    @property
    def data(self) -> dict[str, Any]:
        return self.state.data["form"]

    @property
    def keys(self) -> list[str]:
        return list(self.data["keys"])

    @property
    def answers(self) -> dict[str, Any]:
        return self.data["answers"]

    @property
    def at_confirm(self) -> bool:
        return self.state.step == CONFIRM

    @property
    def step(self) -> Step | None:
        return None if self.at_confirm else STEPS[self.state.step or ""]

    def position(self) -> tuple[int, int]:
        total = len(self.keys)
        return (total if self.at_confirm else self.keys.index(self.state.step or "") + 1), total

    def prompt(self) -> str:
        """The question of the current step (the confirm summary is the subclass's)."""
        step = self.step
        assert step is not None
        n, total = self.position()
        pending = self.pending
        if pending is not None:
            return texts.FORM_STEP.format(n=n, total=total, prompt=pending["question"])
        hint = texts.FORM_TEMPLATE_HINT if step.example else ""
        return texts.FORM_STEP.format(n=n, total=total, prompt=step.prompt + hint)

    def example(self, now: dt.datetime) -> str:
        step = self.step
        return texts.FORM_TEMPLATE.format(example=step.example_at(now)) if step else ""

    @property
    def pending(self) -> dict[str, Any] | None:
        """The answer to the current step waiting for 对, with the question asking for it."""
        pending = self.data.get("pending")
        return pending if pending and pending.get("key") == self.state.step else None

    def answer(self, text: str, now: dt.datetime) -> None:
        """Validate and keep the answer, then move on; InvalidInput leaves everything as it was.

        An answer with an assumed part is held as pending (the prompt becomes its question) until 对.
        """
        step = self.step
        assert step is not None
        pending = self.pending
        if step.images:
            self._finish_images(text)
        elif pending is not None and _is_yes(text):
            self.answers[step.key] = pending["value"]
        else:
            try:
                self.answers[step.key] = step.parse(text, now)
            except NeedsConfirmation as ask:
                self.data["pending"] = {"key": step.key, "value": ask.value, "question": ask.question}
                return
        self.data.pop("pending", None)
        self._advance()

    def add_image(self, material_id: int) -> int:
        """Keep one more picture for an image step; returns how many there are now."""
        step = self.step
        if step is None or not step.images:
            raise InvalidInput(texts.IMAGE_NOT_NOW)
        images: list[int] = self.answers.setdefault(step.key, [])
        if len(images) >= MAX_IMAGES:
            raise InvalidInput(texts.IMAGE_LIMIT, max=MAX_IMAGES)
        if material_id not in images:
            images.append(material_id)
        return len(images)

    def _finish_images(self, text: str) -> None:
        word = text.strip().lower()
        images = self.answers.get(self.state.step or "", [])
        if word in SKIP_WORDS:
            self.answers[self.state.step or ""] = []
        elif word in DONE_WORDS:
            if not images:
                raise InvalidInput(texts.IMAGES_NONE_YET)
        else:
            raise InvalidInput(texts.IMAGES_EXPECTED)

    def _advance(self) -> None:
        keys = self.keys
        i = keys.index(self.state.step or "")
        self.state.step = keys[i + 1] if i + 1 < len(keys) else CONFIRM

    def back(self) -> bool:
        """One step back; False when already at the first step."""
        self.data.pop("pending", None)
        keys = self.keys
        if not keys:
            return False
        if self.at_confirm:
            self.state.step = keys[-1]
            return True
        i = keys.index(self.state.step or "")
        if i == 0:
            return False
        self.state.step = keys[i - 1]
        return True

    def end(self) -> None:
        """Leave the form (done or abandoned); other conversation data stays."""
        self.state.flow = None
        self.state.step = None
        self.state.data.pop("form", None)

    def paused_hint(self) -> str:
        """Appended when the person asked something else in the middle of the form."""
        if self.at_confirm:
            return texts.FORM_PAUSED_CONFIRM
        n, total = self.position()
        return texts.FORM_PAUSED.format(n=n, total=total)

    def reminder(self) -> str:
        """The one message sent when the form has been left idle (flows.reminders)."""
        if self.at_confirm:
            return texts.FORM_PAUSED_CONFIRM.strip("\n—")
        n, total = self.position()
        return texts.FORM_REMINDER.format(n=n, total=total)


class OrderForm(Form):
    """The requirements of an order: the union of what its packages need, then a summary to confirm."""

    name = "order_form"

    @property
    def lines(self) -> list[tuple[int, int]]:
        return [(int(p), int(q)) for p, q in self.data["lines"]]


def _is_yes(text: str) -> bool:
    return text.strip().strip("。.!！~～ ").lower() in YES_WORDS
