"""Sessions that last: transcripts, the session index, prompt history, checkpoints.

Self-contained: nothing here depends on the agent, the server or the model client, so the
session layer can wire it in where it fits. See docs/sessions.md for the file formats, the
crash guarantees and what a checkpoint does and does not capture.
"""

# The names below load with their modules on first use (PEP 562): a server that only answers
# initialize, or a part that needs one small helper (layout), does not pay for the whole store.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsp_agent.store import entries
    from lsp_agent.store.blobs import BlobError, BlobStore, GcReport
    from lsp_agent.store.catalog import SessionNotFound, SessionPage, SessionSummary, Store
    from lsp_agent.store.checkpoints import (
        CaptureRules,
        Checkpointer,
        FileTarget,
        RewindPlan,
        Unrestorable,
        plan_rewind,
        read_target,
    )
    from lsp_agent.store.layout import InvalidSessionId
    from lsp_agent.store.reader import (
        CostSummary,
        HistoryPage,
        TranscriptReader,
        TranscriptVersionError,
        aload_transcript,
        load_transcript,
    )
    from lsp_agent.store.redact import Redactor
    from lsp_agent.store.retention import RetentionPolicy, RetentionReport
    from lsp_agent.store.writer import SessionInUse, TranscriptWriter, WriterState, open_writer

_HOMES = {
    "entries": "", "BlobError": "blobs", "BlobStore": "blobs", "GcReport": "blobs",
    "SessionNotFound": "catalog", "SessionPage": "catalog", "SessionSummary": "catalog",
    "Store": "catalog", "CaptureRules": "checkpoints", "Checkpointer": "checkpoints",
    "FileTarget": "checkpoints", "RewindPlan": "checkpoints", "Unrestorable": "checkpoints",
    "plan_rewind": "checkpoints", "read_target": "checkpoints", "InvalidSessionId": "layout",
    "CostSummary": "reader", "HistoryPage": "reader", "TranscriptReader": "reader",
    "TranscriptVersionError": "reader", "aload_transcript": "reader",
    "load_transcript": "reader", "Redactor": "redact", "RetentionPolicy": "retention",
    "RetentionReport": "retention", "SessionInUse": "writer", "TranscriptWriter": "writer",
    "WriterState": "writer", "open_writer": "writer",
}


def __getattr__(name: str) -> Any:
    import importlib

    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{home or name}")
    value = module if not home else getattr(module, name)
    globals()[name] = value
    return value


__all__ = [
    "BlobError", "BlobStore", "CaptureRules", "Checkpointer", "CostSummary", "FileTarget",
    "GcReport", "HistoryPage", "InvalidSessionId", "Redactor", "RetentionPolicy",
    "RetentionReport", "RewindPlan",
    "SessionInUse", "SessionNotFound", "SessionPage", "SessionSummary", "Store",
    "TranscriptReader", "TranscriptVersionError", "TranscriptWriter", "Unrestorable",
    "WriterState", "aload_transcript", "entries", "load_transcript", "open_writer",
    "plan_rewind", "read_target",
]
