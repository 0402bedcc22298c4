"""Tokens, passwords, permissions and encryption at rest."""
