"""The owner: what a process remembers about the objects and calls it created. Arguments
packed (``arguments``), refs counted (``ownership``), tasks and actor calls submitted
(``submitter``, ``actor_submitter``, ``task_spec``), values read from other nodes and
rebuilt when lost (``remote_objects``, ``reconnect``). Runs on the core worker's I/O thread."""
