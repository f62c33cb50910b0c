package io.flinktf.ipc.cluster;

import io.flinktf.ipc.RingSink;
import io.flinktf.ipc.arrow.ArrowSchema;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;

/**
 * The front door: adds a TF cluster to a Flink job. One role operator per role, one subtask per TF
 * task (parallelism = the role's count), each starting one Python process; the coordinators of
 * the role operators are the AM that hands out the cluster spec and restarts the whole cluster
 * when a task fails. The caller runs {@code env.execute()}.
 *
 * <pre>{@code
 * TFCluster.addTo(rows, TFClusterConfig.builder().addRole("worker", 2).setEntry("pkg.train:main").build());
 * }</pre>
 *
 * From Python (Py4J): {@code jvm.io.flinktf.ipc.cluster.TFCluster.addTo(j_stream_or_env, j_config)}.
 */
public final class TFCluster {
    /** PyFlink's interpreter option: the processes' default interpreter when the job sets it. */
    static final ConfigOption<String> PYTHON_EXECUTABLE =
            ConfigOptions.key("python.executable").stringType().noDefaultValue();

    private TFCluster() {}

    /**
     * Batch mode: no role reads Flink data; every role runs behind a source that emits nothing.
     * Returns the rows the processes emit ({@link TFClusterConfig#outputRowType}), or null without
     * an output type.
     */
    public static DataStream<Row> addTo(StreamExecutionEnvironment env, TFClusterConfig config) {
        if (env == null || config == null) {
            throw new IllegalArgumentException("TFCluster.addTo: env and config must not be null");
        }
        return build(env, null, config, null);
    }

    /**
     * Stream mode: {@code input} is rebalanced over the tasks of the fed roles (those added with
     * {@code fed = true}, else {@code worker}); each task writes its share into its process's ring
     * as Arrow record batches ({@code TFContext.dataset(...)} reads them). Returns as {@link
     * #addTo(StreamExecutionEnvironment, TFClusterConfig)}.
     */
    public static DataStream<Row> addTo(DataStream<Row> input, TFClusterConfig config) {
        if (input == null || config == null) {
            throw new IllegalArgumentException("TFCluster.addTo: input and config must not be null");
        }
        return build(input.getExecutionEnvironment(), input, config, null);
    }

    /**
     * Stream mode with the input's row type given here (for a stream whose own type is not a
     * named row type, e.g. from PyFlink); {@code rowType} must be a {@link RowTypeInfo}.
     */
    public static DataStream<Row> addTo(DataStream<Row> input, TypeInformation<Row> rowType, TFClusterConfig config) {
        if (input == null || config == null) {
            throw new IllegalArgumentException("TFCluster.addTo: input and config must not be null");
        }
        if (rowType != null && !(rowType instanceof RowTypeInfo)) {
            throw new IllegalArgumentException("TFCluster: rowType must be a named row type (RowTypeInfo, PyFlink: "
                    + "Types.ROW_NAMED(...)), got " + rowType);
        }
        return build(input.getExecutionEnvironment(), input, config, (RowTypeInfo) rowType);
    }

    /** The roles Flink feeds: those marked fed, else {@code worker} when there is an input. */
    static Set<String> fedRoles(TFClusterConfig config, boolean hasInput) {
        Set<String> fed = new LinkedHashSet<>();
        for (TFRole r : config.roles()) {
            if (Boolean.TRUE.equals(r.fed())) {
                fed.add(r.name());
            }
        }
        if (!hasInput) {
            if (!fed.isEmpty()) {
                throw new IllegalArgumentException("TFCluster: role(s) " + fed + " are fed but no input stream was "
                        + "given: use TFCluster.addTo(input, config)");
            }
            return fed;
        }
        if (fed.isEmpty()) {
            TFRole worker = config.role("worker");
            if (worker == null || Boolean.FALSE.equals(worker.fed())) {
                throw new IllegalArgumentException("TFCluster: an input stream was given but no role reads it: "
                        + "add a 'worker' role or mark one with addRole(name, count, true)");
            }
            fed.add("worker");
        }
        return fed;
    }

    private static DataStream<Row> build(StreamExecutionEnvironment env, DataStream<Row> input, TFClusterConfig config,
            RowTypeInfo givenRowType) {
        if (env.getConfiguration().get(ExecutionOptions.RUNTIME_MODE) == RuntimeExecutionMode.BATCH) {
            throw new IllegalArgumentException("TFCluster: the job runs in BATCH execution mode, which schedules "
                    + "stages one after the other; a TF cluster needs all its tasks at once: use STREAMING");
        }
        Set<String> fed = fedRoles(config, input != null);
        ArrowSchema schema = null;
        if (input != null) {
            RowTypeInfo rowType = givenRowType != null ? givenRowType : config.rowType();
            if (rowType == null) {
                TypeInformation<Row> t = input.getType();
                if (!(t instanceof RowTypeInfo)) {
                    throw new IllegalArgumentException("TFCluster: the input stream has no row type (its type is " + t
                            + "): give it a named row type (PyFlink: output_type=Types.ROW_NAMED(...)) or setRowType(...)");
                }
                rowType = (RowTypeInfo) t;
            }
            try {
                schema = ArrowSchema.of(rowType, config.shapes());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("TFCluster: " + e.getMessage(), e);
            }
        }
        String python = config.python();
        if (python == null) {
            python = env.getConfiguration().getOptional(PYTHON_EXECUTABLE).filter(p -> !p.isEmpty()).orElse("python3");
        }
        long flushTimeoutNanos = config.flushTimeoutMillis() > 0 ? config.flushTimeoutMillis() * 1_000_000L
                : RingSink.defaultFlushTimeoutNanos(Math.max(0, env.getCheckpointConfig().getCheckpointTimeout()) * 1_000_000L);
        TypeInformation<Row> outType = config.outputRowType() != null ? config.outputRowType() : Types.ROW(Types.INT);
        ArrowSchema outputSchema = null;
        if (config.outputRowType() != null) {
            try {
                outputSchema = ArrowSchema.of(config.outputRowType(), Collections.emptyMap());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("TFCluster: output row type: " + e.getMessage(), e);
            }
        }
        List<DataStream<Row>> outputs = new ArrayList<>();
        for (TFRole role : config.roles()) {
            boolean isFed = fed.contains(role.name());
            RoleSettings settings = new RoleSettings(config, role.name(), isFed ? schema : null, outputSchema, python,
                    flushTimeoutNanos);
            String name = "TF " + config.name() + " " + role.name();
            String uid = "flinktf-cluster-" + config.name() + "-" + role.name();
            DataStream<Row> in;
            if (isFed) {
                in = input.rebalance();
            } else {
                in = env.fromSource(new EmptySource(), WatermarkStrategy.noWatermarks(), name + " (no input)", outType)
                        .setParallelism(role.count())
                        .uid(uid + "-source");
            }
            SingleOutputStreamOperator<Row> out = in.transform(name, outType, new RoleOperatorFactory(settings))
                    .setParallelism(role.count())
                    .setMaxParallelism(role.count())
                    .uid(uid);
            outputs.add(out);
        }
        if (config.outputRowType() == null) {
            return null;
        }
        DataStream<Row> all = outputs.get(0);
        for (int i = 1; i < outputs.size(); i++) {
            all = all.union(outputs.get(i));
        }
        return all;
    }
}
