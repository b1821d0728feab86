"""Checks that our networks compute the official functions: ``python -m hawor.compat verify DIR``."""
