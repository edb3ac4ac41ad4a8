"""Dash page layouts only (no callbacks: those live in callbacks/, one module per page)."""
