"""What every GraphQL field is given: the request context the resolvers take,
and the request's dataloaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry
from graphql import DocumentNode

from signal_admin.resolvers.context import RequestContext
from signal_admin.schema.loaders import (
    AttachmentsByPipelineLoader,
    AttachmentsByTemplateLoader,
    BuildsByPipelineLoader,
    PipelineByIdLoader,
    RevisionByIdLoader,
    RevisionByTemplateAndNumberLoader,
    TemplateByIdLoader,
    TransformationsByTemplateLoader,
    UserByIdLoader,
)


@dataclass(slots=True)
class Loaders:
    """The dataloaders of one request, one per (target, key), each created the
    first time a field asks for it."""

    request: RequestContext
    _template_by_id: TemplateByIdLoader | None = None
    _revision_by_template_and_number: RevisionByTemplateAndNumberLoader | None = None
    _user_by_id: UserByIdLoader | None = None
    _pipeline_by_id: PipelineByIdLoader | None = None
    _revision_by_id: RevisionByIdLoader | None = None
    _attachments_by_pipeline: AttachmentsByPipelineLoader | None = None
    _attachments_by_template: AttachmentsByTemplateLoader | None = None
    _transformations_by_template: TransformationsByTemplateLoader | None = None
    _builds_by_pipeline: BuildsByPipelineLoader | None = None

    @property
    def template_by_id(self) -> TemplateByIdLoader:
        if self._template_by_id is None:
            self._template_by_id = TemplateByIdLoader(self.request)
        return self._template_by_id

    @property
    def revision_by_template_and_number(self) -> RevisionByTemplateAndNumberLoader:
        if self._revision_by_template_and_number is None:
            self._revision_by_template_and_number = RevisionByTemplateAndNumberLoader(
                self.request
            )
        return self._revision_by_template_and_number

    @property
    def user_by_id(self) -> UserByIdLoader:
        if self._user_by_id is None:
            self._user_by_id = UserByIdLoader(self.request)
        return self._user_by_id

    @property
    def pipeline_by_id(self) -> PipelineByIdLoader:
        if self._pipeline_by_id is None:
            self._pipeline_by_id = PipelineByIdLoader(self.request)
        return self._pipeline_by_id

    @property
    def revision_by_id(self) -> RevisionByIdLoader:
        if self._revision_by_id is None:
            self._revision_by_id = RevisionByIdLoader(self.request)
        return self._revision_by_id

    @property
    def attachments_by_pipeline(self) -> AttachmentsByPipelineLoader:
        if self._attachments_by_pipeline is None:
            self._attachments_by_pipeline = AttachmentsByPipelineLoader(self.request)
        return self._attachments_by_pipeline

    @property
    def attachments_by_template(self) -> AttachmentsByTemplateLoader:
        if self._attachments_by_template is None:
            self._attachments_by_template = AttachmentsByTemplateLoader(self.request)
        return self._attachments_by_template

    @property
    def transformations_by_template(self) -> TransformationsByTemplateLoader:
        if self._transformations_by_template is None:
            self._transformations_by_template = TransformationsByTemplateLoader(
                self.request
            )
        return self._transformations_by_template

    @property
    def builds_by_pipeline(self) -> BuildsByPipelineLoader:
        if self._builds_by_pipeline is None:
            self._builds_by_pipeline = BuildsByPipelineLoader(self.request)
        return self._builds_by_pipeline

    def clear(self) -> None:
        """Forget every cached row, so fields resolved after a write read what
        it wrote."""
        self._template_by_id = None
        self._revision_by_template_and_number = None
        self._user_by_id = None
        self._pipeline_by_id = None
        self._revision_by_id = None
        self._attachments_by_pipeline = None
        self._attachments_by_template = None
        self._transformations_by_template = None


@dataclass(slots=True)
class GraphQLContext:
    """The Strawberry context: the resolvers' request context, the document
    the endpoint admitted (which is what executes) and the loaders."""

    request: RequestContext
    document: DocumentNode
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.request)


Info: TypeAlias = strawberry.Info[GraphQLContext, None]
