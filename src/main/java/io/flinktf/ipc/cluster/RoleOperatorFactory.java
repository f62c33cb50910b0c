package io.flinktf.ipc.cluster;

import org.apache.flink.runtime.jobgraph.OperatorID;
import org.apache.flink.runtime.operators.coordination.OperatorCoordinator;
import org.apache.flink.runtime.operators.coordination.OperatorEventDispatcher;
import org.apache.flink.streaming.api.operators.AbstractStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.CoordinatedOperatorFactory;
import org.apache.flink.streaming.api.operators.OneInputStreamOperatorFactory;
import org.apache.flink.streaming.api.operators.StreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;
import org.apache.flink.types.Row;

/** Creates a role's {@link RoleOperator}s and, in the JobManager, their {@link ClusterCoordinator}. */
final class RoleOperatorFactory extends AbstractStreamOperatorFactory<Row>
        implements CoordinatedOperatorFactory<Row>, OneInputStreamOperatorFactory<Row, Row> {
    private static final long serialVersionUID = 1L;

    private final RoleSettings settings;

    RoleOperatorFactory(RoleSettings settings) {
        this.settings = settings;
    }

    @Override
    @SuppressWarnings("unchecked")
    public <T extends StreamOperator<Row>> T createStreamOperator(StreamOperatorParameters<Row> parameters) {
        OperatorID id = parameters.getStreamConfig().getOperatorID();
        OperatorEventDispatcher dispatcher = parameters.getOperatorEventDispatcher();
        RoleOperator op = new RoleOperator(parameters, settings, dispatcher.getOperatorEventGateway(id));
        dispatcher.registerEventHandler(id, op);
        return (T) op;
    }

    @Override
    public OperatorCoordinator.Provider getCoordinatorProvider(String operatorName, OperatorID operatorID) {
        TFClusterConfig c = settings.config;
        return new ClusterCoordinator.Provider(operatorID, c.name(), settings.role, c.roleCounts(), c.finishingRole(),
                c.maxFailedStarts());
    }

    @Override
    public Class<? extends StreamOperator<?>> getStreamOperatorClass(ClassLoader classLoader) {
        return RoleOperator.class;
    }
}
