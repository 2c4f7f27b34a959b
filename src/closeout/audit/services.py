"""The audit chain's services, in one import path: appending (`chain`), checkpoints of its head
outside the database (`checkpoints`) and verification (`verify`)."""

from closeout.audit.chain import (
    CANONICAL_TIME_FORMAT,
    COPY_THRESHOLD,
    GENESIS_HASH,
    LEGACY_KEY_ID,
    SYSTEM_ACTOR,
    AuditEntry,
    audit_append,
    audit_record,
    canonical_json,
    canonical_payload,
    event_hash,
    sqlite_audit_guards_lifted,
    to_json_value,
)
from closeout.audit.checkpoints import (
    AuditCheckpoint,
    CheckpointFile,
    CheckpointResult,
    audit_chain_restart,
    audit_checkpoint_write,
    audit_checkpoints_read,
    checkpoint_file,
)
from closeout.audit.verify import ChainVerdict, audit_chain_verify

__all__ = [
    "CANONICAL_TIME_FORMAT",
    "COPY_THRESHOLD",
    "GENESIS_HASH",
    "LEGACY_KEY_ID",
    "SYSTEM_ACTOR",
    "AuditCheckpoint",
    "AuditEntry",
    "ChainVerdict",
    "CheckpointFile",
    "CheckpointResult",
    "audit_append",
    "audit_chain_restart",
    "audit_chain_verify",
    "audit_checkpoint_write",
    "audit_checkpoints_read",
    "audit_record",
    "canonical_json",
    "canonical_payload",
    "checkpoint_file",
    "event_hash",
    "sqlite_audit_guards_lifted",
    "to_json_value",
]
