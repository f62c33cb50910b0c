"""The main job's Flink features, learned by PyTorch instead of TensorFlow: the same Arrow ring.

The Flink job is the one of ``examples/ctr.py`` (``datagen`` impressions, the same SQL features,
``arrow_sink``: one ring and one worker process per subtask); only the worker differs. It reads its
ring with :class:`flinktf_ipc.arrow.ArrowRingReader` (no TensorFlow is imported), turns each
column of each Arrow record batch into a ``torch.Tensor`` without a copy (``torch.from_dlpack``
on the Arrow array: the tensor views the ring's memory), and trains a wide-and-deep click model,
one per worker, over ``--epochs`` passes (the first streams from the ring; later ones replay the
rows it kept, copied out of the ring). Each worker saves ``model.pt`` and ``curves.png``.

PyTorch is an optional extra (not installed by ``make``)::

    .venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    python -P examples/torch_train.py --rows 1000000     # or: flinktf-ipc demo --example torch
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from typing import Any

INSTALL = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def _ctr() -> Any:
    """examples/ctr.py, the job and driver this example shares (loaded by path: ``python -P``
    puts no script folder on sys.path, and the workers load this file by its path too)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ctr.py")
    spec = importlib.util.spec_from_file_location("flinktf_example_ctr", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ctr = _ctr()


# ---- Arrow columns to tensors ----------------------------------------------------------------


def column_tensor(arr: Any) -> Any:
    """One Arrow column as a ``torch.Tensor`` that views the Arrow buffer (so the ring) where Arrow
    allows: numbers without nulls through DLPack, fixed-size lists as (n, size) views of their
    values. Booleans (bits in Arrow) are copied; nulls are an error (fill them in Flink SQL)."""
    import pyarrow as pa
    import torch

    if arr.null_count:
        raise ValueError(f"a column of type {arr.type} has {arr.null_count} null(s): fill them in the Flink job")
    if pa.types.is_fixed_size_list(arr.type):
        values = column_tensor(arr.flatten())  # the child values of exactly these rows
        return values.view(len(arr), arr.type.list_size, *values.shape[1:])
    if pa.types.is_boolean(arr.type):
        return torch.from_numpy(arr.to_numpy(zero_copy_only=False))
    return torch.from_dlpack(arr)


def batch_tensors(batch: Any, columns: list[str]) -> dict[str, Any]:
    return {name: column_tensor(batch.column(name)) for name in columns}


# ---- the PyTorch worker (runs in the processes the Flink job starts) -------------------------


def build_model() -> Any:
    """The wide-and-deep model of examples/ctr.py, in PyTorch; returns logits."""
    import torch
    from torch import nn

    class WideAndDeep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # wide: one weight per item and per hour bucket (a linear model on one-hot features)
            self.wide_item = nn.Embedding(ctr.ITEMS, 1)
            self.wide_hour = nn.Embedding(ctr.HOUR_BUCKETS, 1)
            # deep: embeddings of every categorical feature plus the price, through an MLP
            self.user = nn.Embedding(ctr.USER_BUCKETS, 8)
            self.item = nn.Embedding(ctr.ITEMS, 8)
            self.hour = nn.Embedding(ctr.HOUR_BUCKETS, 4)
            self.mlp = nn.Sequential(nn.Linear(8 + 8 + 4 + 1, 32), nn.ReLU(), nn.Linear(32, 1))

        def forward(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
            wide = self.wide_item(b["item"]) + self.wide_hour(b["hour_bucket"])
            deep = self.mlp(torch.cat([self.user(b["user_bucket"]), self.item(b["item"]),
                                       self.hour(b["hour_bucket"]), b["price"].unsqueeze(1)], dim=1))
            return (wide + deep).squeeze(1)

    return WideAndDeep()


def auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve (Mann-Whitney: the rank sum of the positives)."""
    import torch

    n, pos = len(labels), int(labels.sum())
    if pos in (0, n):
        return float("nan")
    ranks = torch.empty(n, dtype=torch.float64)
    ranks[scores.argsort()] = torch.arange(1, n + 1, dtype=torch.float64)
    return float((ranks[labels == 1].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))


def train(context) -> None:  # type: ignore[no-untyped-def]
    """Worker entry: the ring's Arrow batches as tensors, trained on until the stream ends, then
    ``epochs - 1`` passes over the kept copies. Writes metrics.json (live, read by the driver's
    progress line), model.pt, ckpt.pt (to resume a restarted attempt) and curves.png."""
    ckpt_dir = context.checkpoint_dir or tempfile.mkdtemp(prefix="torch-ctr-")
    os.makedirs(ckpt_dir, exist_ok=True)
    metrics_path = os.path.join(ckpt_dir, "metrics.json")
    epochs = int(context.properties.get("epochs", "1"))
    state: dict[str, Any] = {"phase": "importing PyTorch", "steps": 0, "rows": 0, "streamed": 0, "loss": None,
                             "auc": None, "epoch": 0, "epochs": epochs, "attempt": context.attempt}
    ctr._write_json(metrics_path, state)
    import torch

    from flinktf_ipc.arrow import ArrowRingReader

    torch.set_num_threads(1)  # one worker per subtask shares the host with Flink and the other workers
    torch.manual_seed(context.index)
    minibatch = int(context.properties.get("batch_size", "1024"))
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    ckpt = os.path.join(ckpt_dir, "ckpt.pt")
    if os.path.exists(ckpt):  # a restarted attempt resumes from its own last checkpoint
        saved = torch.load(ckpt)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])

    def save(path: str, obj: Any) -> None:
        torch.save(obj, path + ".tmp")
        os.replace(path + ".tmp", path)

    train_model = context.properties.get("train", "1") != "0"
    keep = train_model and epochs > 1
    kept: list[dict[str, torch.Tensor]] = []  # copies for epochs 2..: a view would pin its ring space
    columns = [*ctr.FEATURES, "click"]

    def ring_batches():  # type: ignore[no-untyped-def]
        # timeout=None: Flink may pause the stream (checkpoints, back-pressure); a writer that
        # dies raises PeerLost instead
        with ArrowRingReader(context.reader(), timeout=None) as reader:
            for rb in reader.iter_batches():  # zero-copy record batches
                tensors = batch_tensors(rb, columns)  # views of the same memory
                del rb
                state["streamed"] += len(tensors["click"])
                if keep:
                    kept.append({k: v.clone() for k, v in tensors.items()})
                yield tensors
                del tensors  # as a training step does: a checkpoint waits until the worker let go of it

    if not train_model:  # feed only: how much of the time is the feed's
        state["phase"] = "streaming (no training)"
        ctr._write_json(metrics_path, state)
        for _ in ring_batches():
            pass
        ctr._write_json(metrics_path, state | {"phase": "done", "rows": state["streamed"]})
        return

    history: list[dict] = []
    recent: list[tuple[torch.Tensor, torch.Tensor]] = []  # (scores, labels) of the last steps, for the AUC
    for epoch in range(epochs):
        state.update(epoch=epoch + 1, phase="streaming + training" if epoch == 0 else "training on the kept rows")
        history.append({"rows": state["rows"], "loss": float("nan"), "auc": float("nan"), "epoch_start": True})
        loss_sum, loss_rows = 0.0, 0
        for tensors in (ring_batches() if epoch == 0 else iter(kept)):
            n = len(tensors["click"])
            for start in range(0, n, minibatch):
                b = {k: v[start:start + minibatch] for k, v in tensors.items()}  # views, no copy
                labels = b["click"].to(torch.float32)
                logits = model(b)
                loss = loss_fn(logits, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                rows = len(labels)
                state["steps"] += 1
                state["rows"] += rows
                loss_sum += loss.item() * rows
                loss_rows += rows
                recent.append((logits.detach(), b["click"].clone()))
                del b, labels, logits, loss  # the graph holds the index views: let go of the ring
                if len(recent) > 50:
                    recent.pop(0)
                if state["steps"] % 500 == 0:
                    save(ckpt, {"model": model.state_dict(), "optimizer": optimizer.state_dict()})
                if state["steps"] % 20 == 0:
                    state.update(loss=loss_sum / loss_rows, auc=auc(torch.cat([s for s, _ in recent]),
                                                                     torch.cat([y for _, y in recent])))
                    history.append({"rows": state["rows"], "loss": state["loss"], "auc": state["auc"]})
                    ctr._write_json(metrics_path, state)
                    context.progress({"rows": state["rows"]})
            del tensors
    state["phase"] = "saving"
    if loss_rows:
        state.update(loss=loss_sum / loss_rows, auc=auc(torch.cat([s for s, _ in recent]),
                                                         torch.cat([y for _, y in recent])))
    history.append({"rows": state["rows"], "loss": state["loss"], "auc": state["auc"]})
    ctr._write_json(metrics_path, state)
    save(ckpt, {"model": model.state_dict(), "optimizer": optimizer.state_dict()})
    model_path = os.path.join(ckpt_dir, "model.pt")
    save(model_path, model.state_dict())
    ctr.save_curves(history, os.path.join(ckpt_dir, "curves.png"),
                    f"PyTorch worker {context.index} (attempt {context.attempt}): {state['rows']:,} rows, "
                    f"{epochs} epoch(s)", auc_label=f"AUC (of the last {len(recent)} steps)")
    ctr._write_json(metrics_path, state | {"phase": "done", "outputs": {
        "model": f"{model_path} (state_dict: torch_train.build_model().load_state_dict(torch.load(...)))",
        "curves": os.path.join(ckpt_dir, "curves.png")}})


# ---- the driver: the job of examples/ctr.py with this file's worker ---------------------------

EPILOG = """examples:
  %(prog)s --rows 1000000                   1 M impressions, 2 PyTorch workers, 2 epochs
  %(prog)s --no-train                       measure the feed alone

PyTorch is not installed by make: .venv/bin/""" + INSTALL + """
Ctrl-C cancels the job and removes its rings and processes. Output: the --workdir folder
(checkpoints/<worker>/ model.pt, curves.png; logs/ for the worker and Flink logs)."""


def main(argv: list[str] | None = None) -> int:
    if importlib.util.find_spec("torch") is None and not {"-h", "--help"} & set(argv or sys.argv[1:]):
        prog = os.environ.get("FLINKTF_DEMO_PROG", "python -P examples/torch_train.py")
        print(f"{prog}: PyTorch is not installed in {sys.prefix}: {INSTALL}", file=sys.stderr)
        return 2
    return int(ctr.main(argv, entry=f"{os.path.abspath(__file__)}:train", script="examples/torch_train.py",
                        description="The main job's Flink SQL features stream through shared-memory Arrow rings\n"
                                    "into one PyTorch click-through model per worker (no TensorFlow).",
                        epilog=EPILOG, title="click-through model in PyTorch"))


if __name__ == "__main__":
    sys.exit(main())
