"""evaluation (see DESIGN §2)."""
