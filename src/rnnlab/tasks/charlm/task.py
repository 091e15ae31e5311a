"""The character language model as a task of the one training loop.

Batches are ``B`` parallel streams of ``T`` characters (truncated BPTT,
:class:`rnnlab.data.StreamBatcher`); the hidden state is carried from one
batch to the next and reset where the streams jump back to the start of the
corpus (each new epoch). Loss: softmax cross-entropy in nats per character;
validation reports bits per character and selects ``best.npz`` by it.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ...data import Batch, StreamBatcher, Vocab, eval_batches
from ...layers import SoftmaxCrossEntropy
from ...models import CharRNN, ModelConfig
from ...module import no_grad
from ...train import snapshot
from . import packing
from ...train.task import EvalInterrupted, Selection, StepOutput, Task

LN2 = math.log(2.0)


def model_config(cfg: Any, vocab_size: int) -> ModelConfig:
    return ModelConfig(vocab_size, cfg.cell, cfg.hidden_size, cfg.num_layers, cfg.embedding_size,
                       cfg.dropout, cfg.proj_size, dict(cfg.cell_options), cfg.seed)


def evaluate(model: CharRNN, ids: np.ndarray, batch_size: int, seq_len: int, max_chars: int = 0,
             should_stop: Callable[[], bool] = lambda: False,
             progress: Callable[[int, int], None] | None = None) -> float:
    """Mean cross-entropy (nats/char) over ``ids``, carrying the state across batches.

    ``max_chars`` > 0 scores only the first ``max_chars`` characters' worth of
    streams (a bounded sample, for large validation splits during training).
    """
    if max_chars and len(ids) > max_chars + 1:
        ids = ids[:max_chars + 1]
    was_training = model.training
    model.eval()
    ce = SoftmaxCrossEntropy()
    total, count, states = 0.0, 0, None
    expected = batch_size * ((len(ids) - 1) // batch_size)
    try:
        with no_grad():
            for batch in eval_batches(ids, batch_size, seq_len):
                if should_stop():
                    raise EvalInterrupted
                (logits, states), _ = model.forward(batch.x, states)
                loss, _ = ce.forward(logits, batch.y)
                total += loss * batch.y.size
                count += batch.y.size
                if progress is not None:
                    progress(count, expected)
    finally:
        model.train(was_training)
    return total / max(count, 1)


class CharLMTask(Task):
    name = "charlm"
    unit = "chars"
    selection = Selection("loss", "min")

    def __init__(self, cfg: Any, vocab: Vocab, train_ids: np.ndarray, val_ids: np.ndarray) -> None:
        self.cfg, self.vocab, self.val_ids = cfg, vocab, val_ids
        self.batcher = StreamBatcher(train_ids, cfg.batch_size, cfg.seq_len)
        self.ce = SoftmaxCrossEntropy()
        self.loss_limit = 4 * math.log(max(len(vocab), 2))   # far worse than uniform guessing
        self.config = model_config(cfg, len(vocab))

    # -- model ----------------------------------------------------------------------------
    def build_model(self) -> CharRNN:
        return CharRNN(self.config)

    def pack_model(self, model: CharRNN) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return packing.pack_model(model, self.vocab)

    def rng_modules(self, model: CharRNN) -> list:
        return model.rng_modules()

    # -- data -----------------------------------------------------------------------------
    def next_batch(self) -> Batch:
        return self.batcher.next_batch()

    def data_state(self) -> dict[str, Any]:
        return self.batcher.state_dict()

    def load_data_state(self, state: dict[str, Any]) -> None:
        self.batcher.load_state_dict(state)

    # -- one step -------------------------------------------------------------------------
    def initial_carry(self, model: CharRNN, batch: Any = None) -> list:
        return model.initial_states(self.cfg.batch_size)

    def forward_backward(self, model: CharRNN, batch: Batch, carry: list) -> StepOutput:
        if batch.index == 0:
            carry = self.initial_carry(model)   # the streams restarted at the top of the corpus
        (logits, statesT), cache = model.forward(batch.x, carry)
        loss, ce_cache = self.ce.forward(logits, batch.y)
        model.backward((self.ce.backward(1.0, ce_cache), None), cache)
        return StepOutput(loss, batch.y.size, cache.rnn, statesT)

    def carry_arrays(self, carry: list) -> tuple[dict[str, np.ndarray], Any]:
        return snapshot.pack_carry(carry)

    def load_carry(self, arrays: dict[str, np.ndarray], skeleton: Any, model: CharRNN) -> list:
        return snapshot.unpack_carry(arrays, skeleton, self.cfg.num_layers)

    # -- evaluation -----------------------------------------------------------------------
    def evaluate(self, model: CharRNN, should_stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
        nats = evaluate(model, self.val_ids, self.cfg.batch_size, self.cfg.seq_len, self.cfg.eval_chars,
                        should_stop, progress)
        return {"loss": nats, "bpc": nats / LN2}

    def describe_eval(self, metrics: dict[str, float]) -> str:
        return f"validation {metrics['bpc']:.4f} bits/char"

    def train_record(self, loss: float) -> dict[str, float]:
        return {"bpc": loss / LN2}


__all__ = ["CharLMTask", "evaluate", "model_config"]
