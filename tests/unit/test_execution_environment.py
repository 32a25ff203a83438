"""execution-environment.yml turns into a build context that installs this collection.

``ansible-builder create`` (no container runtime, no network) writes the Containerfile and the
context from a copy of the definition and of ee/, next to the tarball ``ansible-galaxy collection
build`` makes of this checkout, the layout docs/fleets.md tells a platform team to use. The tests
read what the image build would get: the base image, the ansible-core range, the galaxy stage's
requirement, and that the requirement installs the collection, offline, from inside the context.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

# Skipped only where ansible-builder is not installed at all (the controller matrix's slim venvs);
# an installed but broken ansible-builder fails here instead of hiding behind a skip.
if importlib.util.find_spec("ansible_builder") is None:
    pytest.skip("ansible-builder is not installed; requirements-test.txt lists it", allow_module_level=True)
importlib.import_module("ansible_builder")
specifiers = importlib.import_module("packaging.specifiers")  # a dependency of ansible-builder

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "execution-environment.yml"
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"


def run(argv, cwd, home):
    """Run a tool with its state (ansible's home, caches) kept in ``home``; fail with its output.
    The caller's collection paths are dropped (make points them at this checkout, which
    ansible-galaxy would take for the collection already installed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_COLLECTIONS_PATH")}
    env.update(HOME=str(home), ANSIBLE_HOME=str(home / ".ansible"), ANSIBLE_NOCOLOR="1")
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def definition():
    return yaml.safe_load(DEFINITION.read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory, definition):
    """The workspace: the definition and ee/ copied, the tarball built into ee/collections/, and
    ``ansible-builder create`` run once. Returns (workspace, context, builder output)."""
    work = tmp_path_factory.mktemp("ee")
    home = tmp_path_factory.mktemp("ee-home")
    shutil.copy(DEFINITION, work / DEFINITION.name)
    shutil.copytree(ROOT / "ee", work / "ee", ignore=shutil.ignore_patterns("*.tar.gz"))
    run([sys.executable, "-m", "ansible.cli.galaxy", "collection", "build", "--force",
         "--output-path", str(work / "ee" / "collections"), str(ROOT)], cwd=work, home=home)
    output = run([sys.executable, "-m", "ansible_builder", "create", "-f", str(work / DEFINITION.name),
                  "-c", str(work / "context"), "--output-filename", "Containerfile", "-v", "3"], cwd=work, home=home)
    return work, work / "context", output


@pytest.fixture(scope="module")
def containerfile(built):
    path = built[1] / "Containerfile"
    assert path.is_file(), f"ansible-builder wrote no Containerfile:\n{built[2]}"
    return path.read_text()


def build_arg(containerfile, name):
    found = re.search(rf'^ARG {name}="([^"]*)"$', containerfile, re.MULTILINE)
    assert found, f"no ARG {name} in the Containerfile"
    return found.group(1)


def test_definition_is_builder_v3(definition):
    assert definition["version"] == 3


def test_base_image_is_carried_through_and_documented(definition, containerfile):
    image = definition["images"]["base_image"]["name"]
    assert build_arg(containerfile, "EE_BASE_IMAGE") == image
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert image in (ROOT / "docs" / "fleets.md").read_text(), "docs/fleets.md names a different base image"


def test_ansible_core_range_is_the_supported_one(definition, containerfile):
    wanted = definition["dependencies"]["ansible_core"]["package_pip"]
    refs = build_arg(containerfile, "ANSIBLE_INSTALL_REFS").split()
    assert wanted in refs and any(ref.startswith("ansible-runner") for ref in refs), refs
    assert "RUN $PYCMD -m pip install --no-cache-dir $ANSIBLE_INSTALL_REFS" in containerfile
    spec = specifiers.SpecifierSet(wanted[len("ansible-core"):])
    # meta/runtime.yml's lower bound, and the releases the collection is tested on and above.
    floor = re.search(r">=\s*([0-9.]+)", yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"]).group(1)
    assert floor in spec
    for version in ("2.19.0", "2.19.14", "2.20.0", "2.21.5"):
        assert version in spec, f"{wanted} excludes ansible-core {version}"
    for version in ("2.18.9", "2.19.0rc1"):
        assert version not in spec, f"{wanted} lets ansible-core {version} in"


def test_python_is_new_enough_for_that_range(definition, containerfile):
    """ansible-core 2.19 needs Python 3.11 on the controller, 2.20 and later 3.12."""
    python = definition["dependencies"]["python_interpreter"]["python_path"]
    assert build_arg(containerfile, "PYCMD") == python
    found = re.search(r"python3\.(\d+)$", python)
    assert found and int(found.group(1)) >= 12, python


def test_galaxy_stage_installs_the_collection_tarball(built, containerfile):
    work, context, output = built
    assert "No matches" not in output, output
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == yaml.safe_load((ROOT / "ee" / "requirements.yml").read_text())
    [collection] = requirements["collections"]
    assert collection == {"name": f"collections/{TARBALL}", "type": "file"}, \
        f"ee/requirements.yml must name the tarball of galaxy.yml's version ({TARBALL})"
    assert (context / "_build" / collection["name"]).is_file()
    # The galaxy stage runs ansible-galaxy in a copy of _build, so the relative path resolves there.
    stage = containerfile.split("FROM base AS galaxy", 1)[1].split("FROM ", 1)[0]
    assert "COPY _build /build\nWORKDIR /build" in stage
    assert re.search(r"^RUN .*ansible-galaxy collection install .*-r requirements\.yml", stage, re.MULTILINE)


def test_requirement_installs_offline_from_the_context(built, tmp_path):
    """What the galaxy stage does, here: install from _build/ with no network."""
    context = built[1]
    run([sys.executable, "-m", "ansible.cli.galaxy", "collection", "install", "--offline", "--force",
         "-r", "requirements.yml", "-p", str(tmp_path / "installed")], cwd=context / "_build", home=tmp_path)
    installed = tmp_path / "installed" / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    info = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
    assert (installed / "plugins" / "modules" / "worker.py").is_file()
    assert (installed / "roles" / "worker" / "meta" / "argument_specs.yml").is_file()


def test_collection_artifact_leaves_the_ee_files_out(built):
    """The EE is built around the artifact from a checkout; galaxy.yml's build_ignore keeps it out."""
    with tarfile.open(built[0] / "ee" / "collections" / TARBALL) as artifact:
        names = artifact.getnames()
    assert "MANIFEST.json" in names
    leaked = [n for n in names if n == DEFINITION.name or n.split("/")[0] in ("ee", ".ansible")]
    assert not leaked, leaked


def test_controller_side_dependencies(definition, built):
    """plugins/ imports only the standard library and ansible, so the image needs no Python
    package; the one system package is the ssh client the connection needs."""
    imported = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"__future__", "ansible", "ansible_collections"}
    assert not third_party, f"plugins/ imports {sorted(third_party)}: list them under dependencies.python"
    deps = definition["dependencies"]
    assert "python" not in deps
    assert (built[1] / "_build" / "bindep.txt").read_text().splitlines() == deps["system"]
