"""Announcements of configuration changes to the data plane.

The data plane caches what it reads from the `data_plane_*` views. After a
transaction that changed any of it commits, one item per changed row goes to
the organisation's `signal:config:{org_id}` channel:
`{"type": "<resource>.<action>", "id": "<row id>", "org_id": "…"}`.

They are read off the transaction's audit entries, which every change writes
and which name each row it changed, so no write can change configuration
without being announced. A change made through a legacy route is announced
under the resource it changed (a source is a pipeline), since the data plane
knows only those.
"""

from __future__ import annotations

from typing import Any

from signal_admin.live.bus import Feed, LiveBus
from signal_admin.persistence.database import AfterCommit
from signal_admin.persistence.models import AuditEntry
from signal_admin.resolvers import audit

# The resource each audited resource type changes, for those the data plane
# reads; audit entries of any other type announce nothing.
ANNOUNCED_AS = {
    "pipeline": "pipeline",
    "source": "pipeline",
    "pipeline_integration": "pipeline_integration",
    "integration": "pipeline_integration",
    "integration_template": "integration_template",
    "integration_revision": "integration_revision",
    "transformation": "transformation",
    "data_layer": "data_layer",
}


def announcement(entry: AuditEntry) -> dict[str, Any] | None:
    """What `entry` announces to the data plane, if anything."""
    resource = ANNOUNCED_AS.get(entry.resource_type)
    if resource is None or entry.resource_id is None:
        return None
    _, _, action = entry.action.partition(".")
    return {
        "type": f"{resource}.{action}",
        "id": entry.resource_id,
        "org_id": entry.org_id,
    }


def config_announcer(bus: LiveBus) -> AfterCommit:
    """The after-commit hook that announces a transaction's configuration
    changes, each (type, id) once, in the order they were made."""

    async def announce(info: dict[str, Any]) -> None:
        by_org: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        for entry in audit.recorded(info):
            item = announcement(entry)
            if item is not None:
                items = by_org.setdefault(entry.org_id, {})
                items.setdefault((item["type"], item["id"]), item)
        for org_id, items in by_org.items():
            await bus.publish(Feed.CONFIG, org_id, list(items.values()))

    return announce
