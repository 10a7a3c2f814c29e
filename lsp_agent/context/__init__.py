"""What the model sees and what it costs: prompt layers, memory files, token counts,
compaction and prices."""
