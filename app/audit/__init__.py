"""The audit trail: one record per tool call, model call and run, appended where `audit:` says."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.audit.trail import AuditTrail
    from app.config.loader import LoadedConfig


def open_trail(loaded: LoadedConfig, user: str | None, session: str | None, source: str = "cli") -> AuditTrail | None:
    """The config's audit trail, opened for writing (AuditUnwritable if it cannot be); None without `audit:`."""
    config = loaded.config.audit
    if config is None:
        return None
    from app.audit.trail import AuditTrail, audit_path, caller_identity
    from app.config.redact import known_secrets
    from app.state import state_dir

    path = audit_path(config, loaded.resolve_path, state_dir())
    return AuditTrail(config, path, caller_identity(user), session, known_secrets(loaded), source)
