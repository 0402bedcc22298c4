"""signal-admin: the management API of the Signal event-collection platform."""

__version__ = "0.1.0"
