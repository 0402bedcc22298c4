"""The GraphQL face: the Strawberry schema, one module per domain, loaders and
the GraphQL-over-HTTP endpoint."""
