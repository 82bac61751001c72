"""Leave-one-domain-out domain adaptation on VADER: none vs MMD vs DANN, several seeds.

For each held-out domain: train the score head on the other three domains' train texts (labelled
source), with that domain's train texts as unlabelled target rows (their scores are dropped), and
score its test split. Reports Pearson r on the held-out test rows per seed, the mean, the r of the
seed-averaged prediction with a 95% bootstrap interval, and the paired-bootstrap interval of its
difference to ``none``.

The rows are text-only, so the model is the ``small`` config's text side (MiniLM's first 3 pretrained
layers, 128-wide fusion, score head) with the tiny CNN at 64 px behind the blank image it sees
(``--image-side``): the image tower does nothing for these rows, and Lite0 at 256 px would cost most
of each step.

    python benchmarks/bench_domain_adapt.py --domains movies --steps 40 --lr 5e-4 --max-length 32 \
        --seeds 0 1 2 --threads 1 --tag movies
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.train.metrics import pearson  # noqa: E402

DOMAINS = ("tweets", "movies", "amazon", "nyt")
METHODS = ("none", "mmd", "dann")


def text_config(image_side: int, max_length: int):
    from edge_clipguard.config import ImageEncoderConfig, load_config

    cfg = load_config("small")
    return dataclasses.replace(
        cfg, name="small-text", image_size=image_side, text=dataclasses.replace(cfg.text, max_length=max_length),
        image=ImageEncoderConfig(kind="simple_cnn", pretrained=False, widths=(8, 16, 24, 32)))


def bootstrap_r(pred: np.ndarray, truth: np.ndarray, n: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    rs = [pearson(pred[i], truth[i]) for i in (rng.integers(0, len(truth), len(truth)) for _ in range(n))]
    return float(np.nanpercentile(rs, 2.5)), float(np.nanpercentile(rs, 97.5))


def stratified(rows: list, count: int, seed: int) -> list:
    if count <= 0 or count >= len(rows):
        return rows
    rng = np.random.default_rng(seed)
    return [rows[i] for i in sorted(rng.choice(len(rows), count, replace=False))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS, help="held-out domains to run")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--source-rows", type=int, default=1920, help="labelled rows from the three source domains")
    p.add_argument("--target-rows", type=int, default=1024, help="unlabelled rows of the held-out domain's train split")
    p.add_argument("--domain-weight", type=float, default=1.0)
    p.add_argument("--image-side", type=int, default=64)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tag", default="")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from edge_clipguard.data.dataset import ManifestDataset
    from edge_clipguard.model import build_model
    from edge_clipguard.text.tokenizer import default_tokenizer
    from edge_clipguard.train.clipping import ClipConfig
    from edge_clipguard.train.domain_adapt import DomainAdapter
    from edge_clipguard.train.losses import DEFAULT_WEIGHTS
    from edge_clipguard.train.trainer import TrainerConfig

    env = C.environment()
    cfg = text_config(args.image_side, args.max_length)
    tokenizer = default_tokenizer(cfg.text.max_length)
    train_all, val_all, test_all = (C.vader_rows(s) for s in ("train", "val", "test"))
    print(f"CPU: {env.get('cpu')}, {torch.get_num_threads()} threads; model '{cfg.name}'; {args.steps} steps x "
          f"batch {args.batch_size}; seeds {args.seeds}")
    work = Path("/tmp/ecg_bench_da")
    out = C.RESULTS_DIR / f"bench_domain_adapt{('_' + args.tag) if args.tag else ''}.json"
    results: dict = {"args": vars(args), "environment": env, "runs": []}
    started = time.perf_counter()
    for held in args.domains:
        source = stratified([r for r in train_all if r.domain != held], args.source_rows, 0)
        target = [dataclasses.replace(r, score=None)
                  for r in stratified([r for r in train_all if r.domain == held], args.target_rows, 0)]
        val = stratified([r for r in val_all if r.domain != held], 64, 0)
        test = [r for r in test_all if r.domain == held]
        truth = np.array([r.score for r in test], dtype=np.float64)
        data = C.BenchData(train=source, val=val, test_vader=test, test_scenes=[])
        source_set, val_set, target_set = (ManifestDataset(rows, tokenizer, cfg.image_size, cfg.resize)
                                           for rows in (source, val, target))
        sets = (source_set, val_set)
        for method in args.methods:
            for seed in args.seeds:
                torch.manual_seed(seed)
                model = build_model(cfg)
                tcfg = TrainerConfig(epochs=10_000, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                     warmup_steps=max(1, args.steps // 10), seed=seed, progress=False,
                                     clip=ClipConfig(mode="norm"),
                                     loss_weights={**DEFAULT_WEIGHTS, "domain": args.domain_weight})
                extra = ({} if method == "none" else
                         {"domain_adapter": DomainAdapter(method, cfg.fusion.dim), "target_set": target_set})
                run = C.train(model, cfg, tokenizer, data, tcfg, work / f"{held}_{method}_{seed}", save=False,
                            sets=sets, **extra)
                pred = C.evaluate_text(model.eval(), tokenizer, test, 128, "cpu")
                r = pearson(pred, truth)
                results["runs"].append({"held_out": held, "method": method, "seed": seed, "r": r,
                                        "train_seconds": run.seconds, "pred": pred.tolist(),
                                        "final_domain": run.rows[-1].get("domain")})
                print(f"  {held:<7} {method:<5} seed {seed}: r {r:.3f}  ({run.seconds:.0f}s train, "
                      f"{time.perf_counter() - started:.0f}s total)", flush=True)
                results.setdefault("truth", {})[held] = truth.tolist()
                C.write_json(out, results)  # after every run: a stopped grid keeps what it measured
    rows = []
    for held in args.domains:
        truth = np.array(results["truth"][held])
        ens = {}
        for method in args.methods:
            runs = [x for x in results["runs"] if x["held_out"] == held and x["method"] == method]
            ens[method] = np.mean([x["pred"] for x in runs], axis=0)
            rs = [x["r"] for x in runs]
            lo, hi = bootstrap_r(ens[method], truth)
            diff = C.bootstrap_diff(ens[method], ens["none"], truth) if method != "none" and "none" in ens else None
            r_ens = pearson(ens[method], truth)
            row = {"held_out": held, "method": method, "rows": len(truth), "r_per_seed": rs,
                   "r_mean": float(np.mean(rs)), "r_sd": float(np.std(rs, ddof=1)) if len(rs) > 1 else 0.0,
                   "r_seed_mean_pred": r_ens, "r_ci95": [lo, hi],
                   "diff_vs_none": r_ens - pearson(ens["none"], truth) if diff else None,
                   "diff_vs_none_ci95": list(diff) if diff else None}
            rows.append(row)
    results["summary"] = rows
    def interval(value, ci) -> str:
        return "-" if value is None else f"{C.fmt(value)} [{C.fmt(ci[0])}, {C.fmt(ci[1])}]"

    print(C.table(["held out", "method", "rows", "r per seed", "mean r ± sd", "r (seed-mean pred) [95% CI]",
                 "Δr vs none [95% CI]"],
                [[r["held_out"], r["method"], r["rows"], " ".join(C.fmt(v) for v in r["r_per_seed"]),
                  f"{C.fmt(r['r_mean'])} ± {C.fmt(r['r_sd'])}",
                  interval(r["r_seed_mean_pred"], r["r_ci95"]), interval(r["diff_vs_none"], r["diff_vs_none_ci95"])]
                 for r in rows]))
    print(f"wall {time.perf_counter() - started:.0f}s; CPU: {env.get('cpu')}")
    print(f"json: {C.write_json(out, results)}")


if __name__ == "__main__":
    main()
