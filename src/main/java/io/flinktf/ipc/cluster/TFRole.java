package io.flinktf.ipc.cluster;

import java.io.Serializable;
import java.util.Objects;

/** One role of a TF cluster: its name (the TF job name), how many tasks, and whether Flink feeds it. */
public final class TFRole implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String name;
    private final int count;
    /** null: the default (the {@code worker} role is fed when an input stream is given). */
    private final Boolean fed;

    TFRole(String name, int count, Boolean fed) {
        this.name = name;
        this.count = count;
        this.fed = fed;
    }

    public String name() {
        return name;
    }

    public int count() {
        return count;
    }

    /** True or false when set explicitly; null for the default. */
    public Boolean fed() {
        return fed;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof TFRole)) {
            return false;
        }
        TFRole r = (TFRole) o;
        return name.equals(r.name) && count == r.count && Objects.equals(fed, r.fed);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, count, fed);
    }

    @Override
    public String toString() {
        return name + "=" + count + (fed == null ? "" : fed ? " (fed)" : " (not fed)");
    }
}
