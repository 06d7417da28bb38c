"""Another app that adds a feature ("Impersonate") to the user admin at start-up.

The default config wraps the registered user admin in a subclass, as
django-hijack's admin integration does; ``ReplacingConfig`` registers one of
its own, whatever was registered before.
"""
