"""Prints what `make` installs before building the package without isolation: the build
requirements and every optional extra, read from pyproject.toml (the one place they are listed)."""

import tomllib

with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)
reqs = list(project["build-system"]["requires"]) + list(project["project"]["dependencies"])
for extra in project["project"]["optional-dependencies"].values():
    reqs += extra
print("\n".join(reqs))
