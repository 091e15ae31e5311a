"""BIO / BIOES / IOB1: validation, chunks, conversion both ways, well-formedness."""
import numpy as np
import pytest

from rnnlab.tasks.tagging.schemes import (Chunk, bio_to_bioes, bioes_to_bio, chunks, chunks_to_tags, convert,
                                          ill_formed, iob1_to_bio, is_valid_tag, normalize_scheme, split_tag,
                                          validate_tags)


def test_scheme_names_and_tag_validation():
    assert normalize_scheme("iob2") == "BIO" and normalize_scheme("IOBES") == "BIOES"
    assert normalize_scheme("iob1") == "IOB1"
    with pytest.raises(ValueError):
        normalize_scheme("BILOU")
    assert split_tag("B-gene-protein") == ("B", "gene-protein") and split_tag("O") == ("O", "")
    assert is_valid_tag("B-Disease", "BIO") and is_valid_tag("O", "BIOES")
    assert not is_valid_tag("E-NP", "BIO") and is_valid_tag("E-NP", "BIOES")
    assert not any(is_valid_tag(t, "BIO") for t in ("B-", "B", "X-NP", "o", "", "BB-NP", "I-NP "))
    validate_tags(["O", "B-X", "I-X"], "BIO")
    with pytest.raises(ValueError, match="position 1"):
        validate_tags(["O", "S-X"], "BIO")


def test_chunks_follow_conlleval():
    assert chunks(["B-PER", "I-PER", "O", "B-LOC"]) == [Chunk("PER", 0, 2), Chunk("LOC", 3, 4)]
    assert chunks(["O", "I-X", "I-X"]) == [Chunk("X", 1, 3)]             # I after O starts a chunk
    assert chunks(["B-X", "I-Y"]) == [Chunk("X", 0, 1), Chunk("Y", 1, 2)]  # type change
    assert chunks(["B-X", "B-X"]) == [Chunk("X", 0, 1), Chunk("X", 1, 2)]
    assert chunks(["S-X", "B-X", "I-X", "E-X", "E-X"]) == [Chunk("X", 0, 1), Chunk("X", 1, 4), Chunk("X", 4, 5)]
    assert chunks(["I-X", "I-X", "B-X", "O"]) == [Chunk("X", 0, 2), Chunk("X", 2, 3)]  # IOB1
    assert chunks([]) == [] and chunks(["O"]) == []


def test_bio_bioes_round_trip():
    bio = ["B-X", "I-X", "I-X", "O", "B-Y", "B-Y", "I-Y", "O", "B-X"]
    bioes = ["B-X", "I-X", "E-X", "O", "S-Y", "B-Y", "E-Y", "O", "S-X"]
    assert bio_to_bioes(bio) == bioes
    assert bioes_to_bio(bioes) == bio
    assert convert(bio, "IOB1") == ["I-X", "I-X", "I-X", "O", "I-Y", "B-Y", "I-Y", "O", "I-X"]
    assert iob1_to_bio(convert(bio, "IOB1")) == bio
    assert convert(bio, "BIOES", source="BIO") == bioes
    with pytest.raises(ValueError):
        convert(bioes, "BIO", source="BIO")


def test_ill_formed_sequences_are_repaired_as_the_metrics_read_them():
    assert bio_to_bioes(["O", "I-X", "I-X"]) == ["O", "B-X", "E-X"]
    assert convert(["B-X", "I-Y"], "BIO") == ["B-X", "B-Y"]
    assert bioes_to_bio(["B-X", "O"]) == ["B-X", "O"]


@pytest.mark.parametrize("seed", range(20))
def test_random_round_trips_preserve_chunks(seed):
    rng = np.random.default_rng(seed)
    tags = [str(rng.choice(["O", "B-A", "I-A", "B-B", "I-B"])) for _ in range(int(rng.integers(1, 30)))]
    bio = convert(tags, "BIO")  # repaired: now well formed
    assert ill_formed(bio, "BIO") == []
    bioes = bio_to_bioes(bio)
    assert ill_formed(bioes, "BIOES") == [] and all(is_valid_tag(t, "BIOES") for t in bioes)
    assert bioes_to_bio(bioes) == bio
    assert chunks(bioes) == chunks(bio) == chunks(convert(bio, "IOB1")) == chunks(tags)
    assert iob1_to_bio(convert(bio, "IOB1")) == bio


def test_ill_formed_positions():
    assert ill_formed(["I-X", "O"], "BIO") == [0]
    assert ill_formed(["B-X", "I-Y", "O", "I-X"], "BIO") == [1, 3]
    assert ill_formed(["B-X", "I-X"], "BIOES") == [1]       # must end with E-X
    assert ill_formed(["S-X", "E-X"], "BIOES") == [1]
    assert ill_formed(["B-X", "I-X", "E-X", "S-Y"], "BIOES") == []
    assert ill_formed([], "BIO") == []


def test_chunks_to_tags_checks_spans():
    assert chunks_to_tags([Chunk("X", 1, 2)], 3, "BIOES") == ["O", "S-X", "O"]
    with pytest.raises(ValueError):
        chunks_to_tags([Chunk("X", 2, 4)], 3)
