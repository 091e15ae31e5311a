"""rnnlab.workspace: arrays are reused only when nothing else refers to them."""
import copy

import numpy as np

from rnnlab.workspace import Workspace


def test_reuses_a_free_array():
    ws = Workspace()
    a = ws.empty("a", (3, 4), np.float32)
    first = id(a)
    del a
    assert id(ws.empty("a", (3, 4), np.float32)) == first


def test_a_held_array_or_view_is_never_handed_out_again():
    ws = Workspace()
    held = ws.empty("a", (3, 4), np.float32)
    assert ws.empty("a", (3, 4), np.float32) is not held
    view = ws.empty("b", (3, 4), np.float32)[1:]
    other = ws.empty("b", (3, 4), np.float32)
    assert not np.shares_memory(view, other)


def test_shape_or_dtype_change_gives_a_new_array():
    ws = Workspace()
    a = ws.empty("a", (3, 4), np.float32)
    first = id(a)
    del a
    b = ws.empty("a", (4, 3), np.float32)
    assert b.shape == (4, 3) and id(b) != first
    del b
    assert ws.empty("a", (4, 3), np.float64).dtype == np.float64


def test_sub_nbytes_and_copy():
    ws = Workspace()
    ws.empty("z", (5,), np.float64)
    assert ws.sub(0) is ws.sub(0) and ws.sub(0) is not ws.sub(1)
    assert ws.nbytes() == 5 * 8
    assert copy.deepcopy(ws).nbytes() == 0


def test_threads_get_their_own_arrays():
    import threading
    ws = Workspace()
    mine = id(ws.empty("a", (2,), np.float32))    # free again at once: this thread would reuse it
    assert id(ws.empty("a", (2,), np.float32)) == mine
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(id(ws.empty("a", (2,), np.float32))))
    thread.start()
    thread.join()
    assert theirs and theirs[0] != mine


def test_release_workspaces_empties_every_layer():
    from rnnlab.models import CharRNN, ModelConfig
    from rnnlab.module import release_workspaces

    model = CharRNN(ModelConfig(vocab_size=7, cell="lstm", hidden_size=8, num_layers=2, embedding_size=4,
                                dropout=0.1))
    (_, _), cache = model.forward(np.zeros((2, 5), dtype=np.int64))
    del cache
    held = [m.workspace.nbytes() for _, m in model.modules() if hasattr(m, "workspace")]
    assert sum(held) > 0
    release_workspaces(model)
    assert all(m.workspace.nbytes() == 0 for _, m in model.modules() if hasattr(m, "workspace"))


def test_new_arrays_start_at_different_cache_line_offsets_within_a_page():
    """Same-offset arrays map every per-step slice to the same L1 sets (see the module docstring)."""
    ws = Workspace()
    arrays = [ws.empty(k, (64, 1024), np.float32) for k in range(8)]
    offsets = [a.ctypes.data % 4096 for a in arrays]
    assert len(set(offsets)) == 8 and all(o % 64 == 0 for o in offsets)
    assert all(a.flags.c_contiguous and a.flags.writeable for a in arrays)
    # A view refers to the byte buffer that owns the memory, not to the array handed out:
    # it must still keep that array from being handed out again.
    view, address = arrays[0][3:5], arrays[0].ctypes.data
    arrays.clear()
    assert ws.empty(0, (64, 1024), np.float32).ctypes.data != address
    del view
