"""Roles as named sets of permissions. Checks are made on permissions, never on
role names, so adding a role is a change to `ROLE_PERMISSIONS` alone."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


class Permission(StrEnum):
    READ_CONFIGURATION = "read configuration"
    USE_LIVE_DEBUGGER = "use the live debugger"
    WRITE_CONFIGURATION = "create and edit configuration"
    BUILD_COLLECTORS = "build collectors"
    WRITE_TRANSFORMATIONS = "edit and test transformations and send test events"
    DELETE_CONFIGURATION = "delete configuration"
    WRITE_DATA_LAYER = "edit the data layer"
    MANAGE_USERS = "read and manage users"
    READ_AUDIT_LOG = "read the audit log"
    MANAGE_ORGANIZATION = "manage the organisation and its keys"


_EVERYONE = {Permission.READ_CONFIGURATION, Permission.USE_LIVE_DEBUGGER}
_EDITORS = _EVERYONE | {
    Permission.WRITE_CONFIGURATION,
    Permission.BUILD_COLLECTORS,
    Permission.WRITE_TRANSFORMATIONS,
}
_ADMINS = _EDITORS | {
    Permission.DELETE_CONFIGURATION,
    Permission.WRITE_DATA_LAYER,
    Permission.MANAGE_USERS,
    Permission.READ_AUDIT_LOG,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(_ADMINS | {Permission.MANAGE_ORGANIZATION}),
    Role.ADMIN: frozenset(_ADMINS),
    Role.EDITOR: frozenset(_EDITORS),
    Role.VIEWER: frozenset(_EVERYONE),
}


def role_has(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False
