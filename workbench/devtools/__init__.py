"""Maintenance commands for the project itself (not part of serving)."""
