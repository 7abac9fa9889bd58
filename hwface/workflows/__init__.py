"""Workflows: the sequences of stage calls that commands run (above every stage package; see DESIGN.md)."""
