"""The same BiLSTM(-CRF) tagger written in PyTorch: the oracle of the parity test and the
benchmark's other side. nn.LSTM over packed sequences for the character and the word BiLSTMs,
the CRF's forward algorithm, gold score and Viterbi written in torch.

``TorchTagger.from_rnnlab(model)`` copies an rnnlab :class:`TaggerModel`'s weights (rnnlab
stores W as (in, out) and one LSTM bias; torch the transpose and two biases, the second 0).
With ``unique_chars=True`` the char BiLSTM runs once per distinct spelling of the batch, as
rnnlab's does; False runs it over every token (the parity test: the results must agree).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def _lstm_from(fwd, bwd=None) -> nn.LSTM:
    """A bidirectional nn.LSTM from rnnlab cells [(fwd, bwd) per layer]."""
    cells = fwd if isinstance(fwd, list) else [(fwd, bwd)]
    D, H = cells[0][0].params["W_x"].shape[0], cells[0][0].hidden_size
    lstm = nn.LSTM(D, H, num_layers=len(cells), bidirectional=True, batch_first=True,
                   dtype=torch.float64 if cells[0][0].params["W_x"].dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for k, pair in enumerate(cells):
            for cell, suffix in zip(pair, ("", "_reverse")):
                getattr(lstm, f"weight_ih_l{k}{suffix}").copy_(torch.from_numpy(cell.params["W_x"].T.copy()))
                getattr(lstm, f"weight_hh_l{k}{suffix}").copy_(torch.from_numpy(cell.params["W_h"].T.copy()))
                getattr(lstm, f"bias_ih_l{k}{suffix}").copy_(torch.from_numpy(cell.params["b"].copy()))
                getattr(lstm, f"bias_hh_l{k}{suffix}").zero_()
    return lstm


def _linear_from(layer) -> nn.Linear:
    W = layer.params["W"]
    lin = nn.Linear(W.shape[0], W.shape[1], dtype=torch.from_numpy(W).dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(W.T.copy()))
        lin.bias.copy_(torch.from_numpy(layer.params["b"].copy()))
    return lin


def _embedding_from(emb) -> nn.Embedding:
    return nn.Embedding.from_pretrained(torch.from_numpy(emb.params["W"].copy()), freeze=False)


class TorchCRF(nn.Module):
    def __init__(self, crf) -> None:
        super().__init__()
        self.transitions = nn.Parameter(torch.from_numpy(crf.params["transitions"].copy()))
        self.start = nn.Parameter(torch.from_numpy(crf.params["start"].copy()))
        self.end = nn.Parameter(torch.from_numpy(crf.params["end"].copy()))

    def nll(self, em: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, K = em.shape
        live = torch.arange(T)[None, :] < lengths[:, None]
        alpha = self.start + em[:, 0]
        for t in range(1, T):
            nxt = torch.logsumexp(alpha[:, :, None] + self.transitions, dim=1) + em[:, t]
            alpha = torch.where(live[:, t, None], nxt, alpha)
        log_z = torch.logsumexp(alpha + self.end, dim=1)
        rows = torch.arange(B)
        score = self.start[tags[:, 0]] + (em.gather(2, tags[:, :, None])[:, :, 0] * live).sum(1)
        score = score + (self.transitions[tags[:, :-1], tags[:, 1:]] * live[:, 1:]).sum(1)
        score = score + self.end[tags[rows, lengths - 1]]
        return (log_z - score).mean()

    @torch.no_grad()
    def decode(self, em: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        B, T, K = em.shape
        delta, back = self.start + em[:, 0], []
        for t in range(1, T):
            best, arg = (delta[:, :, None] + self.transitions).max(dim=1)
            delta = torch.where((t < lengths)[:, None], best + em[:, t], delta)
            back.append(arg)
        last = (delta + self.end).argmax(1).tolist()
        paths = []
        for b in range(B):
            path = [last[b]]
            for t in range(int(lengths[b]) - 1, 0, -1):
                path.append(int(back[t - 1][b, path[-1]]))
            paths.append(path[::-1])
        return paths


class TorchTagger(nn.Module):
    def __init__(self, model, unique_chars: bool = True) -> None:
        super().__init__()
        self.unique_chars, self.use_chars, self.use_crf = unique_chars, model.use_chars, model.use_crf
        self.word, self.case = _embedding_from(model.word), _embedding_from(model.case)
        self.feats = nn.ModuleList([_embedding_from(f) for f in model.feats])
        if model.use_chars:
            self.char = _embedding_from(model.char)
            self.char_lstm = _lstm_from(model.char_fwd.cell, model.char_bwd.cell)
        layers = [(layer.fwd.cell, layer.bwd.cell) for layer in model.rnn.layers]
        self.rnn = _lstm_from(layers)
        self.p = model.spec["dropout"]
        self.drop = nn.Dropout(self.p)
        self.out = _linear_from(model.out)
        if model.use_crf:
            self.crf = TorchCRF(model.crf)

    def emissions(self, batch) -> torch.Tensor:
        words, lengths = torch.from_numpy(batch.words), torch.from_numpy(np.asarray(batch.lengths))
        mask = torch.from_numpy(np.asarray(batch.mask))
        parts = [self.word(words), self.case(torch.from_numpy(batch.cases))]
        parts += [f(torch.from_numpy(np.ascontiguousarray(batch.features[..., k]))) for k, f in enumerate(self.feats)]
        if self.use_chars:
            rows = batch.chars[np.asarray(batch.mask)]
            lens = batch.char_lengths[np.asarray(batch.mask)]
            inverse = None
            if self.unique_chars:
                rows, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
                lens = lens[first]
            packed = pack_padded_sequence(self.char(torch.from_numpy(rows)), torch.from_numpy(lens),
                                          batch_first=True, enforce_sorted=False)
            _, (h, _) = self.char_lstm(packed)
            rep = torch.cat([h[0], h[1]], dim=1)
            if inverse is not None:
                rep = rep[torch.from_numpy(inverse.reshape(-1))]
            full = torch.zeros(mask.shape + (rep.shape[1],), dtype=rep.dtype)
            full = full.masked_scatter(mask[..., None], rep)
            parts.append(full)
        if getattr(batch, "lm", None) is not None:  # frozen char-LM features: an input, concatenated last
            lm = batch.lm if isinstance(batch.lm, torch.Tensor) else torch.from_numpy(np.asarray(batch.lm))
            parts.append(lm.to(parts[0].dtype))
        x = self.drop(torch.cat(parts, dim=-1))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = self.rnn(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.shape[1])
        self.h = h   # the BiLSTM's output before dropout (the word-LM objective reads it)
        return self.out(self.drop(h))

    def loss(self, em: torch.Tensor, batch) -> torch.Tensor:
        tags, lengths = torch.from_numpy(batch.tags), torch.from_numpy(np.asarray(batch.lengths))
        if self.use_crf:
            return self.crf.nll(em, tags, lengths)
        mask = torch.from_numpy(np.asarray(batch.mask))
        logp = torch.log_softmax(em, dim=-1).gather(2, tags[:, :, None])[:, :, 0]
        return -(logp * mask).sum() / mask.sum()

    @torch.no_grad()
    def predict(self, batch) -> list[list[int]]:
        em = self.emissions(batch)
        lengths = torch.from_numpy(np.asarray(batch.lengths))
        if self.use_crf:
            return self.crf.decode(em, lengths)
        best = em.argmax(-1)
        return [best[b, :int(n)].tolist() for b, n in enumerate(lengths)]


def grads_as_rnnlab(tm: TorchTagger, model) -> dict[str, np.ndarray]:
    """torch's gradients under rnnlab's parameter names and layouts."""
    out = {"word.W": tm.word.weight.grad, "case.W": tm.case.weight.grad, "out.W": tm.out.weight.grad.T,
           "out.b": tm.out.bias.grad}
    out.update({f"feat{k}.W": f.weight.grad for k, f in enumerate(tm.feats)})
    if tm.use_crf:
        out.update({"crf.transitions": tm.crf.transitions.grad, "crf.start": tm.crf.start.grad,
                    "crf.end": tm.crf.end.grad})
    lstms = [(tm.rnn, f"rnn.l{k}", k) for k in range(len(model.rnn.layers))]
    if tm.use_chars:
        out["char.W"] = tm.char.weight.grad
    for lstm, prefix, k in lstms:
        for direction, suffix in (("fwd", ""), ("bwd", "_reverse")):
            out[f"{prefix}.{direction}.cell.W_x"] = getattr(lstm, f"weight_ih_l{k}{suffix}").grad.T
            out[f"{prefix}.{direction}.cell.W_h"] = getattr(lstm, f"weight_hh_l{k}{suffix}").grad.T
            out[f"{prefix}.{direction}.cell.b"] = getattr(lstm, f"bias_ih_l{k}{suffix}").grad
    if tm.use_chars:
        for name, suffix in (("char_fwd", ""), ("char_bwd", "_reverse")):
            out[f"{name}.cell.W_x"] = getattr(tm.char_lstm, f"weight_ih_l0{suffix}").grad.T
            out[f"{name}.cell.W_h"] = getattr(tm.char_lstm, f"weight_hh_l0{suffix}").grad.T
            out[f"{name}.cell.b"] = getattr(tm.char_lstm, f"bias_ih_l0{suffix}").grad
    return {k: v.detach().numpy() for k, v in out.items()}
