package io.flinktf.ipc.inference;

import org.apache.flink.streaming.api.operators.AbstractStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.ChainingStrategy;
import org.apache.flink.streaming.api.operators.OneInputStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.StreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;
import org.apache.flink.streaming.api.operators.legacy.YieldingOperatorFactory;
import org.apache.flink.types.Row;

/**
 * Makes the {@link InferenceOperator} of each subtask with the mailbox executor of its place in
 * the chain (which it yields to while its in-flight queue is full, as Flink's async I/O operator
 * does). Chained to its input like the async I/O operator (a row reaches the batch without being
 * serialized between tasks), except after a legacy source, whose chain runs outside the mailbox
 * thread: {@link YieldingOperatorFactory} tells Flink's graph builder not to chain it there.
 */
@SuppressWarnings("deprecation") // YieldingOperatorFactory: the graph builder's only "do not chain me to a legacy source" flag
final class InferenceOperatorFactory extends AbstractStreamOperatorFactory<Row>
        implements OneInputStreamOperatorFactory<Row, Row>, YieldingOperatorFactory<Row> {
    private static final long serialVersionUID = 1L;

    private final InferenceConfig config;
    private final String python;

    InferenceOperatorFactory(InferenceConfig config, String python) {
        this.config = config;
        this.python = python;
        this.chainingStrategy = ChainingStrategy.ALWAYS;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <T extends StreamOperator<Row>> T createStreamOperator(StreamOperatorParameters<Row> parameters) {
        return (T) new InferenceOperator(parameters, config, python);
    }

    @Override
    @SuppressWarnings("rawtypes") // the interface's signature
    public Class<? extends StreamOperator> getStreamOperatorClass(ClassLoader classLoader) {
        return InferenceOperator.class;
    }
}
