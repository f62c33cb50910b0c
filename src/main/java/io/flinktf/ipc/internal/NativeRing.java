package io.flinktf.ipc.internal;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The JNI shim (csrc/fti_jni.c): the futex system call on a word of the mapped ring, and the C
 * library's layout table. It is called only around sleeps, never per record.
 *
 * <p>Why JNI and not a doorbell file or polling: the C and Python readers sleep in FUTEX_WAIT on
 * {@code reader_sleeping}; only FUTEX_WAKE on the same shared word wakes them without a timeout
 * tick, and Java has no public API for it. The shim is ~60 lines and uses only public JNI
 * ({@code GetDirectBufferAddress}).
 *
 * <p>Loading: the shared library travels inside the jar as a resource and is copied to a fresh
 * temporary file on first use, then {@code System.load}ed and the file deleted. The jar is all a
 * Flink job ships (the TaskManager may be the PyFlink gateway JVM, whose {@code
 * java.library.path} we do not control), and a fresh copy per class loader keeps a job restart in
 * the same JVM working: the JVM refuses to load one library file into two class loaders. The system
 * property {@code flinktf.ipc.jni} (a path) overrides the resource, for tests run from the build
 * tree.
 */
public final class NativeRing {
    private NativeRing() {}

    public static final String PATH_PROPERTY = "flinktf.ipc.jni";

    private static final Object LOCK = new Object();
    private static volatile boolean loaded;
    private static Throwable loadError;

    /** Wakes every waiter on the futex word at {@code offset}; returns the number woken or -errno. */
    private static native int futexWake0(ByteBuffer buf, int offset);

    /**
     * Sleeps while the word at {@code offset} equals {@code expected}, at most {@code timeoutNanos}.
     * Returns 0 when woken (or spuriously), -ETIMEDOUT, -EAGAIN (value differed), -EINTR.
     */
    private static native int futexWait0(ByteBuffer buf, int offset, int expected, long timeoutNanos);

    /** posix_fallocate of the whole file at {@code path} (opened O_NOFOLLOW); 0 or -errno. */
    private static native int allocate0(String path, long length);

    /** The C library's fti_layout_fields() as lines "name offset size". */
    private static native String layoutTable0();

    public static int futexWake(ByteBuffer mapped, int offset) {
        ensureLoaded();
        return futexWake0(mapped, offset);
    }

    public static int futexWait(ByteBuffer mapped, int offset, int expected, long timeoutNanos) {
        ensureLoaded();
        return futexWait0(mapped, offset, expected, timeoutNanos);
    }

    /**
     * Reserves the blocks of the first {@code length} bytes of the file (and extends it to that
     * size), so that writing through a mapping of it can never hit a full file system (SIGBUS).
     * Returns 0 or -errno (-28: ENOSPC).
     */
    public static int allocate(Path path, long length) {
        ensureLoaded();
        return allocate0(path.toString(), length);
    }

    /** name -> {offset, size}, as the C library reports them. */
    public static Map<String, int[]> layoutFields() {
        ensureLoaded();
        Map<String, int[]> m = new LinkedHashMap<>();
        for (String line : layoutTable0().split("\n")) {
            if (line.isEmpty()) {
                continue;
            }
            String[] t = line.split(" ");
            m.put(t[0], new int[] {Integer.parseInt(t[1]), Integer.parseInt(t[2])});
        }
        return m;
    }

    /** Loads the shim once per class loader; throws UnsatisfiedLinkError with the cause if it can't. */
    public static void ensureLoaded() {
        if (loaded) {
            return;
        }
        synchronized (LOCK) {
            if (loaded) {
                return;
            }
            if (loadError != null) {
                throw linkError(loadError);
            }
            try {
                load();
                loaded = true;
            } catch (IOException | RuntimeException | UnsatisfiedLinkError e) {
                loadError = e;
                throw linkError(e);
            }
        }
    }

    private static UnsatisfiedLinkError linkError(Throwable cause) {
        UnsatisfiedLinkError e =
                new UnsatisfiedLinkError("flinktf-ipc: cannot load the JNI shim libfti_jni.so: " + cause);
        e.initCause(cause);
        return e;
    }

    static String resourceName() {
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        if (arch.equals("amd64")) {
            arch = "x86_64";
        }
        return "/io/flinktf/ipc/native/linux-" + arch + "/libfti_jni.so";
    }

    private static void load() throws IOException {
        String override = System.getProperty(PATH_PROPERTY);
        if (override != null && !override.isEmpty()) {
            System.load(Paths.get(override).toAbsolutePath().toString());
            return;
        }
        String res = resourceName();
        try (InputStream in = NativeRing.class.getResourceAsStream(res)) {
            if (in == null) {
                throw new IOException("resource " + res + " is not in the jar (unsupported platform?)");
            }
            Path tmp = Files.createTempFile("flinktf-ipc-jni-", ".so");
            try {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                System.load(tmp.toAbsolutePath().toString());
            } finally {
                // The loaded mapping stays valid after unlink; nothing is left behind in /tmp.
                Files.deleteIfExists(tmp);
            }
        }
    }
}
