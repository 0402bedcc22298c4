"""The schema: the root types gathered from each domain's module."""

from __future__ import annotations

from collections.abc import Iterator

import strawberry
from graphql import GraphQLError, GraphQLSchema
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from signal_admin.schema.audit_logs import AuditLogsQuery, AuditLogsSubscription
from signal_admin.schema.auth import AuthMutation, AuthQuery
from signal_admin.schema.catalog import CatalogQuery
from signal_admin.schema.collector import CollectorMutation
from signal_admin.schema.context import GraphQLContext
from signal_admin.schema.crypto import CryptoMutation, CryptoQuery
from signal_admin.schema.data_layer import DataLayerMutation, DataLayerQuery
from signal_admin.schema.execution import PlannedExecutionContext
from signal_admin.schema.live import LiveSubscription
from signal_admin.schema.organizations import OrganizationMutation, OrganizationQuery
from signal_admin.schema.pipeline_integrations import PipelineIntegrationsMutation
from signal_admin.schema.pipelines import PipelinesMutation, PipelinesQuery
from signal_admin.schema.scalars import SCALARS
from signal_admin.schema.templates import TemplatesMutation, TemplatesQuery
from signal_admin.schema.test_events import TestEventsMutation
from signal_admin.schema.transformations import (
    TransformationsMutation,
    TransformationsQuery,
)
from signal_admin.schema.users import UsersMutation, UsersQuery


@strawberry.type(description="What can be read.")
class Query(
    AuthQuery,
    OrganizationQuery,
    PipelinesQuery,
    CatalogQuery,
    TemplatesQuery,
    TransformationsQuery,
    DataLayerQuery,
    UsersQuery,
    AuditLogsQuery,
    CryptoQuery,
):
    pass


@strawberry.type(description="What can be changed; each field runs in turn.")
class Mutation(
    AuthMutation,
    PipelinesMutation,
    CollectorMutation,
    TemplatesMutation,
    PipelineIntegrationsMutation,
    TransformationsMutation,
    DataLayerMutation,
    TestEventsMutation,
    UsersMutation,
    OrganizationMutation,
    CryptoMutation,
):
    pass


@strawberry.type(
    description="What can be watched, over the WebSocket on this path "
    "(graphql-transport-ws)."
)
class Subscription(LiveSubscription, AuditLogsSubscription):
    pass


class CheckedDocument(SchemaExtension):
    """Runs the document the endpoint has already parsed, validated and
    admitted, so exactly what was checked is what executes."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context.context
        assert isinstance(context, GraphQLContext)
        self.execution_context.graphql_document = context.document
        yield

    def on_validate(self) -> Iterator[None]:
        self.execution_context.pre_execution_errors = []
        yield


class AdminSchema(strawberry.Schema):
    def process_errors(
        self,
        errors: list[GraphQLError],
        execution_context: ExecutionContext | None = None,
    ) -> None:
        """Errors are logged by the endpoint, which alone knows which are
        expected (a refusal, a userError) and which are not."""


schema = AdminSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=[CheckedDocument],
    config=StrawberryConfig(scalar_map=SCALARS),
    execution_context_class=PlannedExecutionContext,
)


def graphql_schema() -> GraphQLSchema:
    """The executable graphql-core schema that Strawberry builds."""
    return schema._schema
