"""HTI trade ideas (REST history + SSE stream) -> hti.ideas.v1."""
