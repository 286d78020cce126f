"""What the console script does before a command runs: pydantic's plugin loader gets a stand-in
``importlib.metadata`` when plugins are off, so a command's start does not pay for the email
package, and nothing else changes (resnet_gen_entry._defer_plugin_metadata)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, cli_env


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = cli_env()
    environment.pop("PYDANTIC_DISABLE_PLUGINS", None)
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120
    )


_INFO = (
    "import sys\nimport resnet_gen_entry\n"
    "sys.argv = ['resnet-gen', 'info', 'specs/resnet18.yaml']\n"
    "try:\n    resnet_gen_entry.main()\n"
    "finally:\n    print('metadata' if 'importlib.metadata' in sys.modules else 'no metadata', file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    ("setting", "loaded"), [(None, False), ("__all__", False), ("true", False), ("some_plugin", True)]
)
def test_a_command_imports_the_metadata_only_where_pydantic_would_read_it(setting: str | None, loaded: bool) -> None:
    """With plugins off (the script's default, or the user's own "off") info never imports
    importlib.metadata; a setting that names plugins leaves pydantic to scan them as usual."""
    done = _run(_INFO, **({} if setting is None else {"PYDANTIC_DISABLE_PLUGINS": setting}))
    assert done.returncode == 0, done.stderr
    assert "params: 11,689,512" in done.stdout
    assert done.stderr == ("metadata\n" if loaded else "no metadata\n")


def test_the_stand_in_hands_a_call_to_the_real_module_and_leaves_no_trace() -> None:
    code = (
        "import sys\nimport resnet_gen_entry\n"
        "resnet_gen_entry._defer_plugin_metadata()\n"
        "from pydantic.plugin import _loader\n"
        "assert 'importlib.metadata' not in sys.modules\n"
        "names = sorted(point.name for point in _loader.entry_points(group='console_scripts'))\n"
        "import importlib.metadata as real\n"
        "assert hasattr(real, 'Distribution'), 'the stand-in stayed in sys.modules'\n"
        "assert names == sorted(point.name for point in real.entry_points(group='console_scripts'))\n"
        "assert 'resnet-gen' in names, names\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr


def test_a_loader_that_wants_more_than_entry_points_is_imported_the_plain_way() -> None:
    """Another pydantic might import more names from importlib.metadata: the loader is then
    imported again against the real module, not left half-made."""
    code = (
        "import importlib.abc, importlib.util, sys\n"
        "class Loader(importlib.abc.Loader):\n"
        "    def create_module(self, spec): return None\n"
        "    def exec_module(self, module):\n"
        "        exec('from importlib.metadata import entry_points, version', module.__dict__)\n"
        "class Finder(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'pydantic.plugin._loader':\n"
        "            return importlib.util.spec_from_loader(name, Loader())\n"
        "sys.meta_path.insert(0, Finder())\n"
        "import resnet_gen_entry\n"
        "resnet_gen_entry._defer_plugin_metadata()\n"
        "assert 'pydantic.plugin._loader' not in sys.modules\n"
        "assert 'importlib.metadata' not in sys.modules\n"
        "import pydantic, pydantic.plugin._loader as loader\n"
        "assert loader.version('pydantic') == pydantic.VERSION\n"
    )
    done = _run(code)
    assert done.returncode == 0, done.stderr
