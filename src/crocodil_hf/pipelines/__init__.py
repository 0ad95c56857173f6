"""pipelines (see DESIGN §2)."""
