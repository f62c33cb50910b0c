package io.flinktf.ipc.inference;

import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.arrow.ArrowSchema;
import java.io.Serializable;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.java.typeutils.RowTypeInfo;

/**
 * What {@link Inference#addTo} builds: the workers (entry, interpreter, properties, heartbeats),
 * the rings (name, capacities), the batching of input rows, the in-flight limit, and the input
 * and output row types. Immutable and serializable; made by {@link InferenceConfigBuilder}, which
 * checks everything in {@code build()}.
 */
public final class InferenceConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    final String name;
    final String baseDir; // null: RingPaths.defaultDirectory() on the TaskManager
    final int workers;
    final String entry;
    final String python; // null: the job's python.executable, else python3
    final Map<String, String> properties;
    final long heartbeatIntervalNanos;
    final long heartbeatTimeoutNanos;
    final long shutdownGraceNanos;
    final long exitGraceNanos;
    final String logDir;
    final long inputCapacity;
    final long outputCapacity;
    final int batchRows;
    final long batchBytes;
    final long lingerNanos;
    final int inFlight;
    final long resultTimeoutMillis;
    final long writeTimeoutNanos;
    final RowTypeInfo inputType;
    final RowTypeInfo outputType;
    final ArrowSchema inputSchema;
    final ArrowSchema outputSchema;

    InferenceConfig(InferenceConfigBuilder b, ArrowSchema inputSchema, ArrowSchema outputSchema) {
        this.name = b.name;
        this.baseDir = b.baseDir;
        this.workers = b.workers;
        this.entry = b.entry;
        this.python = b.python;
        this.properties = Collections.unmodifiableMap(new LinkedHashMap<>(b.properties));
        this.heartbeatIntervalNanos = TimeUnit.MILLISECONDS.toNanos(b.heartbeatIntervalMillis);
        this.heartbeatTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(b.heartbeatTimeoutMillis);
        this.shutdownGraceNanos = TimeUnit.MILLISECONDS.toNanos(b.shutdownGraceMillis);
        this.exitGraceNanos = TimeUnit.MILLISECONDS.toNanos(b.exitGraceMillis);
        this.logDir = b.logDir;
        this.inputCapacity = b.inputCapacity;
        this.outputCapacity = b.outputCapacity;
        this.batchRows = b.batchRows;
        this.batchBytes = b.batchBytes;
        this.lingerNanos = TimeUnit.MICROSECONDS.toNanos(b.lingerMicros);
        this.inFlight = b.inFlight;
        this.resultTimeoutMillis = b.resultTimeoutMillis;
        this.writeTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(b.writeTimeoutMillis);
        this.inputType = b.inputType;
        this.outputType = b.outputType;
        this.inputSchema = inputSchema;
        this.outputSchema = outputSchema;
    }

    public static InferenceConfigBuilder builder() {
        return new InferenceConfigBuilder();
    }

    Path baseDirectory() {
        return baseDir != null ? Paths.get(baseDir) : RingPaths.defaultDirectory();
    }

    public String name() {
        return name;
    }

    public int workers() {
        return workers;
    }

    public RowTypeInfo outputType() {
        return outputType;
    }

    /** The input ring of attempt {@code attempt} of subtask {@code subtask} (the JVM writes it). */
    public Path inputRing(int subtask, int attempt) {
        return RingPaths.ringPath(baseDirectory(), name, subtask, attempt);
    }

    /** The output ring beside it, {@code <stem>.out.ring} (the worker writes it). */
    public static Path outputRing(Path inputRing) {
        return RingPaths.sibling(inputRing, "out.ring");
    }

    @Override
    public String toString() {
        return "InferenceConfig{name=" + name + ", workers=" + workers + ", entry=" + entry + ", batchRows=" + batchRows
                + ", inFlight=" + inFlight + "}";
    }
}
