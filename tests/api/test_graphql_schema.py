"""The schema as an artefact: the committed SDL matches the code, and every
part of it is described."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
)

from signal_admin.schema.export import sdl
from signal_admin.schema.root import graphql_schema

COMMITTED_SDL = Path(__file__).parents[2] / "schema.graphql"


def test_the_committed_schema_matches_the_code() -> None:
    committed = COMMITTED_SDL.read_text(encoding="utf-8")

    assert committed == sdl(), (
        "schema.graphql differs from the schema the code builds; regenerate it "
        "from the repository root with `python -m signal_admin.schema.export` "
        "and review the difference."
    )


def test_every_type_field_argument_and_value_is_described() -> None:
    undescribed = []

    for name, named_type in graphql_schema().type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Boolean", "ID"}:
            continue
        if not named_type.description:
            undescribed.append(name)
        if isinstance(named_type, GraphQLEnumType):
            undescribed += [
                f"{name}.{value_name}"
                for value_name, value in named_type.values.items()
                if not value.description
            ]
        if isinstance(
            named_type,
            GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType,
        ):
            for field_name, field in named_type.fields.items():
                if not field.description:
                    undescribed.append(f"{name}.{field_name}")
                undescribed += [
                    f"{name}.{field_name}({argument_name})"
                    for argument_name, argument in getattr(field, "args", {}).items()
                    if not argument.description
                ]

    assert undescribed == []
