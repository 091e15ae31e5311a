"""Sequence tagging: CoNLL data, BIO/BIOES schemes, entity metrics, BiLSTM-CRF tagger."""
