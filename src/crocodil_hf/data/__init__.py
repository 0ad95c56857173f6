"""data (see DESIGN §2)."""
