"""Abuse suite: every limit ends the sandbox with a named violation; the host is fine."""
import os
import pickle
import shutil
import time

import pytest

from isolation_helpers import ok, run

pytestmark = pytest.mark.jail


def test_fork_bomb_hits_process_limit():
    r = run("""
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
""", wall_seconds=3, max_processes=16)
    assert r.violation == "processes", (r.violation, r.exit_code, r.details)
    assert r.duration < 8


def test_memory_bomb_single_allocation_is_a_memory_violation():
    r = run("x = bytearray(8 << 30)", memory="128MiB")
    assert r.violation == "memory" and r.exit_code != 0
    assert "MemoryError" in r.stderr


def test_memory_bomb_gradual_is_a_memory_violation():
    r = run("""
chunks = []
while True:
    chunks.append(bytearray(4 << 20))
""", memory="128MiB")
    assert r.violation == "memory" and r.exit_code != 0


def test_memory_bomb_in_child_process_is_contained():
    r = run("""
import os
pid = os.fork()
if pid == 0:
    chunks = []
    while True:
        chunks.append(bytearray(4 << 20))
os.waitpid(pid, 0)
raise MemoryError('child died') if True else None
""", memory="128MiB")
    assert r.violation == "memory"


def test_tmp_disk_fill_stops_at_tmp_size():
    before = shutil.disk_usage("/tmp").used
    r = run("""
f = open('/tmp/fill', 'wb')
while True:
    f.write(b'x' * 65536)
""", tmp_size="8MiB")
    assert r.exit_code != 0 and "No space left on device" in r.stderr
    assert shutil.disk_usage("/tmp").used - before < 4 << 20  # host /tmp untouched


def test_file_size_limit():
    r = run("open('/tmp/big', 'wb').write(b'x' * (2 << 20))", max_file_size="1MiB")
    assert r.exit_code != 0 and "File too large" in r.stderr


def test_cpu_spin_is_a_cpu_time_violation():
    r = run("while True: pass", cpu_seconds=1, wall_seconds=20)
    assert r.violation == "cpu_time", (r.violation, r.exit_code, r.details)
    assert r.duration < 6


def test_infinite_sleep_is_a_wall_time_violation():
    t = time.monotonic()
    r = run("import time; time.sleep(10**6)", wall_seconds=1)
    assert r.violation == "wall_time" and r.exit_code < 0
    assert time.monotonic() - t < 4


def test_sleeping_children_die_with_the_sandbox():
    r = run("""
import os, time
for _ in range(3):
    if os.fork() == 0:
        os.setsid()
        time.sleep(10**6)
time.sleep(10**6)
""", wall_seconds=1)
    assert r.violation == "wall_time"
    # the no_leftovers fixture asserts no process of a sandbox uid survives


def test_fd_exhaustion_is_an_ordinary_error():
    r = run("fs = [open('/dev/null') for _ in range(100000)]")
    assert r.exit_code == 1 and "Too many open files" in r.stderr and r.violation is None


def test_huge_stdout_is_an_output_violation():
    r = run("""
import sys
chunk = 'x' * (1 << 20)
for _ in range(1024):
    sys.stdout.write(chunk)
""")
    assert r.violation == "output"
    assert len(r.stdout) <= 1 << 20
    assert r.duration < 5


def test_huge_result_value_is_an_output_violation():
    r = run("b'x' * (4 << 20)", max_output_bytes="1MiB")
    assert r.violation == "output" and r.value is None


def test_malicious_pickle_value_comes_back_as_bytes(tmp_path):
    sentinel = tmp_path / "pwned"
    r = ok("""
import pickle, os
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + sentinel,))
pickle.dumps(Evil())
""", {"sentinel": str(sentinel)})
    assert isinstance(r.value, bytes) and b"system" in r.value
    assert not sentinel.exists()


def test_forged_result_channel_is_never_unpickled(tmp_path):
    sentinel = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {sentinel}",))

    r = run("""
import os
for fd in map(int, os.listdir('/proc/self/fd')):
    try:
        if fd > 2 and os.readlink(f'/proc/self/fd/{fd}').startswith('pipe:'):
            os.write(fd, payload)
    except OSError:
        pass
os._exit(0)
""", {"payload": pickle.dumps(Evil())})
    assert r.value is None and "result_error" in r.details
    assert not sentinel.exists()


def test_unencodable_value_is_reported_not_pickled():
    r = run("object()")
    assert r.exit_code == 1 and r.value is None
    assert "cannot encode value of type builtins.object" in r.stderr


def test_snippet_exception_gives_traceback_and_nonzero_exit():
    r = run("x = 1\nraise ValueError('boom')")
    assert r.exit_code == 1 and r.violation is None
    assert "ValueError: boom" in r.stderr and 'File "<sandbox>", line 2' in r.stderr


def test_last_expression_value_and_stdout():
    r = ok("print(sum(range(10)))\n{'x': inputs['x'] + 1, 'y': y}", {"x": 1, "y": (1, 2)})
    assert r.stdout == "45\n" and r.value == {"x": 2, "y": (1, 2)}


def test_numpy_array_roundtrip_through_the_sandbox():
    import numpy as np
    r = ok("import numpy as np\nnp.arange(6, dtype='float32').reshape(2, 3) * a", {"a": 2})
    assert isinstance(r.value, np.ndarray) and r.value.dtype == np.float32
    assert r.value.tolist() == [[0, 2, 4], [6, 8, 10]]


def test_sys_exit_code_is_reported():
    r = run("import sys; sys.exit(3)")
    assert r.exit_code == 3 and r.violation is None


def test_syntax_error_is_reported_in_stderr():
    r = run("def (")
    assert r.exit_code == 1 and "SyntaxError" in r.stderr


def test_refuses_multithreaded_caller():
    import threading
    from actorium.isolation.runner import run_snippet
    ev = threading.Event()
    t = threading.Thread(target=ev.wait)
    t.start()
    try:
        with pytest.raises(RuntimeError, match="single-threaded"):
            run_snippet("1")
    finally:
        ev.set()
        t.join()


def test_sandboxes_are_fresh_each_call():
    ok("open('/tmp/state', 'w').write('1')")
    r = ok("import os; os.path.exists('/tmp/state')")
    assert r.value is False
