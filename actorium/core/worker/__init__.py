"""The process: the core worker (one per process, its I/O thread owns the sockets), the
executor of a worker process (``worker_main``) and its output forwarding."""
