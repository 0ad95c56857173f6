"""training (see DESIGN §2)."""
