"""Bad input through every rnnlab subcommand, as a user meets it: a verdict per case.

    python tests/commands/bad_input_sweep.py [WORKDIR] [REGEX]

Builds a tiny char-LM, tagger and forecaster run in WORKDIR (default: a new temporary folder; a
WORKDIR kept from an earlier call is reused), generates bad inputs (empty, binary, non-UTF-8, a
folder, a missing path; ragged, non-numeric, NaN/inf, one-row and header-only CSV; CoNLL with the
wrong columns, no blank lines, empty or foreign tags; truncated, garbage, pickled and foreign .npz;
run folders with damaged config.json; the runs of the other tasks) and runs every subcommand that
reads such a file, and every --out/--output that could land in an existing run, in a subprocess.
Cases whose name matches REGEX only, if given. Prints one line per case:

    TRACEBACK     a Python traceback reached the user
    UNCLEAR       a non-zero exit without exactly one 'error:' line
    MODIFIED-RUN  one of the three runs changed (expected only for --resume of a run of that task)
    ok-rc0        accepted (read the message: some inputs are fine, e.g. an empty TOML file)
    one-line      refused with one 'error:' line

and writes WORKDIR/results.json. The cases it found are tests in tests/commands/test_bad_input.py;
this sweep is the wider net, too slow for every test run (about 360 processes, ~10 min).
"""
import json, os, re, shutil, subprocess, sys, tempfile, zipfile, time
from pathlib import Path
import numpy as np

SRC = str(Path(__file__).resolve().parents[2] / "src")
ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="rnnlab-bad-input-")).resolve()
only = sys.argv[2] if len(sys.argv) > 2 else None
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "XDG_CACHE_HOME": str(ROOT / "xdg"), "RNNLAB_BLAS_CACHE": "off", "MPLBACKEND": "Agg"}
PY = sys.executable

def rn(*args, timeout=300):
    r = subprocess.run([PY, "-m", "rnnlab", *map(str, args)], capture_output=True, text=True, env=ENV, timeout=timeout,
                       cwd=ROOT)
    return r

def setup():
    if (ROOT / "ready").exists():
        return
    ROOT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran\n"]
    (ROOT / "corpus.txt").write_text("".join(rng.choice(words, 3000)))
    r = rn("train", ROOT / "corpus.txt", "--out", ROOT / "lm", "--hidden-size", 16, "--batch-size", 4, "--seq-len", 16,
           "--max-steps", 4, "--eval-every", 2, "--num-layers", 1)
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, SRC)
    from rnnlab.tasks.tagging.data import write_conll
    from rnnlab.tasks.tagging.synthetic import synthetic_sentences
    for name, n, seed in (("train", 80, 1), ("dev", 20, 2), ("test", 20, 3)):
        write_conll(ROOT / f"{name}.tsv", synthetic_sentences(n, seed=seed))
    r = rn("tag", "train", "--train", ROOT / "train.tsv", "--dev", ROOT / "dev.tsv", "--test", ROOT / "test.tsv",
           "--out", ROOT / "tagrun", "--max-steps", 6, "--eval-every", 3, "--word-dim", 8, "--case-dim", 3,
           "--char-dim", 5, "--char-hidden", 4, "--hidden-size", 8, "--batch-size", 8, "--max-minutes", 0)
    assert r.returncode == 0, r.stderr
    # hourly series, long csv
    lines = ["series_id,timestamp,value"]
    t0 = np.datetime64("2024-01-01T00:00")
    for k in range(3):
        for i in range(300):
            lines.append(f"s{k},{str(t0 + np.timedelta64(i, 'h')).replace('T', ' ')},{10 + k + 3*np.sin(i/24*6.28) + 0.3*rng.standard_normal():.4f}")
    (ROOT / "series.csv").write_text("\n".join(lines) + "\n")
    r = rn("forecast", "train", ROOT / "series.csv", "--out", ROOT / "fcrun", "--holdout", 72, "--window", 48,
           "--horizon", 24, "--hidden-size", 6, "--batch-size", 8, "--max-steps", 6, "--max-minutes", 0, "--eval-every", 3)
    assert r.returncode == 0, r.stderr
    det = ["timestamp,value"] + [f"{str(t0 + np.timedelta64(5*i, 'm')).replace('T', ' ')}:00,{np.sin(i/5):.4f}" for i in range(400)]
    (ROOT / "det.csv").write_text("\n".join(det) + "\n")
    (ROOT / "ready").write_text("")

def inputs():
    d = ROOT / "bad"; shutil.rmtree(d, ignore_errors=True); d.mkdir()
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.bin").write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)))
    (d / "latin1.txt").write_bytes("caf\xe9 na\xefve r\xe9sum\xe9\n".encode("latin-1") * 50)
    (d / "adir").mkdir()
    (d / "ragged.csv").write_text("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 01:00,2,3\n2024-01-01 02:00\n")
    (d / "nonnum.csv").write_text("timestamp,value\n" + "".join(f"2024-01-01 {h:02d}:00,abc\n" for h in range(24)))
    (d / "nan.csv").write_text("timestamp,value\n" + "".join(f"2024-01-01 {h:02d}:00,{'nan' if h % 5 == 0 else h}\n" for h in range(24)))
    (d / "inf.csv").write_text("timestamp,value\n" + "".join(f"2024-01-01 {h:02d}:00,{'inf' if h == 7 else h}\n" for h in range(24)))
    (d / "onerow.csv").write_text("timestamp,value\n2024-01-01 00:00,1\n")
    (d / "header.csv").write_text("timestamp,value\n")
    (d / "noheader.csv").write_text("".join(f"2024-01-01 {h:02d}:00,{h}\n" for h in range(24)))
    (d / "cols3.tsv").write_text("John\tNNP\tB-PER\textra\nruns\tVBZ\tO\n\n")
    (d / "noblank.tsv").write_text("".join(f"w{i}\tO\n" for i in range(5000)))
    (d / "emptytag.tsv").write_text("John\t\nruns\tO\n\n")
    (d / "onecol.tsv").write_text("John\nruns\n\n")
    (d / "badtag.tsv").write_text("John\tX-PER\nruns\tO\n\n")
    best = (ROOT / "lm" / "best.npz").read_bytes()
    (d / "trunc.npz").write_bytes(best[: len(best) // 2])
    (d / "garbage.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    np.savez(d / "hostile.npz", a=np.array([{"x": 1}], dtype=object))
    np.savez(d / "otherkeys.npz", w=np.zeros(3))
    # a zip whose members claim a huge shape
    with zipfile.ZipFile(d / "bigshape.npz", "w") as z:
        hdr = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000,), }"
        hdr = hdr + b" " * (118 - len(hdr)) + b"\n"
        z.writestr("x.npy", b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr + b"\x00" * 16)
    # a run folder with a bad config.json
    for name, cfg in (("badcfg", "{not json"), ("emptycfg", ""), ("listcfg", "[1,2]")):
        r = d / name; r.mkdir(); shutil.copy(ROOT / "lm" / "best.npz", r / "best.npz"); (r / "config.json").write_text(cfg)
    r = d / "nocfg"; r.mkdir(); shutil.copy(ROOT / "lm" / "best.npz", r / "best.npz")
    r = d / "nobest"; r.mkdir(); shutil.copy(ROOT / "lm" / "config.json", r / "config.json")
    (d / "badmetrics").mkdir(); (d / "badmetrics" / "metrics.jsonl").write_text('{"step": 1, "train_loss"\n')
    (d / "notpt.pt").write_bytes(b"garbage" * 100)
    (d / "badspace.toml").write_text("[[[ not toml")
    (d / "emptyspace.toml").write_text("")
    corpus = ROOT / "corpus.txt"
    (d / "space.toml").write_text(f'task = "train"\nn_trials = 1\n[fixed]\ntext = "{corpus}"\n'
                                  'max_steps = 2\n[space]\nlr = { type = "float", low = 1e-4, high = 1e-2 }\n')
    (d / "badcfg.toml").write_text("hidden_size = [1,2]\n")
    # nab folder missing labels
    (d / "nab" / "data" / "g").mkdir(parents=True); shutil.copy(ROOT / "det.csv", d / "nab" / "data" / "g" / "a.csv")
    return d

def cases(b):
    R = ROOT
    LM, TAG, FC = R / "lm", R / "tagrun", R / "fcrun"
    files = {"empty": b / "empty.txt", "binary": b / "binary.bin", "latin1": b / "latin1.txt", "dir": b / "adir",
             "missing": b / "nope.txt"}
    csvs = {"ragged": b / "ragged.csv", "nonnum": b / "nonnum.csv", "nan": b / "nan.csv", "inf": b / "inf.csv",
            "onerow": b / "onerow.csv", "header": b / "header.csv", "noheader": b / "noheader.csv"}
    conlls = {"cols3": b / "cols3.tsv", "noblank": b / "noblank.tsv", "emptytag": b / "emptytag.tsv",
              "onecol": b / "onecol.tsv", "badtag": b / "badtag.tsv"}
    npzs = {"trunc": b / "trunc.npz", "garbage": b / "garbage.npz", "hostile": b / "hostile.npz",
            "otherkeys": b / "otherkeys.npz", "bigshape": b / "bigshape.npz", "badcfg": b / "badcfg",
            "emptycfg": b / "emptycfg", "listcfg": b / "listcfg", "nocfg": b / "nocfg", "nobest": b / "nobest"}
    runs = {"lm": LM, "tag": TAG, "fc": FC}
    tiny_lm = ["--hidden-size", 8, "--batch-size", 2, "--seq-len", 8, "--max-steps", 2, "--eval-every", 1]
    tiny_tag = ["--max-steps", 2, "--eval-every", 1, "--word-dim", 4, "--case-dim", 2, "--char-dim", 2,
                "--char-hidden", 2, "--hidden-size", 4, "--batch-size", 4, "--max-minutes", 0]
    tiny_fc = ["--window", 48, "--horizon", 24, "--hidden-size", 4, "--batch-size", 4, "--max-steps", 2,
               "--max-minutes", 0, "--eval-every", 1]
    fast_det = ["--window", 8, "--hidden", 4, "--epochs", 1, "--long", 200]
    out = lambda tag: b / f"out-{tag}"
    C = []
    for k, f in {**files}.items():
        C.append((f"train text {k}", ["train", f, "--out", out(f"tr{k}"), *tiny_lm]))
        C.append((f"eval --text {k}", ["eval", LM, "--text", f]))
        C.append((f"sample run={k}", ["sample", f, "--length", 5]))
        C.append((f"eval run={k}", ["eval", f, "--split", "val"]))
        C.append((f"export run={k}", ["export", f, "--torch", out(f"ex{k}.pt")]))
        C.append((f"import {k}", ["import", f, "--out", out(f"im{k}")]))
        C.append((f"plot run={k}", ["plot", f, "--out", out(f"pl{k}.png")]))
        C.append((f"tag train --train {k}", ["tag", "train", "--train", f, "--dev", R / "dev.tsv", "--out", out(f"tt{k}"), *tiny_tag]))
        C.append((f"tag train --dev {k}", ["tag", "train", "--train", R / "train.tsv", "--dev", f, "--out", out(f"td{k}"), *tiny_tag]))
        C.append((f"tag eval --data {k}", ["tag", "eval", TAG, "--data", f]))
        C.append((f"tag eval run={k}", ["tag", "eval", f]))
        C.append((f"tag predict input {k}", ["tag", "predict", TAG, f]))
        C.append((f"tag predict run={k}", ["tag", "predict", f, R / "corpus.txt"]))
        C.append((f"forecast train {k}", ["forecast", "train", f, "--out", out(f"ft{k}"), *tiny_fc]))
        C.append((f"forecast predict csv {k}", ["forecast", "predict", FC, f, "--out", out(f"fp{k}.csv")]))
        C.append((f"forecast predict run={k}", ["forecast", "predict", f, R / "series.csv", "--out", out(f"fq{k}.csv")]))
        C.append((f"forecast eval --series {k}", ["forecast", "eval", FC, "--series", f]))
        C.append((f"forecast eval run={k}", ["forecast", "eval", f, "--series", R / "series.csv"]))
        C.append((f"detect run {k}", ["detect", "run", f, "--out", out(f"dr{k}"), *fast_det]))
        C.append((f"detect run --labels {k}", ["detect", "run", R / "det.csv", "--labels", f, "--out", out(f"dl{k}"), *fast_det]))
        C.append((f"detect run --thresholds {k}", ["detect", "run", R / "det.csv", "--thresholds", f, "--out", out(f"dh{k}"), *fast_det]))
        C.append((f"detect nab {k}", ["detect", "nab", f, "--out", out(f"dn{k}"), *fast_det]))
        C.append((f"sweep {k}", ["sweep", f, "--out", out(f"sw{k}")]))
        C.append((f"train --config {k}", ["train", R / "corpus.txt", "--config", f, "--out", out(f"tc{k}"), *tiny_lm]))
        C.append((f"train --resume {k}", ["train", "--resume", f]))
        C.append((f"tag train --resume {k}", ["tag", "train", "--resume", f]))
        C.append((f"forecast train --resume {k}", ["forecast", "train", "--resume", f]))
        C.append((f"forecast train --init {k}", ["forecast", "train", R / "series.csv", "--init", f, "--out", out(f"fi{k}"), *tiny_fc]))
        C.append((f"tag train --vectors {k}", ["tag", "train", "--train", R / "train.tsv", "--dev", R / "dev.tsv", "--vectors", f, "--out", out(f"tv{k}"), *tiny_tag]))
        C.append((f"tag train --lm {k}", ["tag", "train", "--train", R / "train.tsv", "--dev", R / "dev.tsv", "--lm", f, "--out", out(f"tl{k}"), *tiny_tag]))
        C.append((f"tag train --lm-text {k}", ["tag", "train", "--train", R / "train.tsv", "--dev", R / "dev.tsv", "--lm-text", f, "--lm-steps", 2, "--out", out(f"tx{k}"), *tiny_tag]))
        C.append((f"experiment --corpus {k}", ["experiment", "charlm", "--quick", "--corpus", f, "--out", out(f"xc{k}")]))
    for k, f in csvs.items():
        C.append((f"forecast train csv {k}", ["forecast", "train", f, "--out", out(f"ftc{k}"), *tiny_fc]))
        C.append((f"forecast predict csv {k}", ["forecast", "predict", FC, f, "--out", out(f"fpc{k}.csv")]))
        C.append((f"forecast eval --series csv {k}", ["forecast", "eval", FC, "--series", f]))
        C.append((f"detect run csv {k}", ["detect", "run", f, "--out", out(f"drc{k}"), *fast_det]))
    for k, f in conlls.items():
        C.append((f"tag train conll {k}", ["tag", "train", "--train", f, "--dev", R / "dev.tsv", "--out", out(f"ttc{k}"), *tiny_tag]))
        C.append((f"tag eval conll {k}", ["tag", "eval", TAG, "--data", f]))
    for k, f in npzs.items():
        C.append((f"sample npz {k}", ["sample", f, "--length", 5]))
        C.append((f"eval npz {k}", ["eval", f, "--split", "val"]))
        C.append((f"export npz {k}", ["export", f, "--torch", out(f"exn{k}.pt")]))
        C.append((f"tag eval npz {k}", ["tag", "eval", f]))
        C.append((f"forecast predict npz {k}", ["forecast", "predict", f, R / "series.csv", "--out", out(f"fpn{k}.csv")]))
        C.append((f"train --resume npz {k}", ["train", "--resume", f]))
        C.append((f"forecast train --init npz {k}", ["forecast", "train", R / "series.csv", "--init", f, "--out", out(f"fin{k}"), *tiny_fc]))
        C.append((f"tag train --lm npz {k}", ["tag", "train", "--train", R / "train.tsv", "--dev", R / "dev.tsv", "--lm", f, "--out", out(f"tln{k}"), *tiny_tag]))
    C.append(("import notpt", ["import", b / "notpt.pt", "--out", out("imnp")]))
    C.append(("plot badmetrics", ["plot", b / "badmetrics"]))
    C.append(("sweep badspace", ["sweep", b / "badspace.toml", "--out", out("swb")]))
    C.append(("sweep emptyspace", ["sweep", b / "emptyspace.toml", "--out", out("swe")]))
    C.append(("train --config badcfg", ["train", R / "corpus.txt", "--config", b / "badcfg.toml", "--out", out("tcb")]))
    C.append(("detect nab no labels", ["detect", "nab", b / "nab", "--out", out("dnl"), *fast_det]))
    # other task's run
    for verb, mk in (("sample", lambda r: ["sample", r, "--length", 5]), ("eval", lambda r: ["eval", r, "--split", "val"]),
                     ("export", lambda r: ["export", r, "--torch", out("x.pt")]), ("tag eval", lambda r: ["tag", "eval", r]),
                     ("tag predict", lambda r: ["tag", "predict", r, R / "corpus.txt"]),
                     ("forecast predict", lambda r: ["forecast", "predict", r, R / "series.csv", "--out", out("fx.csv")]),
                     ("forecast eval", lambda r: ["forecast", "eval", r, "--series", R / "series.csv"]),
                     ("train --resume", lambda r: ["train", "--resume", r]),
                     ("tag train --resume", lambda r: ["tag", "train", "--resume", r]),
                     ("forecast train --resume", lambda r: ["forecast", "train", "--resume", r]),
                     ("forecast train --init", lambda r: ["forecast", "train", R / "series.csv", "--init", r, "--out", out("fxi"), *tiny_fc]),
                     ("tag train --lm", lambda r: ["tag", "train", "--train", R / "train.tsv", "--dev", R / "dev.tsv", "--lm", r, "--out", out("txl"), *tiny_tag]),
                     ("plot", lambda r: ["plot", r, "--out", out("p.png")])):
        for k, r in runs.items():
            C.append((f"{verb} run of {k}", mk(r)))
    # outputs that are existing runs
    for k, r in runs.items():
        C.append((f"train --out existing {k}", ["train", R / "corpus.txt", "--out", r, *tiny_lm]))
        C.append((f"tag train --out existing {k}", ["tag", "train", "--train", R / "train.tsv", "--dev", R / "dev.tsv", "--out", r, *tiny_tag]))
        C.append((f"forecast train --out existing {k}", ["forecast", "train", R / "series.csv", "--out", r, *tiny_fc]))
        C.append((f"import --out existing {k}", ["import", R / "lm.pt", "--out", r]))
        C.append((f"detect run --out existing {k}", ["detect", "run", R / "det.csv", "--out", r, *fast_det]))
        C.append((f"detect nab --out existing {k}", ["detect", "nab", b / "nab", "--out", r, *fast_det]))
        C.append((f"experiment --out existing {k}", ["experiment", "adding", "--quick", "--out", r]))
        C.append((f"sweep --out existing {k}", ["sweep", b / "space.toml", "--out", r]))
        C.append((f"tag eval --output existing {k}", ["tag", "eval", TAG, "--output", r]))
        C.append((f"forecast predict --out existing {k}", ["forecast", "predict", FC, R / "series.csv", "--out", r]))
        C.append((f"export --torch existing run dir {k}", ["export", LM, "--torch", r]))
        C.append((f"plot --out existing run dir {k}", ["plot", LM, "--out", r]))
    return C

def snapshot(p):
    """A run folder's files and their modification times (its lock file aside: refusing touches it)."""
    p = Path(p)
    return sorted((str(q.relative_to(p)), q.stat().st_mtime_ns) for q in p.rglob("*")
                  if q.is_file() and q.name != ".rnnlab.lock")


def main():
    setup()
    if not (ROOT / "lm.pt").exists():
        rn("export", ROOT / "lm", "--torch", ROOT / "lm.pt")
    b = inputs()
    results = []
    runs = [ROOT / "lm", ROOT / "tagrun", ROOT / "fcrun"]
    for name, argv in cases(b):
        if only and not re.search(only, name):
            continue
        before = [snapshot(r) for r in runs]
        t = time.time()
        try:
            r = rn(*argv, timeout=240)
            rc, err = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            rc, err = "TIMEOUT", ""
        changed = [str(rr.name) for rr, s in zip(runs, before) if snapshot(rr) != s]
        lines = [l for l in err.strip().splitlines() if l.strip()]
        errlines = [l for l in lines if l.startswith("error:")]
        if "Traceback" in err: verdict = "TRACEBACK"
        elif rc == "TIMEOUT": verdict = "TIMEOUT"
        elif changed: verdict = "MODIFIED-RUN"
        elif rc == 0: verdict = "ok-rc0"
        elif len(errlines) == 1: verdict = "one-line"
        else: verdict = "UNCLEAR"
        last = errlines[0] if errlines else (lines[-1] if lines else "")
        results.append({"name": name, "rc": rc, "verdict": verdict, "msg": last[:400], "changed": changed,
                        "secs": round(time.time() - t, 1), "argv": [str(a) for a in argv]})
        print(f"{verdict:12s} rc={rc} {name}: {last[:300]}", flush=True)
    Path(ROOT / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
