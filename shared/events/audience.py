"""What a reader outside an event's own consumers may see of it: a webhook endpoint registered for a role receives
an event only when the role holds the event's ``audience`` permission, and without each ``restricted`` field whose
permission the role lacks (a billing endpoint learns that a session was completed and for how long, not the dose).

The permission table (shared/auth/permissions.py) is the one source: the same role sees the same over REST.
"""

from __future__ import annotations

from typing import Any, Literal

from shared.auth.permissions import NETWORK_ROLES, PERMISSION_TABLE, SITE_ROLES, Permission, Role
from shared.events.registry import DomainEvent, event_types


def role_holds(role: Role, permission: Permission) -> bool:
    return role in PERMISSION_TABLE[permission]


def may_receive(model: type[DomainEvent], role: Role) -> bool:
    """A site role receives site events it may read; the network's role, the aggregates only."""
    roles = NETWORK_ROLES if model.scope == "network" else SITE_ROLES
    return role in roles and role_holds(role, model.audience)


def receivable_types(role: Role, scope: Literal["site", "network"]) -> list[str]:
    """The event types (CloudEvents ``type``) still produced that ``role`` may subscribe to, in ``scope``."""
    return sorted(
        ce_type
        for ce_type, model in event_types(produced_only=True).items()
        if model.scope == scope and may_receive(model, role)
    )


def view_for(event: DomainEvent, role: Role) -> dict[str, Any]:
    """The event's data as JSON, less the fields ``role`` may not see. Only for a role that may receive it."""
    model = type(event)
    if not may_receive(model, role):
        raise PermissionError(f"{model.ce_type()} is not for the {role.value} role")
    hidden = {field for field, permission in model.restricted.items() if not role_holds(role, permission)}
    data: dict[str, Any] = event.model_dump(mode="json", exclude=hidden)
    return data


def audience_table(scope: Literal["site", "network"]) -> str:
    """A Markdown table of who may receive each event type still produced in ``scope``, and of the fields only
    some of them see (docs/subscribing.md holds it; a test keeps the two the same)."""
    roles = NETWORK_ROLES if scope == "network" else SITE_ROLES
    lines = ["| event type | roles that receive it | fields only some of them see |", "|---|---|---|"]
    for ce_type, model in sorted(event_types(produced_only=True).items()):
        if model.scope != scope:
            continue
        receivers = [role for role in Role if role in roles and may_receive(model, role)]  # Role's order
        limited = "; ".join(
            f"`{field}`: {', '.join(r.value for r in receivers if role_holds(r, permission)) or 'none'}"
            for field, permission in sorted(model.restricted.items())
        )
        lines.append(f"| `{ce_type}` | {', '.join(r.value for r in receivers)} | {limited or '-'} |")
    return "\n".join(lines)
