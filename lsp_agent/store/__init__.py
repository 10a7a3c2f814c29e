"""Sessions that last: transcripts, the session index, prompt history, checkpoints.

Self-contained: nothing here depends on the agent, the server or the model client, so the
session layer can wire it in where it fits. See docs/sessions.md for the file formats, the
crash guarantees and what a checkpoint does and does not capture.
"""

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

__all__ = [
    "BlobError", "BlobStore", "CaptureRules", "Checkpointer", "CostSummary", "FileTarget",
    "GcReport", "HistoryPage", "InvalidSessionId", "Redactor", "RetentionPolicy",
    "RetentionReport", "RewindPlan",
    "SessionInUse", "SessionNotFound", "SessionPage", "SessionSummary", "Store",
    "TranscriptReader", "TranscriptVersionError", "TranscriptWriter", "Unrestorable",
    "WriterState", "aload_transcript", "entries", "load_transcript", "open_writer",
    "plan_rewind", "read_target",
]
