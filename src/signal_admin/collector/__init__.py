"""The JavaScript collector sites load, and the build that configures it."""

from signal_admin.collector.script import Script, ScriptSettings, render

__all__ = ["Script", "ScriptSettings", "render"]
