"""Worker processes: their server started ahead of the pool, and large start-up state handed over in a file."""
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from augment.processes import pickled, start_server, unpickled, worker_context

from conftest import children_of


def _parent(_: int) -> int:
    return os.getppid()


def _command_line(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_a_value_handed_over_in_a_file_comes_back_whole_and_the_file_goes(tmp_path):
    value = {"styles": [np.arange(12, dtype=np.uint8).reshape(2, 2, 3)], "seed": 7}
    with pickled(value, tmp_path / "out" / ".parts") as path:
        assert path.parent == tmp_path / "out" / ".parts" and path.match(".*.part*")  # as prepare_output clears
        back = unpickled(path)
        assert back["seed"] == 7 and np.array_equal(back["styles"][0], value["styles"][0])
    assert not path.exists()
    with pytest.raises(RuntimeError), pickled(value, tmp_path) as path:
        raise RuntimeError("the run failed")
    assert not path.exists()  # removed on the way out of a failed run too


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_workers_come_from_the_server_started_ahead_of_the_pool():
    start_server(("json",))
    servers = [pid for pid in children_of(os.getpid()) if "forkserver" in _command_line(pid)]
    assert len(servers) == 1
    with ProcessPoolExecutor(2, mp_context=worker_context(("json",))) as pool:
        parents = set(pool.map(_parent, range(4)))
    assert parents == set(servers)  # the pool started no second server
