"""Operations declare the permission they need, and check it first."""

import pytest

from signal_admin.errors import Forbidden
from signal_admin.resolvers import pipelines
from signal_admin.resolvers.context import (
    Principal,
    RequestContext,
    RequestMeta,
    permission_of,
)
from signal_admin.security.permissions import Permission


def test_pipeline_operations_declare_their_permissions() -> None:
    declared = {
        operation.__name__: permission_of(operation)
        for operation in (
            pipelines.list_pipelines,
            pipelines.get_pipeline,
            pipelines.count_pipelines,
            pipelines.create_pipeline,
            pipelines.update_pipeline,
            pipelines.rotate_pipeline_key,
            pipelines.delete_pipeline,
        )
    }

    assert declared == {
        "list_pipelines": Permission.READ_CONFIGURATION,
        "get_pipeline": Permission.READ_CONFIGURATION,
        "count_pipelines": Permission.READ_CONFIGURATION,
        "create_pipeline": Permission.WRITE_CONFIGURATION,
        "update_pipeline": Permission.WRITE_CONFIGURATION,
        "rotate_pipeline_key": Permission.WRITE_CONFIGURATION,
        "delete_pipeline": Permission.DELETE_CONFIGURATION,
    }


async def test_the_check_runs_before_the_operation_touches_anything() -> None:
    viewer = Principal(
        user_id="usr_v",
        org_id="org_v",
        email="v@example.com",
        role="viewer",
        session_id="ses_v",
    )
    # No services at all: reaching the database would fail with AttributeError.
    ctx = RequestContext(services=None, meta=RequestMeta(), principal=viewer)  # type: ignore[arg-type]

    with pytest.raises(Forbidden):
        await pipelines.create_pipeline(ctx, {"name": "x", "type": "web"})
