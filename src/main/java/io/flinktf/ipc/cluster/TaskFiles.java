package io.flinktf.ipc.cluster;

import io.flinktf.ipc.RingPaths;
import java.nio.file.Path;

/**
 * The files of one TF task (one attempt of one subtask of a role), all beside each other in the
 * job's ring directory: stem {@code <cluster>-<role>-<index>[.attempt<k>]}, then {@code
 * <stem>.ring} (fed roles), {@code <stem>.<role>.json} (context), {@code <stem>.<role>.hb} and
 * {@code <stem>.writer.hb} (heartbeats), {@code <stem>.addr.json} (written by the process) and
 * {@code <stem>.spec.json} (written by the operator), {@code <stem>.out.ring} (the output ring, created by
 * the process when the cluster has an output row type). See docs/FORMAT.md "TF cluster".
 */
final class TaskFiles {
    final Path stem;
    final Path ring;
    final Path address;
    final Path spec;
    /** The output ring (output_row_type): created and written by the process, read by the operator. */
    final Path output;

    TaskFiles(Path dir, String cluster, String role, int index, int attempt) {
        // The ring rule (name, index, attempt) is RingPaths'; the stem is the ring's without ".ring".
        this.ring = RingPaths.ringPath(dir, cluster + "-" + role, index, attempt);
        String f = ring.getFileName().toString();
        this.stem = ring.resolveSibling(f.substring(0, f.length() - ".ring".length()));
        this.address = companion("addr.json");
        this.spec = companion("spec.json");
        this.output = companion("out.ring");
    }

    Path companion(String suffix) {
        return stem.resolveSibling(stem.getFileName() + "." + suffix);
    }
}
