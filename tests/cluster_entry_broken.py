"""An entry module that raises at import (tests/test_tf_cluster.py: a clear error, never a hang)."""

raise ImportError("cluster_entry_broken: this module fails at import, as the test wants")


def run_main(context) -> None:  # type: ignore[no-untyped-def]
    pass
