"""The operations of the service, one module per domain, shared by the REST and
GraphQL faces. Each reads as its steps: authorise, load, validate, write with
its audit entries in one transaction, commit, then after-commit effects."""
