#!/bin/sh
# Installs the Debian packages the JVM side needs to build and test: junit5 (the JUnit Platform
# console launcher runs the Java tests under ctest; Maven Central is unreachable here, Debian's
# mirror is not). Idempotent: does nothing when everything is already installed.
set -eu

JUNIT_JAR=/usr/share/java/junit-platform-console-standalone.jar
PKGS="junit5"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ] && [ -f "$JUNIT_JAR" ]; then
    echo "install-system-deps: already installed:$PKGS"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-system-deps: need root or sudo for:$missing" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is intended
$SUDO apt-get install -y -qq --no-install-recommends $missing
test -f "$JUNIT_JAR" || { echo "install-system-deps: $JUNIT_JAR missing after install" >&2; exit 1; }
echo "install-system-deps: installed:$missing"
