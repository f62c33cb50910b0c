package io.flinktf.ipc.arrow;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The cut rule of one batch size end to end: records hold whole reader batches. */
class ArrowBatchOptionsTest {
    /**
     * The batch sizes an operator cuts for {@code rows} rows of {@code rowBytes} each, with a short
     * cut (linger, checkpoint) after each row index in {@code shortCutsAfter}.
     */
    private static List<Integer> cuts(ArrowBatchOptions o, int rows, long rowBytes, int... shortCutsAfter) {
        List<Integer> out = new ArrayList<>();
        long stream = 0;
        int batch = 0;
        int s = 0;
        for (int i = 0; i < rows; i++) {
            stream++;
            batch++;
            if (o.full(stream, batch, batch * rowBytes) || (s < shortCutsAfter.length && shortCutsAfter[s] == i)) {
                if (s < shortCutsAfter.length && shortCutsAfter[s] == i) {
                    s++;
                }
                out.add(batch);
                batch = 0;
            }
        }
        if (batch > 0) {
            out.add(batch);
        }
        return out;
    }

    @Test
    void withoutABatchSizeTheRowAndByteLimitsCutAsBefore() {
        ArrowBatchOptions o = ArrowBatchOptions.defaults().setBatchRows(100).setBatchBytes(1000);
        assertEquals(List.of(100, 100, 50), cuts(o, 250, 1));
        assertEquals(List.of(40, 40, 20), cuts(o, 100, 25)); // the row that reaches 1000 bytes stays
        assertEquals(1024, ArrowBatchOptions.defaults().batchRows());
        assertEquals("{}", ArrowBatchOptions.codecParams(ArrowBatchOptions.defaults().batchSize()));
    }

    @Test
    void theByteLimitWaitsForAWholeBatch() {
        ArrowBatchOptions o = ArrowBatchOptions.defaults().setBatchSize(30).setBatchRows(300).setBatchBytes(1000);
        assertEquals(List.of(60, 60, 30), cuts(o, 150, 25)); // 1000 bytes at row 40: cut at 60
    }

    @Test
    void afterAShortBatchTheNextOneBringsTheStreamBackInStep() {
        ArrowBatchOptions o = ArrowBatchOptions.defaults().setBatchSize(100).setBatchRows(400);
        // a linger cut after 130 rows: the next batch ends at 500 (370 rows: the 30 left over count
        // towards its 400), then the records hold whole batches again
        assertEquals(List.of(130, 370, 400, 350), cuts(o, 1250, 1, 129));
        long total = 0;
        for (int c : cuts(o, 1250, 1, 129)) {
            total += c;
            assertTrue(total % 100 == 0 || total == 130 || total == 1250, "cut at " + total);
        }
    }

    @Test
    void batchRowsDefaultsToWholeBatchesAndMustBeAMultiple() {
        assertEquals(1000, ArrowBatchOptions.defaults().setBatchSize(100).batchRows());
        assertEquals(1024, ArrowBatchOptions.defaults().setBatchSize(256).batchRows());
        assertEquals(3000, ArrowBatchOptions.defaults().setBatchSize(3000).batchRows());
        assertEquals(500, ArrowBatchOptions.defaults().setBatchRows(500).setBatchSize(100).batchRows());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ArrowBatchOptions.defaults().setBatchSize(100).setBatchRows(1024));
        assertTrue(e.getMessage().contains("multiple of batchSize") && e.getMessage().contains("1000 would do"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ArrowBatchOptions.defaults().setBatchRows(1024).setBatchSize(100));
        assertThrows(IllegalArgumentException.class, () -> ArrowBatchOptions.defaults().setBatchSize(0));
        assertEquals("{\"batch_size\": 100}", ArrowBatchOptions.codecParams(100));
        assertEquals(100, ArrowBatchOptions.defaults().setBatchSize(100).copy().batchSize());
    }
}
