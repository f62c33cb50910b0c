package io.flinktf.ipc.inference;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.types.Row;

/**
 * Stream inference: each row of a stream goes through a model in a TF worker process and comes
 * back as one row of the output type, in order, in the same job (docs/ARCHITECTURE.md, "Inference:
 * results back into the stream"). Python: {@code flinktf_ipc.tf_cluster.inference(...)}.
 *
 * <pre>{@code
 * DataStream<Row> scored = Inference.addTo(rows, InferenceConfig.builder()
 *         .setName("scores").setWorkers(2).setEntry("my_pkg.serve:main")
 *         .setInputType(rows.getType()).setOutputType(Types.ROW_NAMED(...)).build());
 * }</pre>
 */
public final class Inference {
    private Inference() {}

    /** PyFlink's interpreter option: the worker interpreter when the config names none. */
    static final ConfigOption<String> PYTHON_EXECUTABLE =
            ConfigOptions.key("python.executable").stringType().noDefaultValue();

    /**
     * Adds the inference operator ({@link InferenceOperator}: rows in batches through the rings,
     * results in order, in-flight batches in checkpoints) after {@code input}, parallelism = the
     * number of workers (the input is rebalanced when its parallelism differs), one worker
     * process per subtask. Returns the results.
     */
    public static SingleOutputStreamOperator<Row> addTo(DataStream<Row> input, InferenceConfig config) {
        if (input == null || config == null) {
            throw new IllegalArgumentException("Inference: input and config must not be null");
        }
        String python = config.python;
        if (python == null) {
            python = input.getExecutionEnvironment().getConfiguration().getOptional(PYTHON_EXECUTABLE).orElse("python3");
        }
        DataStream<Row> in = input.getParallelism() == config.workers ? input : input.rebalance();
        SingleOutputStreamOperator<Row> out = in.transform("Inference '" + config.name + "'", config.outputType,
                new InferenceOperatorFactory(config, python));
        out.setParallelism(config.workers);
        out.uid("flinktf-inference-" + config.name);
        return out;
    }

    /** {@link #addTo} with the input type taken from the stream (it must be a row type). */
    public static SingleOutputStreamOperator<Row> addTo(DataStream<Row> input, InferenceConfigBuilder config) {
        if (input == null || config == null) {
            throw new IllegalArgumentException("Inference: input and config must not be null");
        }
        if (config.inputType == null) {
            config.setInputType(input.getType());
        }
        return addTo(input, config.build());
    }
}
