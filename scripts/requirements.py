"""Prints what `make` installs before building the package without isolation: the build
requirements and every optional extra but those in [tool.flinktf-ipc] skip-extras, read from
pyproject.toml (the one place they are listed); with --no-deps, the packages `make` installs
without their dependencies ([tool.flinktf-ipc] install-without-deps)."""

import sys
import tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)
if sys.argv[1:] == ["--no-deps"]:  # what goes in without its dependencies (see pyproject.toml)
    reqs = list(project["tool"]["flinktf-ipc"]["install-without-deps"])
else:
    reqs = list(project["build-system"]["requires"]) + list(project["project"]["dependencies"])
    skip = set(project["tool"]["flinktf-ipc"].get("skip-extras", []))
    for name, extra in project["project"]["optional-dependencies"].items():
        if name not in skip:  # e.g. torch: optional, too big for every checkout
            reqs += extra
print("\n".join(reqs))
