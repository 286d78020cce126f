"""The table of commands, all loaded on demand (validate, build, diagram, train, ...).

Each is registered by name and import path, and imported only when it runs (or ``--help`` lists
it), so that ``resnet-gen validate`` does not load the emitter, graphviz or torch, and ``build``
does not load the U-Net modules or the parallel checker: a path names a ``click.Command`` or a
function without arguments that returns one.
"""

from __future__ import annotations

from .lazy_group import LazyGroup

COMMANDS = {
    "validate": "resnet_gen.cli.validate_command:validate",
    "info": "resnet_gen.cli.commands:info",
    "list": "resnet_gen.cli.commands:list_specs",
    "schema": "resnet_gen.cli.commands:schema",
    "diagram": "resnet_gen.cli.diagram_command:command",
    "build": "resnet_gen.cli.build_command:command",
    "weights": "resnet_gen.cli.backbone_commands:weights",
    "export": "resnet_gen.cli.backbone_commands:export",
    "new": "resnet_gen.cli.new_command:new",
    "diff": "resnet_gen.cli.diff_command:diff",
    "gallery": "resnet_gen.cli.gallery_command:gallery",
    "train": "resnet_gen.cli.train_commands:train",
    "evaluate": "resnet_gen.cli.train_commands:evaluate",
    "plot": "resnet_gen.cli.train_commands:plot",
    "analyze": "resnet_gen.cli.analyze_commands:analyze",
    "experiment": "resnet_gen.cli.experiment_commands:experiment",
}


def register(cli: LazyGroup) -> None:
    """Add every optional command to ``cli``."""
    for name, import_path in COMMANDS.items():
        cli.add_lazy_command(name, import_path)
