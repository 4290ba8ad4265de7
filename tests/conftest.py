"""Fixtures shared by the whole test suite."""

import pytest


@pytest.fixture
def count_calls(monkeypatch):
    """``count_calls(module, name)`` wraps ``module.name`` and returns the list of the
    positional arguments of each call (to test that work is done once, or not at all)."""

    def wrap(module, name):
        calls = []
        real = getattr(module, name)

        def counted(*args, **kwargs):
            calls.append(args)
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
        return calls

    return wrap
