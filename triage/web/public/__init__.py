"""Public pages: no sign-in, for victims and professionals (issue 11)."""
