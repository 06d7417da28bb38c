"""Apps that share the user admin with django_charon_sessions.

Used by tests/test_admin_neighbours.py, each combination in a process of its
own (``python -m tests.neighbours.probe``): the order of ``INSTALLED_APPS``
matters only while Django starts.
"""
