"""veilbench's built-in plugins: registered through the same entry points as outside packages."""
