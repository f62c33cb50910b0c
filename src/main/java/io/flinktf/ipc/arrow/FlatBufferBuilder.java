package io.flinktf.ipc.arrow;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A minimal FlatBuffers builder: just what the Arrow IPC {@code Message} needs (tables with
 * scalar, offset and union fields; vectors of offsets and of 16-byte structs; strings).
 *
 * <p>Like the reference builder, the buffer is written back to front: an object is finished
 * before whatever refers to it, so every {@code uoffset} points forward, as the format requires.
 * Offsets handed out ({@code int}) count bytes from the end of the buffer. Every scalar is
 * aligned to its size relative to the end, and {@link #finish} pads the front so that the
 * finished buffer's start keeps that alignment (the largest one used).
 *
 * <p>Every field is written, defaults included: readers accept it and it keeps the builder simple.
 */
final class FlatBufferBuilder {
    private byte[] buf;
    private int space; // data lives in buf[space, buf.length)
    private int minAlign = 1;
    private int[] vtable; // per slot: offset() just after the field was written, 0 if absent
    private int objectStart;

    FlatBufferBuilder(int initialSize) {
        buf = new byte[Math.max(64, initialSize)];
        space = buf.length;
    }

    /** Bytes written so far: the offset of the last object written. */
    int offset() {
        return buf.length - space;
    }

    private void grow(int needed) {
        int size = buf.length;
        int newSize = Math.max(size * 2, size + needed);
        byte[] nb = new byte[newSize];
        System.arraycopy(buf, space, nb, newSize - (size - space), size - space);
        space += newSize - size;
        buf = nb;
    }

    /** Pads so that after {@code additional} more bytes, a {@code size}-byte scalar is aligned. */
    private void prep(int size, int additional) {
        if (size > minAlign) {
            minAlign = size;
        }
        int alignSize = (-(offset() + additional)) & (size - 1);
        if (space < alignSize + size + additional) {
            grow(alignSize + size + additional);
        }
        space -= alignSize;
        Arrays.fill(buf, space, space + alignSize, (byte) 0);
    }

    private void room(int n) {
        if (space < n) {
            grow(n);
        }
    }

    private void putByte(int v) {
        room(1);
        buf[--space] = (byte) v;
    }

    private void putShort(int v) {
        room(2);
        space -= 2;
        buf[space] = (byte) v;
        buf[space + 1] = (byte) (v >>> 8);
    }

    private void putInt(int v) {
        room(4);
        space -= 4;
        writeInt(space, v);
    }

    private void writeInt(int at, int v) {
        buf[at] = (byte) v;
        buf[at + 1] = (byte) (v >>> 8);
        buf[at + 2] = (byte) (v >>> 16);
        buf[at + 3] = (byte) (v >>> 24);
    }

    private void putLong(long v) {
        putInt((int) (v >>> 32));
        putInt((int) v);
    }

    /** A uoffset to the object at {@code target}, relative to where it is stored. */
    private void putOffset(int target) {
        prep(4, 0);
        if (target > offset()) {
            throw new IllegalStateException("flatbuffer: offset to an object not yet written");
        }
        putInt(offset() - target + 4);
    }

    int createString(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        prep(4, b.length + 1);
        putByte(0);
        space -= b.length;
        System.arraycopy(b, 0, buf, space, b.length);
        putInt(b.length);
        return offset();
    }

    /** A vector of offsets to tables (or strings), in the given order. */
    int createOffsetVector(int[] targets) {
        prep(4, 4 * targets.length);
        for (int i = targets.length - 1; i >= 0; i--) {
            putOffset(targets[i]);
        }
        putInt(targets.length);
        return offset();
    }

    /**
     * A vector of structs of two longs ({@code FieldNode{length, null_count}}, {@code
     * Buffer{offset, length}}): {@code pairs} holds a0, b0, a1, b1, ... ({@code n} pairs).
     */
    int createLongPairVector(long[] pairs, int n) {
        prep(4, 16 * n);
        prep(8, 16 * n); // the elements are 8-aligned, the length just before them
        for (int i = n - 1; i >= 0; i--) {
            putLong(pairs[2 * i + 1]);
            putLong(pairs[2 * i]);
        }
        putInt(n);
        return offset();
    }

    void startTable(int numFields) {
        if (vtable != null) {
            throw new IllegalStateException("flatbuffer: tables cannot nest while being built");
        }
        vtable = new int[numFields];
        objectStart = offset();
    }

    void addByte(int slot, int v) {
        prep(1, 0);
        putByte(v);
        vtable[slot] = offset();
    }

    void addShort(int slot, int v) {
        prep(2, 0);
        putShort(v);
        vtable[slot] = offset();
    }

    void addInt(int slot, int v) {
        prep(4, 0);
        putInt(v);
        vtable[slot] = offset();
    }

    void addLong(int slot, long v) {
        prep(8, 0);
        putLong(v);
        vtable[slot] = offset();
    }

    void addOffset(int slot, int target) {
        putOffset(target);
        vtable[slot] = offset();
    }

    /** Ends the table: writes its soffset and, just before it, its vtable. */
    int endTable() {
        prep(4, 0);
        putInt(0); // soffset to the vtable, patched below
        int object = offset();
        int n = vtable.length;
        while (n > 0 && vtable[n - 1] == 0) {
            n--;
        }
        for (int i = n - 1; i >= 0; i--) {
            putShort(vtable[i] == 0 ? 0 : object - vtable[i]);
        }
        putShort(object - objectStart); // inline size of the table
        putShort(4 + 2 * n); // size of the vtable
        // The vtable sits before the table: soffset = table position - vtable position > 0.
        writeInt(buf.length - object, offset() - object);
        vtable = null;
        return object;
    }

    /** Finishes the buffer with {@code root} as its root table; returns the bytes. */
    byte[] finish(int root) {
        prep(minAlign, 4);
        putOffset(root);
        return Arrays.copyOfRange(buf, space, buf.length);
    }
}
