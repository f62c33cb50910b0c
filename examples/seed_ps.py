"""The seed talk's TensorFlow example ("TensorFlow与Apache Flink 的结合与实践", 2019), as it was.

One ps and three workers, TF1 between-graph replication: the ps runs ``tf.train.Server`` and
``server.join()``; each worker places ``w`` and ``b`` on the ps with
``tf.train.replica_device_setter`` and computes ``w + b``, ``w * b``, ``w / b`` (7, 10, 0.4).
The cluster spec comes from the Flink job (``TFContext``): no IP or port is written anywhere.

The one change to the seed's code: ``import tensorflow.compat.v1 as tf; tf.disable_v2_behavior()``
(TF 2 keeps the TF1 API there). Appended after the seed's lines, since the seed built the ops but
never ran them: a session that runs them and reports the results. The seed's
``replica_device_setter`` places every worker's ops on ``/job:worker/task:0``, so workers 1 and 2
compute in worker 0's process: worker 0 stays until every worker reported (a counter on the ps).

Run ``python -P examples/seed_ps.py`` (batch mode: no role reads Flink data; the job ends when the
workers are done and the framework has stopped the ps).
"""

import json
import os
import sys
import time

import tensorflow.compat.v1 as tf

from flinktf_ipc.tf_cluster import TFContext, train

tf.disable_v2_behavior()


def run_main(context):  # type: ignore[no-untyped-def]
    tf_context = TFContext(context)
    cluster = tf_context.get_cluster()
    job_name = tf_context.get_job_name()
    task_index = tf_context.get_task_index()
    if 'ps' == job_name:
        server = tf.train.Server(cluster, job_name=job_name, task_index=task_index)
        server.join()
    else:
        server = tf.train.Server(cluster, job_name=job_name, task_index=task_index)
        with tf.device(tf.train.replica_device_setter(worker_device='/job:worker/task:0', cluster=cluster)):
            w = tf.get_variable('w', (2, 2), tf.float32, initializer=tf.constant_initializer(2))
            b = tf.get_variable('b', (2, 2), tf.float32, initializer=tf.constant_initializer(5))
            addwb = w + b
            mutwb = w * b
            divwb = w / b
        # ---- appended: run the ops, report them ----
        report(tf_context, server, [addwb, mutwb, divwb])


def report(tf_context, server, ops):  # type: ignore[no-untyped-def]
    task_index = tf_context.get_task_index()
    workers = tf_context.get_cluster().num_tasks("worker")
    with tf.device("/job:ps/task:0"):
        done = tf.get_variable("done", (), tf.int32, initializer=tf.zeros_initializer())
    finish = done.assign_add(1)
    with tf.Session(server.target) as sess:
        if tf_context.is_chief:
            sess.run(tf.global_variables_initializer())
        else:
            uninitialized = tf.report_uninitialized_variables()
            while len(sess.run(uninitialized)):
                time.sleep(0.05)
        add, mul, div = sess.run(ops)
        sess.run(finish)
        print(f"worker {task_index}: w+b={add.tolist()} w*b={mul.tolist()} w/b={div.tolist()}", flush=True)
        out = tf_context.properties.get("out")
        if out:
            with open(os.path.join(out, f"seed-{task_index}-{tf_context.attempt}.json"), "w") as f:
                json.dump({"add": add.tolist(), "mul": mul.tolist(), "div": div.tolist(),
                           "tf_config": tf_context.get_tf_config()}, f)
        if task_index == 0:  # the others compute on this process (worker_device='/job:worker/task:0')
            while sess.run(done) < workers:
                time.sleep(0.05)


if __name__ == "__main__":
    from flinktf_ipc import flink

    # flink.configure: the jar, python.executable, Flink's log dir (set before the JVM starts), no restarts
    stream_env = flink.configure(restart_attempts=0)
    properties = {"out": sys.argv[1]} if len(sys.argv) > 1 else None
    train(3, 1, run_main, properties=properties, stream_env=stream_env, input_ds=None, output_row_type=None)
    stream_env.execute("flinktf-ipc example: the seed's ps + 3 workers")
