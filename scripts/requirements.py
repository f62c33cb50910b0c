"""Prints what `make` installs before building the package without isolation: the build
requirements and every optional extra, read from pyproject.toml (the one place they are listed);
with --no-deps, the packages `make` installs without their dependencies ([tool.flinktf-ipc])."""

import sys
import tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)
if sys.argv[1:] == ["--no-deps"]:  # what goes in without its dependencies (see pyproject.toml)
    reqs = list(project["tool"]["flinktf-ipc"]["install-without-deps"])
else:
    reqs = list(project["build-system"]["requires"]) + list(project["project"]["dependencies"])
    for extra in project["project"]["optional-dependencies"].values():
        reqs += extra
print("\n".join(reqs))
