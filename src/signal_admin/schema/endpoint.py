"""Temporary: the GraphQL endpoint is being built."""

from fastapi import APIRouter

from signal_admin.config import Settings


def graphql_router(settings: Settings) -> APIRouter:
    return APIRouter()
