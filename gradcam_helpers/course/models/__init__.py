"""Small trained models for the lessons, loaded from a cache or trained deterministically."""
