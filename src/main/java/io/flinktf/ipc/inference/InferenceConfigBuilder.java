package io.flinktf.ipc.inference;

import io.flinktf.ipc.arrow.ArrowSchema;
import java.nio.file.Paths;
import java.util.LinkedHashMap;
import java.util.Map;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.RowTypeInfo;

/** Builds an {@link InferenceConfig}; setters store, {@link #build()} checks everything. */
public final class InferenceConfigBuilder {
    String name = "inference";
    String baseDir;
    int workers = 1;
    String entry;
    String python;
    final Map<String, String> properties = new LinkedHashMap<>();
    long heartbeatIntervalMillis = 1000;
    long heartbeatTimeoutMillis = 10_000;
    long shutdownGraceMillis = 5000;
    long exitGraceMillis = 60_000;
    String logDir;
    long inputCapacity = 16L << 20;
    long outputCapacity = 16L << 20;
    int batchRows = 1024;
    long batchBytes = 1L << 20;
    long lingerMicros = 1000;
    int inFlight = 8192;
    long resultTimeoutMillis;
    long writeTimeoutMillis = 600_000;
    RowTypeInfo inputType;
    RowTypeInfo outputType;
    Map<String, int[]> inputShapes = new LinkedHashMap<>();
    Map<String, int[]> outputShapes = new LinkedHashMap<>();

    InferenceConfigBuilder() {}

    /** Ring name: subtask i's rings are {@code <dir>/<name>-<i>.ring} (input) and {@code <name>-<i>.out.ring}. */
    public InferenceConfigBuilder setName(String name) {
        this.name = name;
        return this;
    }

    public InferenceConfigBuilder setBaseDir(String dir) {
        this.baseDir = dir;
        return this;
    }

    /** Worker processes = parallel subtasks of the inference operator. */
    public InferenceConfigBuilder setWorkers(int n) {
        this.workers = n;
        return this;
    }

    /** {@code module:function} or {@code /abs/path/file.py:function}, called as {@code function(context)}. */
    public InferenceConfigBuilder setEntry(String entry) {
        this.entry = entry;
        return this;
    }

    public InferenceConfigBuilder setPython(String python) {
        this.python = python;
        return this;
    }

    public InferenceConfigBuilder setProperty(String key, String value) {
        this.properties.put(key, value);
        return this;
    }

    public InferenceConfigBuilder setHeartbeatIntervalMillis(long ms) {
        this.heartbeatIntervalMillis = ms;
        return this;
    }

    public InferenceConfigBuilder setHeartbeatTimeoutMillis(long ms) {
        this.heartbeatTimeoutMillis = ms;
        return this;
    }

    public InferenceConfigBuilder setShutdownGraceMillis(long ms) {
        this.shutdownGraceMillis = ms;
        return this;
    }

    /** How long a worker that said finished may take to exit (TF teardown) before it is killed (default 60 s). */
    public InferenceConfigBuilder setExitGraceMillis(long ms) {
        this.exitGraceMillis = ms;
        return this;
    }

    public InferenceConfigBuilder setLogDir(String dir) {
        this.logDir = dir;
        return this;
    }

    /** Data bytes of the input ring (JVM to worker) and of the output ring (worker to JVM); powers of two. */
    public InferenceConfigBuilder setCapacities(long input, long output) {
        this.inputCapacity = input;
        this.outputCapacity = output;
        return this;
    }

    /** Most rows in one input batch (default 1024) and its buffer bytes (default 1 MiB). */
    public InferenceConfigBuilder setBatch(int rows, long bytes) {
        this.batchRows = rows;
        this.batchBytes = bytes;
        return this;
    }

    /** Longest a row waits for more rows while the worker is busy (default 1000 µs; whole milliseconds: a processing-time timer). */
    public InferenceConfigBuilder setLingerMicros(long micros) {
        this.lingerMicros = micros;
        return this;
    }

    /** Rows sent and waiting for their result per subtask; a row that finds it full waits (default 8192). */
    public InferenceConfigBuilder setInFlight(int rows) {
        this.inFlight = rows;
        return this;
    }

    /** Rows waiting while the worker answers nothing for this long fail the job (0, the default: no limit). */
    public InferenceConfigBuilder setResultTimeoutMillis(long ms) {
        this.resultTimeoutMillis = ms;
        return this;
    }

    public InferenceConfigBuilder setWriteTimeoutMillis(long ms) {
        this.writeTimeoutMillis = ms;
        return this;
    }

    public InferenceConfigBuilder setInputType(TypeInformation<?> type) {
        this.inputType = type instanceof RowTypeInfo ? (RowTypeInfo) type : null;
        if (type != null && inputType == null) {
            throw new IllegalArgumentException("Inference: the input stream's type must be a row type "
                    + "(Types.ROW_NAMED(...)), got " + type);
        }
        return this;
    }

    public InferenceConfigBuilder setOutputType(TypeInformation<?> type) {
        this.outputType = type instanceof RowTypeInfo ? (RowTypeInfo) type : null;
        if (type != null && outputType == null) {
            throw new IllegalArgumentException("Inference: output_row_type must be a row type (Types.ROW_NAMED(...)), got "
                    + type);
        }
        return this;
    }

    /** Fixed shapes of array columns of the input (as for the arrow sink). */
    public InferenceConfigBuilder setInputShape(String column, int[] shape) {
        this.inputShapes.put(column, shape.clone());
        return this;
    }

    /** Fixed shapes of array columns of the output. */
    public InferenceConfigBuilder setOutputShape(String column, int[] shape) {
        this.outputShapes.put(column, shape.clone());
        return this;
    }

    public InferenceConfig build() {
        if (name == null || !name.matches("[A-Za-z0-9._-]{1,200}") || name.startsWith(".")) {
            throw new IllegalArgumentException("Inference: name must be 1-200 characters of [A-Za-z0-9._-] not starting with '.', got '"
                    + name + "'");
        }
        if (baseDir != null && !Paths.get(baseDir).isAbsolute()) {
            throw new IllegalArgumentException("Inference: the ring directory must be absolute, got " + baseDir);
        }
        if (workers < 1) {
            throw new IllegalArgumentException("Inference: num_workers must be >= 1, got " + workers);
        }
        if (entry == null || entry.isEmpty()) {
            throw new IllegalArgumentException("Inference: the worker entry (module:function or /path/file.py:function) is required");
        }
        if (python != null && python.isEmpty()) {
            throw new IllegalArgumentException("Inference: the worker interpreter must not be empty");
        }
        if (heartbeatIntervalMillis < 1 || heartbeatTimeoutMillis <= heartbeatIntervalMillis || shutdownGraceMillis < 0
                || exitGraceMillis < 1) {
            throw new IllegalArgumentException("Inference: heartbeat interval " + heartbeatIntervalMillis + " ms must be >= 1 and below the timeout "
                    + heartbeatTimeoutMillis + " ms; shutdown grace >= 0");
        }
        for (long c : new long[] {inputCapacity, outputCapacity}) {
            if (c < 4096 || c > (1L << 30) || Long.bitCount(c) != 1) {
                throw new IllegalArgumentException("Inference: ring capacities must be powers of two from 4 KiB to 1 GiB, got " + c);
            }
        }
        if (batchRows < 1 || batchBytes < 64 || batchBytes > inputCapacity / 8) {
            throw new IllegalArgumentException("Inference: batch rows must be >= 1 and batch bytes between 64 and an eighth of the input ring ("
                    + inputCapacity / 8 + "), got " + batchRows + " rows, " + batchBytes + " bytes");
        }
        if (lingerMicros < 1) {
            throw new IllegalArgumentException("Inference: linger must be >= 1 µs, got " + lingerMicros);
        }
        if (inFlight < 1) {
            throw new IllegalArgumentException("Inference: in-flight rows must be >= 1, got " + inFlight);
        }
        if (resultTimeoutMillis < 0 || writeTimeoutMillis < 1) {
            throw new IllegalArgumentException("Inference: timeouts must be positive (result timeout 0 = none)");
        }
        if (inputType == null) {
            throw new IllegalArgumentException("Inference: the input stream needs a row type (Types.ROW_NAMED(...)); "
                    + "give the stream one (e.g. map(..., output_type=...)) before inference");
        }
        if (outputType == null) {
            throw new IllegalArgumentException("Inference: output_row_type is required");
        }
        ArrowSchema in = ArrowSchema.of(inputType, inputShapes);
        ArrowSchema out = ArrowSchema.of(outputType, outputShapes);
        return new InferenceConfig(this, in, out);
    }
}
