package io.flinktf.ipc.internal;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;

/** Process identity as the ring records it: pid plus start time, so a recycled pid is not alive. */
public final class ProcessInfo {
    private ProcessInfo() {}

    /**
     * Start time of {@code pid} in clock ticks since boot (field 22 of /proc/PID/stat), or 0 when
     * the process does not exist or has exited: a zombie (state Z or X, killed but not yet reaped by
     * its parent) keeps its /proc entry and start time, yet will never read the ring again. The
     * command name (field 2) may contain spaces and parentheses, so the fields are counted after
     * the last ')'.
     */
    public static long startTime(long pid) {
        if (pid <= 0) {
            return 0;
        }
        return startTime(Paths.get("/proc", Long.toString(pid), "stat"));
    }

    /** Start time of the calling process. */
    public static long selfStartTime() {
        return startTime(Paths.get("/proc/self/stat"));
    }

    public static long selfPid() {
        return ProcessHandle.current().pid();
    }

    private static long startTime(Path stat) {
        String s;
        try {
            s = new String(Files.readAllBytes(stat), StandardCharsets.US_ASCII);
        } catch (IOException e) {
            return 0;
        }
        int close = s.lastIndexOf(')');
        if (close < 0) {
            return 0;
        }
        // After ')' come field 3 (state), 4, ...; field 22 is the 20th token.
        String[] tok = s.substring(close + 1).trim().split("\\s+");
        if (tok.length < 20 || tok[0].equals("Z") || tok[0].equals("X")) {
            return 0;
        }
        try {
            return Long.parseLong(tok[19]);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** True when {@code pid} exists and started at {@code start} (clock ticks since boot). */
    public static boolean isAlive(long pid, long start) {
        long now = startTime(pid);
        return now != 0 && now == start;
    }
}
