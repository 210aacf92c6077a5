"""Leaf utilities used by every layer (image messages, metrics, paths, progress); they import
nothing else from the package."""
