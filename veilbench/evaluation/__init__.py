"""Evaluation: how well a protection hides a face, and what it costs in image quality."""
