"""``__all__`` names every public thing a package exports, and nothing else."""

import types

import server


def test_server_all_is_complete() -> None:
    public = {
        name
        for name, value in vars(server).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(server.__all__) == public
