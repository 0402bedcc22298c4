"""Integration templates and their immutable revisions.

A template's config changes only by writing a new revision. Revisions refer
to their template and author, and templates to their latest revision, through
the request's loaders, so a page of templates costs the same few SELECTs
whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import strawberry

from signal_admin.errors import DomainError, NotFound
from signal_admin.persistence.models import IntegrationRevision as RevisionRow
from signal_admin.persistence.models import IntegrationTemplate as TemplateRow
from signal_admin.persistence.models import User as UserRow
from signal_admin.resolvers import secrets, templates
from signal_admin.schema.auth import User
from signal_admin.schema.catalog import CatalogVendor
from signal_admin.schema.context import GraphQLContext, Info
from signal_admin.schema.errors import UserError, field_path, user_errors_or_raise
from signal_admin.schema.execution import batched, once_per_row, one
from signal_admin.schema.fields import mutation_field, query_field
from signal_admin.schema.inputs import expected_version, filters_of, given
from signal_admin.schema.loaders import RevisionKey, TemplateKey, UserKey
from signal_admin.schema.pagination import (
    After,
    Connection,
    First,
    edges_of,
    page_info_of,
    page_size,
)
from signal_admin.schema.scalars import JSON
from signal_admin.schema.users import user_as_seen_by

if TYPE_CHECKING:
    from signal_admin.schema.pipeline_integrations import PipelineIntegration


@strawberry.enum(description="Where a revision's events are sent from.")
class DeliveryMode(Enum):
    SERVER_SIDE = strawberry.enum_value(
        "server_side", description="From the server, after collection."
    )
    CLIENT_SIDE = strawberry.enum_value(
        "client_side", description="From the visitor's browser or app."
    )
    HYBRID = strawberry.enum_value(
        "hybrid", description="Partly from the client, partly from the server."
    )


async def catalog_vendors_of(
    context: GraphQLContext, templates: Sequence[IntegrationTemplate]
) -> list[CatalogVendor | None]:
    """The catalog vendors the templates were installed from, from memory."""
    shipped = context.request.services.catalog
    vendors: list[CatalogVendor | None] = []
    for template in templates:
        key = template.catalog_vendor_key
        vendor = None if key is None else shipped.get(key)
        vendors.append(None if vendor is None else CatalogVendor.from_model(vendor))
    return vendors


async def latest_revisions(
    context: GraphQLContext, templates: Sequence[TemplateRow]
) -> list[IntegrationRevision]:
    """The templates' newest revisions."""
    return await _revisions_numbered(
        context, [RevisionKey(t.org_id, t.id, t.latest_revision) for t in templates]
    )


async def latest_revisions_of_templates(
    context: GraphQLContext, templates: Sequence[IntegrationTemplate]
) -> list[IntegrationRevision]:
    return await _revisions_numbered(
        context,
        [RevisionKey(t.org_id, t.id, t.latest_revision_number) for t in templates],
    )


async def _revisions_numbered(
    context: GraphQLContext, keys: Sequence[RevisionKey]
) -> list[IntegrationRevision]:
    rows = await context.loaders.revision_by_template_and_number.load_many(keys)
    found = []
    for key, row in zip(keys, rows, strict=True):
        if row is None:
            raise NotFound.of("Revision", f"{key.template_id}#{key.revision_number}")
        found.append(row)
    return once_per_row(found, IntegrationRevision.from_row)


async def attachments_of(
    context: GraphQLContext, templates: Sequence[IntegrationTemplate]
) -> list[list[PipelineIntegration]]:
    # Imported here: that module builds on this one.
    from signal_admin.schema.pipeline_integrations import attachments_of_templates

    keys = [TemplateKey(template.org_id, template.id) for template in templates]
    return await attachments_of_templates(context, keys)


async def configs_of(
    context: GraphQLContext, revisions: Sequence[IntegrationRevision]
) -> list[JSON]:
    """The revisions' configs with every secret answered as ***."""
    return [JSON(secrets.masked(revision.stored_config)) for revision in revisions]


class Authored(Protocol):
    """Something written by a member: a revision, a collector build."""

    @property
    def org_id(self) -> str: ...

    @property
    def created_by_id(self) -> str | None: ...


async def authors_of(
    context: GraphQLContext, written: Sequence[Authored]
) -> list[User | None]:
    """Who wrote each one, as the caller may see them; null for one without
    an author or whose author is gone."""
    keys = [UserKey(w.org_id, w.created_by_id) for w in written if w.created_by_id]
    loaded = iter(await context.loaders.user_by_id.load_many(keys))
    rows = [next(loaded) if each.created_by_id else None for each in written]

    def author(row: UserRow | None) -> User | None:
        if row is None or row.deleted_at is not None:
            return None
        return user_as_seen_by(context, row)

    return once_per_row(rows, author)


async def templates_of_revisions(
    context: GraphQLContext, revisions: Sequence[IntegrationRevision]
) -> list[IntegrationTemplate]:
    keys = [TemplateKey(r.org_id, r.template_id) for r in revisions]
    return await templates_by_key(context, keys)


async def templates_by_key(
    context: GraphQLContext, keys: Sequence[TemplateKey]
) -> list[IntegrationTemplate]:
    """The templates `keys` name, through the request's loader."""
    rows = await context.loaders.template_by_id.load_many(keys)
    found = []
    for key, row in zip(keys, rows, strict=True):
        if row is None:
            raise NotFound.of("Integration template", key.template_id)
        found.append(row)
    return once_per_row(found, IntegrationTemplate.from_row)


@strawberry.type(description="A vendor configuration the organisation keeps.")
class IntegrationTemplate:
    id: strawberry.ID = strawberry.field(description="The template's id (tmpl_…).")
    name: str = strawberry.field(description="Unique in the organisation.")
    vendor: str = strawberry.field(description="The vendor's key, e.g. ga4.")
    description: str | None = strawberry.field(description="What it is for.")
    catalog_variant_key: str | None = strawberry.field(
        description="The catalog variant it was installed from; null if hand-made."
    )
    secret_fields: list[str] = strawberry.field(
        description="The config keys stored encrypted and answered as ***."
    )
    version: int = strawberry.field(
        description="1, then one more on every change; pass it as expectedVersion."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="The last change.")
    org_id: strawberry.Private[str]
    catalog_vendor_key: strawberry.Private[str | None]
    latest_revision_number: strawberry.Private[int]

    @classmethod
    def from_row(cls, template: TemplateRow) -> IntegrationTemplate:
        return cls(
            id=strawberry.ID(template.id),
            name=template.name,
            vendor=template.vendor,
            description=template.description,
            catalog_variant_key=template.catalog_variant_key,
            secret_fields=list(template.secret_fields),
            version=template.version,
            created_at=template.created_at,
            updated_at=template.updated_at,
            org_id=template.org_id,
            catalog_vendor_key=template.catalog_vendor_key,
            latest_revision_number=template.latest_revision,
        )

    @query_field(
        description="The catalog vendor it was installed from; null if hand-made."
    )
    @batched(catalog_vendors_of)
    async def catalog_vendor(self, info: Info) -> CatalogVendor | None:
        return await one(catalog_vendors_of, info.context, self)

    @query_field(description="The revision with the highest number.")
    @batched(latest_revisions_of_templates)
    async def latest_revision(self, info: Info) -> IntegrationRevision:
        return await one(latest_revisions_of_templates, info.context, self)

    @query_field(description="The template's revisions, newest first.")
    async def revisions(
        self,
        info: Info,
        first: First = 50,
        after: After = strawberry.UNSET,
    ) -> IntegrationRevisionConnection:
        page = await templates.list_revisions(
            info.context.request, self.id, cursor=after or None, limit=page_size(first)
        )
        total = self.latest_revision_number

        async def count() -> int:
            # Numbers run 1, 2, … without gaps and revisions are never deleted
            # alone, so the latest number is the count.
            return total

        return IntegrationRevisionConnection(
            edges=edges_of(page, IntegrationRevision.from_row),
            page_info=page_info_of(page),
            count=count,
        )

    @query_field(
        description="Where it is attached: one attachment per pipeline that "
        "uses it, each with its pinned revision; oldest first."
    )
    @batched(attachments_of)
    async def attachments(
        self, info: Info
    ) -> list[
        Annotated[
            PipelineIntegration,
            strawberry.lazy("signal_admin.schema.pipeline_integrations"),
        ]
    ]:
        return await one(attachments_of, info.context, self)


@strawberry.type(description="One immutable version of a template's config.")
class IntegrationRevision:
    id: strawberry.ID = strawberry.field(description="The revision's id (rev_…).")
    revision_number: int = strawberry.field(
        description="1, 2, … per template, without gaps."
    )
    delivery_mode: DeliveryMode = strawberry.field(
        description="Where its events are sent from."
    )
    change_summary: str | None = strawberry.field(
        description="What changed, in the author's words."
    )
    created_at: datetime = strawberry.field(description="When it was written.")
    org_id: strawberry.Private[str]
    template_id: strawberry.Private[str]
    created_by_id: strawberry.Private[str | None]
    stored_config: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_row(cls, revision: RevisionRow) -> IntegrationRevision:
        return cls(
            id=strawberry.ID(revision.id),
            revision_number=revision.revision_number,
            stored_config=revision.config,
            delivery_mode=DeliveryMode(revision.delivery_mode),
            change_summary=revision.change_summary,
            created_at=revision.created_at,
            org_id=revision.org_id,
            template_id=revision.template_id,
            created_by_id=revision.created_by,
        )

    @query_field(description="The mapping document; secret fields read ***.")
    @batched(configs_of)
    async def config(self, info: Info) -> JSON:
        return await one(configs_of, info.context, self)

    @query_field(description="Who wrote it; null if that user is gone.")
    @batched(authors_of)
    async def created_by(self, info: Info) -> User | None:
        return await one(authors_of, info.context, self)

    @query_field(description="The template it belongs to.")
    @batched(templates_of_revisions)
    async def template(self, info: Info) -> IntegrationTemplate:
        return await one(templates_of_revisions, info.context, self)


@strawberry.type(description="A page of integration templates, oldest first.")
class IntegrationTemplateConnection(Connection[IntegrationTemplate]):
    pass


@strawberry.type(description="A page of a template's revisions, newest first.")
class IntegrationRevisionConnection(Connection[IntegrationRevision]):
    pass


@strawberry.input(description="Which templates to list; every condition must hold.")
class TemplateFilter:
    vendor: str | None = strawberry.field(
        default=strawberry.UNSET, description="Only templates of this vendor key."
    )
    q: str | None = strawberry.field(
        default=strawberry.UNSET, description="Text the name contains, ignoring case."
    )


@strawberry.input(
    description="A catalog vendor to install as a template with its revision 1. "
    "Every field but vendorKey is optional in the schema, so the service can "
    "report every problem at once in userErrors."
)
class InstallCatalogIntegrationInput:
    vendor_key: str = strawberry.field(description="The catalog vendor, e.g. ga4.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters; unique."
    )
    variant_key: str | None = strawberry.field(
        default=strawberry.UNSET, description="The variant to start from; default."
    )
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="Connection fields and mapping changes, merged over the "
        "variant's default config.",
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="What it is for."
    )


@strawberry.input(
    description="A hand-made template and its revision 1. Only name and vendor "
    "are required; every problem is reported at once in userErrors."
)
class CreateIntegrationTemplateInput:
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters; unique."
    )
    vendor: str | None = strawberry.field(
        default=strawberry.UNSET, description="A vendor key: a-z, 0-9 and _."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="What it is for."
    )
    secret_fields: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="The config keys to store encrypted; none when left out.",
    )
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="The mapping document; {} when left out."
    )
    delivery_mode: DeliveryMode | None = strawberry.field(
        default=strawberry.UNSET, description="Where events are sent from; SERVER_SIDE."
    )


@strawberry.input(
    description="A change to a template's name or description; its config "
    "changes by revision."
)
class UpdateIntegrationTemplateInput:
    id: strawberry.ID = strawberry.field(description="The template to change.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse the change unless the template is at this version.",
    )
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters; unique."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="What it is for; null clears it."
    )


@strawberry.input(description="The template to delete, with its revisions.")
class DeleteIntegrationTemplateInput:
    id: strawberry.ID = strawberry.field(description="The template to delete.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Refuse unless the template is at this version.",
    )
    cascade: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Also detach it from the pipelines that use it; false.",
    )


@strawberry.input(
    description="A template's next revision. A secret field sent as *** keeps "
    "the previous revision's value."
)
class CreateIntegrationRevisionInput:
    template_id: strawberry.ID = strawberry.field(description="The template.")
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="The whole mapping document."
    )
    delivery_mode: DeliveryMode | None = strawberry.field(
        default=strawberry.UNSET, description="Where events are sent from; SERVER_SIDE."
    )
    change_summary: str | None = strawberry.field(
        default=strawberry.UNSET, description="What changed, up to 2000 characters."
    )
    base_revision_number: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="The revision the change was made to; refused with "
        "REVISION_CONFLICT unless it is still the latest.",
    )


@strawberry.type(description="The result of installCatalogIntegration.")
class InstallCatalogIntegrationPayload:
    template: IntegrationTemplate | None = strawberry.field(
        default=None, description="The new template; null on failure."
    )
    revision: IntegrationRevision | None = strawberry.field(
        default=None, description="Its revision 1; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of createIntegrationTemplate.")
class CreateIntegrationTemplatePayload:
    template: IntegrationTemplate | None = strawberry.field(
        default=None, description="The new template; null on failure."
    )
    revision: IntegrationRevision | None = strawberry.field(
        default=None, description="Its revision 1; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of updateIntegrationTemplate.")
class UpdateIntegrationTemplatePayload:
    template: IntegrationTemplate | None = strawberry.field(
        default=None, description="The template as changed; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


@strawberry.type(description="The result of deleteIntegrationTemplate.")
class DeleteIntegrationTemplatePayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the deleted template; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="Why it could not be deleted."
    )


@strawberry.type(description="The result of createIntegrationRevision.")
class CreateIntegrationRevisionPayload:
    revision: IntegrationRevision | None = strawberry.field(
        default=None, description="The new revision; null on failure."
    )
    user_errors: list[UserError] = strawberry.field(
        default_factory=list, description="What to fix in the input."
    )


def input_path(field: str) -> list[str]:
    """Where a problem sits in a template input. Input names are camel-cased
    (`variant_key` → `["variantKey"]`); below `config` the keys are the
    mapping document's own and stay as written (`config.api_secret` →
    `["config", "api_secret"]`), since that is how the client sends them."""
    name, _, rest = field.partition(".")
    if name == "config" and rest:
        return ["config", *rest.split(".")]
    return field_path(field)


def template_user_errors(error: DomainError) -> list[UserError]:
    """`user_errors_or_raise`, with paths that keep config keys as written."""
    if error.user_fixable and error.details:
        return [
            UserError(
                field=input_path(problem.field),
                code=problem.code,
                message=problem.message,
            )
            for problem in error.details
        ]
    return user_errors_or_raise(error)


@strawberry.type
class TemplatesQuery:
    @query_field(description="One integration template; null if none.")
    async def integration_template(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="Its id.")],
    ) -> IntegrationTemplate | None:
        try:
            row = await templates.get_template(info.context.request, id)
        except NotFound:
            return None
        return IntegrationTemplate.from_row(row)

    @query_field(description="The organisation's integration templates, oldest first.")
    async def integration_templates(
        self,
        info: Info,
        first: First = 50,
        after: After = strawberry.UNSET,
        filter: Annotated[
            TemplateFilter | None,
            strawberry.argument(description="Which templates to list."),
        ] = strawberry.UNSET,
    ) -> IntegrationTemplateConnection:
        filters = filters_of(templates.TemplateFilter, filter)
        ctx = info.context.request
        page = await templates.list_templates(
            ctx, filters, cursor=after or None, limit=page_size(first)
        )
        loader = info.context.loaders.template_by_id
        for row in page.items:
            loader.prime(TemplateKey(row.org_id, row.id), row)
        return IntegrationTemplateConnection(
            edges=edges_of(page, IntegrationTemplate.from_row),
            page_info=page_info_of(page),
            count=lambda: templates.count_templates(ctx, filters),
        )


@strawberry.type
class TemplatesMutation:
    @mutation_field(
        description="Install a catalog vendor as a template with its revision 1."
    )
    async def install_catalog_integration(
        self,
        info: Info,
        input: Annotated[
            InstallCatalogIntegrationInput,
            strawberry.argument(description="The vendor and its connection."),
        ],
    ) -> InstallCatalogIntegrationPayload | None:
        try:
            created = await templates.install_from_catalog(
                info.context.request,
                input.vendor_key,
                given(input, exclude=("vendor_key",)),
            )
        except DomainError as error:
            return InstallCatalogIntegrationPayload(
                user_errors=template_user_errors(error)
            )
        return InstallCatalogIntegrationPayload(
            template=IntegrationTemplate.from_row(created.template),
            revision=IntegrationRevision.from_row(created.revision),
        )

    @mutation_field(description="Create a hand-made template with its revision 1.")
    async def create_integration_template(
        self,
        info: Info,
        input: Annotated[
            CreateIntegrationTemplateInput,
            strawberry.argument(description="The template."),
        ],
    ) -> CreateIntegrationTemplatePayload | None:
        try:
            created = await templates.create_template(
                info.context.request, given(input)
            )
        except DomainError as error:
            return CreateIntegrationTemplatePayload(
                user_errors=template_user_errors(error)
            )
        return CreateIntegrationTemplatePayload(
            template=IntegrationTemplate.from_row(created.template),
            revision=IntegrationRevision.from_row(created.revision),
        )

    @mutation_field(description="Change a template's name or description.")
    async def update_integration_template(
        self,
        info: Info,
        input: Annotated[
            UpdateIntegrationTemplateInput,
            strawberry.argument(description="The change."),
        ],
    ) -> UpdateIntegrationTemplatePayload | None:
        try:
            row = await templates.update_template(
                info.context.request,
                input.id,
                given(input, exclude=("id", "expected_version")),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return UpdateIntegrationTemplatePayload(
                user_errors=template_user_errors(error)
            )
        return UpdateIntegrationTemplatePayload(
            template=IntegrationTemplate.from_row(row)
        )

    @mutation_field(description="Delete a template with its revisions.")
    async def delete_integration_template(
        self,
        info: Info,
        input: Annotated[
            DeleteIntegrationTemplateInput,
            strawberry.argument(description="The template."),
        ],
    ) -> DeleteIntegrationTemplatePayload | None:
        try:
            await templates.delete_template(
                info.context.request,
                input.id,
                cascade=bool(input.cascade),
                expected_version=expected_version(input.expected_version),
            )
        except DomainError as error:
            return DeleteIntegrationTemplatePayload(
                user_errors=template_user_errors(error)
            )
        return DeleteIntegrationTemplatePayload(deleted_id=input.id)

    @mutation_field(
        description="Write a template's next revision; *** keeps a secret's value."
    )
    async def create_integration_revision(
        self,
        info: Info,
        input: Annotated[
            CreateIntegrationRevisionInput,
            strawberry.argument(description="The revision."),
        ],
    ) -> CreateIntegrationRevisionPayload | None:
        try:
            row = await templates.create_revision(
                info.context.request,
                input.template_id,
                given(input, exclude=("template_id",)),
            )
        except DomainError as error:
            return CreateIntegrationRevisionPayload(
                user_errors=template_user_errors(error)
            )
        return CreateIntegrationRevisionPayload(
            revision=IntegrationRevision.from_row(row)
        )
