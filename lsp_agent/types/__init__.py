"""Plain shared types at the bottom of the layers: events, editor context, file edits,
permission answers and modes, JSON helpers. Nothing here imports anything else of ours."""
