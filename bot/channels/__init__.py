"""Rasa input channels of kefu (named in credentials.yml by module path)."""
