"""A project's own accounts app: its user admin puts the mixin in its bases."""
