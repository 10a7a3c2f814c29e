"""Proposals: the agent's file changes as reviewable hunks, applied through the editor."""

from lsp_agent.edits.diff import FileChange, Hunk, apply_selected, make_file_change, target_text
from lsp_agent.edits.merge import Conflict, MergeResult, rebase
from lsp_agent.edits.proposal import (
    ApplicationPlan,
    FilePlan,
    Proposal,
    ReviewDecision,
    qualify,
)
from lsp_agent.edits.workspace_edit import (
    ANNOTATION_ID,
    EditTarget,
    WorkspaceEditError,
    apply_text_edits,
    apply_workspace_edit_to_disk,
    build_workspace_edit,
    text_edits_between,
    uri_to_path,
)

__all__ = [
    "ANNOTATION_ID",
    "ApplicationPlan",
    "Conflict",
    "EditTarget",
    "FileChange",
    "FilePlan",
    "Hunk",
    "MergeResult",
    "Proposal",
    "ReviewDecision",
    "WorkspaceEditError",
    "apply_selected",
    "apply_text_edits",
    "apply_workspace_edit_to_disk",
    "build_workspace_edit",
    "make_file_change",
    "qualify",
    "rebase",
    "target_text",
    "text_edits_between",
    "uri_to_path",
]
