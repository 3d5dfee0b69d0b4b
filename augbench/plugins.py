"""Other installed packages extend augbench through the entry-point group ``augbench.plugins``.

A plugin package declares in its ``pyproject.toml``::

    [project.entry-points."augbench.plugins"]
    mine = "my_package.augbench_plugin"

and the ``augbench`` command imports that module (or calls the function an
entry point names, ``"my_package:register"``) before it parses flags or reads
an experiment. Importing it registers what it adds, each with the registry of
its kind, exactly as augbench's own files do:

- methods: ``@register_method`` (``augbench.methods``);
- augmentation ops: ``@register_op`` (``augbench.augment``);
- recipes: ``add_recipe_folder(path)`` (``augbench.augment.recipe``), a folder of recipe YAML files;
- data sets: ``@register_dataset`` (``augbench.data``);
- learning-rate schedules: ``@register_schedule`` (``augbench.schedules``);
- DLB replay mixing policies: ``@register_replay_mix`` (``augbench.augment.mixing``).

Flags, experiment files and the leaderboard then accept the new names like
augbench's own. Programs that use augbench as a library call
:func:`load_plugins` themselves.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from augbench.errors import UsageError

GROUP = "augbench.plugins"
_loaded: list[str] = []
_done = False


def load_plugins() -> list[str]:
    """Imports (or calls) every installed ``augbench.plugins`` entry point once; returns their names.

    Raises UsageError naming the plugin when one fails to load.
    """
    global _done
    if _done:
        return list(_loaded)
    _done = True
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            target = entry.load()
            if callable(target):
                target()
        except Exception as err:
            raise UsageError(f"plugin '{entry.name}' ({entry.value}, entry point group {GROUP}) failed to load: "
                             f"{type(err).__name__}: {err}") from err
        _loaded.append(entry.name)
    return list(_loaded)
