"""The Dockerfile agrees with the package: no Docker engine here, so check what can be checked.

The image's install step is ``pip wheel --no-deps`` of the build context, then an install of
that wheel with the serving extras. The wheel test below builds the same wheel from the same
files (the COPY lines, filtered by .dockerignore) and opens it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shoppulse.consumers.cli import build_parser
from shoppulse.consumers.settings import HttpSettings, env_var_names
from tests.helm.chart import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TORCH_EXTRAS = {"train", "export"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def arg_default(name: str) -> str:
    for instruction, args in instructions():
        if instruction == "ARG" and args.startswith(f"{name}="):
            return args.split("=", 1)[1]
    raise AssertionError(f"ARG {name} has no default")


def copy_sources() -> list[str]:
    sources: list[str] = []
    for instruction, args in instructions():
        if instruction == "COPY" and not args.startswith("--from"):
            sources += shlex.split(args)[:-1]
    return sources


def ignore_rules() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker ignore syntax: `**/` is any number of directories, `*` and `?` stay within one."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(path: str) -> bool:
    """The last matching rule wins and `!` re-includes; a rule matching a directory covers its files."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for rule in ignore_rules():
        regex = _pattern_regex(rule.lstrip("!").rstrip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = not rule.startswith("!")
    return verdict


def test_dockerignore_is_an_allow_list_that_lets_every_copy_source_in() -> None:
    assert ignore_rules()[0] == "*"
    for source in copy_sources():
        assert (ROOT / source).exists() or source == "README.md", f"COPY {source}: no such path"
        assert not ignored(source), f"COPY {source} is excluded by .dockerignore"
    assert ignored("tests/unit/consumers/test_health.py")
    assert ignored(".venv/bin/python")
    assert ignored("consumers/__pycache__/cli.cpython-311.pyc")


def test_every_package_is_copied() -> None:
    folders = set(PYPROJECT["tool"]["setuptools"]["package-dir"].values())
    copied = {source.rstrip("/") for source in copy_sources()}
    assert folders <= copied, f"packages not in the image: {folders - copied}"
    assert {"pyproject.toml", "README.md"} <= set(copy_sources())


def test_image_installs_serving_extras_only() -> None:
    extras = set(arg_default("EXTRAS").split(","))
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert extras <= set(optional), f"unknown extras {extras - set(optional)}"
    assert not extras & TORCH_EXTRAS
    installed = PYPROJECT["project"]["dependencies"] + [d for e in extras for d in optional[e]]
    assert not [d for d in installed if re.match(r"(torch|transformers)\b", d)]
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip wheel --no-deps --wheel-dir /wheels ." in text
    assert '[${EXTRAS}]' in text


def test_entrypoint_is_the_console_script_and_commands_parse() -> None:
    runtime = stages()[-1]
    entrypoint = next(args for i, args in runtime if i == "ENTRYPOINT")
    cmd = next(args for i, args in runtime if i == "CMD")
    assert yaml.safe_load(entrypoint) == ["shoppulse"]
    assert PYPROJECT["project"]["scripts"]["shoppulse"] == "shoppulse.consumers.cli:main"
    parser = build_parser()
    # The image's default command and every command the chart runs must exist in the CLI.
    commands = [yaml.safe_load(cmd)]
    for template in (CHART / "templates").glob("*.yaml"):
        commands += [yaml.safe_load(m) for m in re.findall(r"args: (\[.*\])", template.read_text())]
    assert ["run", "enrich"] in commands and ["run", "profiles"] in commands
    for argv in commands:
        parser.parse_args(argv)


def test_runtime_stage_is_non_root_with_the_chart_uid() -> None:
    runtime = stages()[-1]
    user = next(args for i, args in runtime if i == "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric non-root USER, so runAsNonRoot can verify it"
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert not [args for i, args in runtime if i == "RUN" and "pip install" in args], "no installs at runtime"


def test_image_env_and_ports_match_the_settings() -> None:
    runtime = stages()[-1]
    env_text = " ".join(args for i, args in runtime if i == "ENV")
    names = set(re.findall(r"(SHOPPULSE_\w+)=", env_text))
    assert names <= env_var_names()
    assert "SHOPPULSE_HTTP__HOST=0.0.0.0" in env_text
    exposed = {int(p) for i, args in runtime if i == "EXPOSE" for p in args.split()}
    defaults = HttpSettings()
    assert exposed == {defaults.enrich_port, defaults.profiles_port, defaults.insights_port}


def test_wheel_built_like_the_image_holds_what_serving_needs(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for source in copy_sources():
        src = ROOT / source
        if not src.exists():
            pytest.fail(f"COPY {source}: missing from the repository, so the image build would fail")
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (context / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, context / source)
    wheels = tmp_path / "wheels"
    # As in the Dockerfile, except --no-build-isolation: the venv's setuptools, offline.
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(context)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (wheel,) = wheels.glob("shoppulse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("consumers/cli.py", "consumers/settings.py", "consumers/health.py", "models/__init__.py",
                   "models/data/taxonomy.json", "export/__init__.py"):
        assert f"shoppulse/{module}" in names, module
    # One top-level import name: nothing generic such as `models` lands in site-packages.
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"shoppulse"}
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "shoppulse = shoppulse.consumers.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    # The image installs "<wheel>[${EXTRAS}]" (default rocksdb): the extra exists and resolves, and the
    # runtime requirements hold no torch/transformers outside the train/export extras.
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert "Provides-Extra: rocksdb" in metadata
    heavy = [r for r in requires if r.split(";")[0].strip().lower().startswith(("torch", "transformers"))]
    assert heavy and all("extra ==" in r for r in heavy), heavy
    dry_run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", f"{wheel}[rocksdb]"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert dry_run.returncode == 0, dry_run.stdout[-2000:] + dry_run.stderr[-2000:]
    bundle = ROOT / "models" / "bundles" / "default"
    if not (bundle / "manifest.json").is_file():
        if os.environ.get("CI"):
            pytest.fail("models/bundles/default is missing: the image bakes in the default bundle")
        pytest.skip("the default bundle is not in the tree yet; the image build checks it too")
    for file in bundle.rglob("*"):
        if file.is_file():
            assert f"shoppulse/{file.relative_to(ROOT).as_posix()}" in names, f"{file} is not package data"


def test_wheel_installs_one_import_name(tmp_path: Path) -> None:
    """From a wheel install, ``import shoppulse.models`` resolves and ``import models`` does not."""
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    (wheel,) = wheels.glob("shoppulse-*.whl")
    zipfile.ZipFile(wheel).extractall(site)  # what pip install --no-deps puts in site-packages
    probe = (
        "import importlib.util as u, json; "
        "print(json.dumps({m: u.find_spec(m) is not None for m in "
        "('shoppulse.consumers', 'shoppulse.models', 'shoppulse.export', 'consumers', 'models', 'export')}))"
    )
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    assert json.loads(found) == {"shoppulse.consumers": True, "shoppulse.models": True, "shoppulse.export": True,
                                 "consumers": False, "models": False, "export": False}
    # Package data is found under the installed name (importlib.resources of the package itself).
    taxonomy = "from shoppulse.models.serving.taxonomy import default_taxonomy; print(len(default_taxonomy().tags) > 0)"
    loaded = subprocess.run(
        [str(venv / "bin" / "python"), "-c", taxonomy],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )
    assert loaded.stdout.strip() == "True", loaded.stderr[-2000:]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def test_every_runtime_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    runtime = PYPROJECT["project"]["dependencies"] + [
        d for extra in arg_default("EXTRAS").split(",") for d in PYPROJECT["project"]["optional-dependencies"][extra]
    ]
    for requirement in map(Requirement, runtime):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a runtime dependency but not in constraints.txt (bash scripts/lock.sh)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {requirement.specifier}"
    assert not {"torch", "transformers"} & set(pins), "the image's lock holds no torch"


def test_the_image_and_the_dev_venv_install_from_the_constraints() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "constraints.txt" in copy_sources()
    assert 'pip install -c constraints.txt "$(ls /wheels/shoppulse-*.whl)[${EXTRAS}]"' in text
    assert "-c constraints.txt -e" in (ROOT / "Makefile").read_text(encoding="utf-8")


def test_the_image_carries_oci_labels_that_match_the_package() -> None:
    runtime = stages()[-1]
    labels = dict(
        (key, value.strip('"'))
        for _, args in runtime if _ == "LABEL"
        for key, value in re.findall(r'(\S+)=("[^"]*"|\S+)', args)
    )  # fmt: skip
    prefix = "org.opencontainers.image."
    keys = ("title", "description", "version", "revision", "source", "licenses")
    assert {f"{prefix}{key}" for key in keys} <= set(labels)
    assert labels[f"{prefix}version"] == "${VERSION}" and arg_default("VERSION") == PYPROJECT["project"]["version"]
    assert labels[f"{prefix}licenses"] == PYPROJECT["project"]["license"]


def test_the_image_ships_the_int8_model_only() -> None:
    build = [args for instruction, args in stages()[0] if instruction == "RUN"]
    slim = next(i for i, args in enumerate(build) if "-m shoppulse.models.serving.slim --precision int8" in args)
    install = next(i for i, args in enumerate(build) if "pip install -c constraints.txt" in args)
    checks = next(i for i, args in enumerate(build) if "DEFAULT_BUNDLE" in args)
    assert install < slim < checks, "slim the installed bundle, then check it loads"
