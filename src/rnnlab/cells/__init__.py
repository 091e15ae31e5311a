"""Recurrent cells, one per file, and the registry that names them.

Adding a cell: write ``mycell.py`` with a :class:`~rnnlab.cells.base.Cell`
subclass, add it to ``CELLS`` below, and give it a gradcheck spec in
:mod:`rnnlab.gradcheck.specs`.
"""
from __future__ import annotations

from typing import Any

from .base import Cell
from .bnlstm import BNLSTMCell
from .gru import GRUCell
from .irnn import IRNNCell
from .lnlstm import LNLSTMCell
from .lstm import LSTMCell
from .rnn import RNNCell

CELLS: dict[str, type[Cell]] = {
    "rnn": RNNCell,
    "irnn": IRNNCell,
    "lstm": LSTMCell,
    "gru": GRUCell,
    "bnlstm": BNLSTMCell,
    "lnlstm": LNLSTMCell,
}


def make_cell(name: str, input_size: int, hidden_size: int, **kw: Any) -> Cell:
    try:
        cls = CELLS[name]
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; choose from {', '.join(CELLS)}") from None
    return cls(input_size, hidden_size, **kw)


__all__ = ["BNLSTMCell", "CELLS", "Cell", "GRUCell", "IRNNCell", "LNLSTMCell", "LSTMCell", "RNNCell", "make_cell"]
