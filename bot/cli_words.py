"""What the command line says when the store refuses something: plain English, and what to do about it."""

from __future__ import annotations

from typing import Any

from flows.format import yuan
from store.errors import DomainError

# code → sentence (formatted with the refusal's details; amounts in fen are shown in yuan).
REFUSALS = {
    "not_found": "{what} not found — check the number ({where})",
    "conflict": "{what} has already been decided or changed meanwhile ({status}); "
    "list it again to see where it stands",
    "not_refundable": "this order cannot be refunded in its state ({status}): only paid orders can",
    "refund_exceeds": "that is more than can still be refunded ({refundable}); "
    "leave out --amount to refund all that is left",
    "refund_under_way": "a WeChat Pay refund of {number} is still under way; wait for it to finish",
    "no_wechat_payment": "the order was not paid with WeChat Pay: refund it --to balance",
    "bad_amount": "the amount is not valid ({amount_fen})",
    "bad_reason": "the reason is empty or too long (at most {max_chars} characters)",
    "in_debt": "the creator owes {debt_fen} from refunded orders: refuse this request "
    "(the debt is paid first)",
    "no_member": "no active staff member {who} (`chatorder staff list`)",
    "bad_userid": "{userid} is not a WeCom userid (1–64 letters, digits, _ . @ -)",
    "bad_roles": "unknown role(s) {roles}: use admin, ops, reviewer, finance",
    "bad_name": "the name is empty or too long (at most {max_chars} characters)",
    "bad_max_open": "--max-open must be from 1 to 1000 (got {max_open})",
}
# Where an operator finds the right number, by what was not found.
WHERE = {
    "order": "查单 in work chat shows an order",
    "withdrawal": "`chatorder withdrawals list`",
    "commission": "`chatorder commissions held`",
    "it": "list them first",
}
SUBJECTS = {
    "order_id": "order",
    "number": "order",
    "withdrawal_id": "withdrawal",
    "commission_id": "commission",
}


def explain(exc: DomainError) -> str:
    """One line for an operator: what was refused and what to do."""
    details: dict[str, Any] = {
        k: yuan(v) if isinstance(v, int) and k.endswith(("_fen", "refundable")) else v
        for k, v in exc.details.items()
    }
    kind, ref = next(((SUBJECTS[k], v) for k, v in exc.details.items() if k in SUBJECTS), ("it", ""))
    subject = f"{kind} {ref}".strip()
    template = REFUSALS.get(exc.code)
    if template is None:
        shown = ", ".join(f"{k} {v}" for k, v in details.items())
        return f"refused: {exc.code.replace('_', ' ')}" + (f" ({shown})" if shown else "")
    try:
        return "refused: " + template.format_map(
            {"what": subject, "where": WHERE[kind], "status": "", **details}
        )
    except (KeyError, IndexError, ValueError):
        return f"refused: {exc.code.replace('_', ' ')}"
