"""The one table of who may do what. Every route names one of these permissions; nothing else grants access.

Staff roles are bound to one site; ``network_admin`` belongs to the network and sees aggregates only, never a
patient. Only a clinician may prescribe, dose or decide a medical review (issue: access control, point 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    front_desk = "front_desk"
    clinician = "clinician"
    therapist = "therapist"
    billing = "billing"
    site_admin = "site_admin"
    network_admin = "network_admin"


SITE_ROLES = frozenset(Role) - {Role.network_admin}
NETWORK_ROLES = frozenset({Role.network_admin})


class Permission(StrEnum):
    patient_register = "patient.register"
    patient_read = "patient.read"
    audit_read = "audit.read"
    network_aggregates_read = "network.aggregates.read"


_STAFF = frozenset({Role.front_desk, Role.clinician, Role.therapist, Role.billing, Role.site_admin})

PERMISSION_TABLE: dict[Permission, frozenset[Role]] = {
    Permission.patient_register: frozenset({Role.front_desk, Role.clinician, Role.site_admin}),
    Permission.patient_read: _STAFF,
    Permission.audit_read: frozenset({Role.site_admin}),
    Permission.network_aggregates_read: frozenset({Role.network_admin}),
}

# Permissions whose routes live on the network service (aggregates only); every other one is patient-level.
NETWORK_PERMISSIONS = frozenset({Permission.network_aggregates_read})


@dataclass(frozen=True)
class Decision:
    allowed: bool
    role: Role | None  # the role that grants it, recorded in the audit log
    reason: str


def decide(permission: Permission, roles: frozenset[Role], token_site: str, service_site: str | None) -> Decision:
    """May a holder of ``roles`` at ``token_site`` use ``permission`` on a service of ``service_site``
    (None: the network service)?"""
    granting = PERMISSION_TABLE[permission] & roles
    if service_site is not None:
        if token_site != service_site:
            return Decision(False, None, f"this is site {service_site!r}; the token is for {token_site!r}")
        granting &= SITE_ROLES
    elif permission not in NETWORK_PERMISSIONS:
        return Decision(False, None, "the network holds no patient records")
    else:
        granting &= NETWORK_ROLES
    if not granting:
        needed = ", ".join(sorted(PERMISSION_TABLE[permission]))
        return Decision(False, None, f"{permission.value} needs one of the roles: {needed}")
    return Decision(True, min(granting), "allowed")
