"""``rnnlab sample``: streaming output, seeds, greedy/beam, clear errors."""
from rnnlab import generate
from rnnlab.api import load_run
from rnnlab.cli import main


def _sample(capsys, *args):
    code = main(["sample", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_sample_prints_the_prime_and_the_continuation(tiny_run, capsys):
    code, out, err = _sample(capsys, tiny_run, "--prime", "the ", "--length", 80, "--seed", 3)
    assert code == 0
    assert out.startswith("the ") and len(out) == 4 + 80
    assert "chars/s" in err
    loaded = load_run(tiny_run)
    assert out[4:] == generate.sample(loaded.model, loaded.vocab, "the ", 80, seed=3)


def test_same_seed_same_text(tiny_run, capsys):
    a = _sample(capsys, tiny_run, "--length", 60, "--seed", 11, "--temperature", 1.5)[1]
    b = _sample(capsys, tiny_run, "--length", 60, "--seed", 11, "--temperature", 1.5)[1]
    c = _sample(capsys, tiny_run, "--length", 60, "--seed", 12, "--temperature", 1.5)[1]
    assert a == b != c


def test_argmax_top_k_and_beam(tiny_run, capsys):
    greedy = _sample(capsys, tiny_run, "--prime", "a", "--length", 30, "--argmax")[1]
    assert _sample(capsys, tiny_run, "--prime", "a", "--length", 30, "--top-k", 1, "--seed", 2)[1] == greedy
    code, beam1, err = _sample(capsys, tiny_run, "--prime", "a", "--length", 30, "--beam", 1)
    assert code == 0 and beam1 == greedy and "log-probability" in err
    code, beam4, _ = _sample(capsys, tiny_run, "--prime", "a", "--length", 30, "--beam", 4, "--checkpoint", "last")
    assert code == 0 and len(beam4) == 31


def test_unknown_prime_characters_exit_2_with_their_names(tiny_run, capsys):
    code, out, err = _sample(capsys, tiny_run, "--prime", "hé!", "--length", 5)
    assert code == 2 and out == ""
    assert err.startswith("error: prime text") and "'é'" in err and "'!'" in err


def test_missing_run_is_a_clear_error(tmp_path, capsys):
    code, _, err = _sample(capsys, tmp_path / "nope")
    assert code == 2 and "no such run" in err
