"""Accuracy benchmark: the model vs the VADER lexicon and single human raters, plus mAP vs text-masked.

    python benchmarks/bench_accuracy.py [--config tiny|base] [--steps 300] [--checkpoint CKPT]
        [--vader-test 0] [--test-scenes 256] [--out-dir benchmarks/results]

Trains a model (or takes ``--checkpoint``) and evaluates it on held-out data:
  * the VADER test split (text-only rows, seeded 80/10/10 split per domain; never trained on):
    per-domain Pearson r of the model's 0-10 score vs the human mean rating, next to
      - the VADER lexicon computed in this run on the same rows (``vaderSentiment``
        SentimentIntensityAnalyzer compound score; Pearson r is invariant to the data's linear map
        ``score = 1.25 * (rating + 4)``, so r vs the 0-10 target equals r vs the raw mean rating),
      - the peer figures the team measured on 2026-11-22 (VADER lexicon, and one human rater vs the others),
    with a 95% paired-bootstrap interval of r(model) - r(VADER) over rows; "beats VADER?" is
    "yes"/"no" by the point estimate and "(sig)" when the interval excludes 0;
  * the test scenes (images + VADER *test* sentences): pycocotools mAP50 / mAP50-95 and the
    text-masked ablation (same model, every text replaced by "": the box head must read the text to
    know which class to box, so mAP should drop).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from edge_clipguard.train.metrics import pearson  # noqa: E402

# Peer figures the team measured on 2026-11-22 (its design notes, outside this repo): Pearson r vs the human mean
# on the VADER sentences. The lexicon row is recomputed in every run on our test rows; these are for
# reference. The human row is one rater vs the mean of the others -- not recomputable here (the
# sdist ships only the means), so it is a constant.
DESIGN_VADER_R = {"tweets": 0.872, "movies": 0.427, "amazon": 0.590, "nyt": 0.503}
DESIGN_HUMAN_R = {"tweets": 0.863, "movies": 0.882, "amazon": 0.901, "nyt": 0.705}
DOMAINS = ("tweets", "movies", "amazon", "nyt")


def vader_lexicon(texts: list[str]) -> np.ndarray:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    return np.asarray([analyzer.polarity_scores(t)["compound"] for t in texts])


def score_table(model_scores, lexicon, rows, n_boot: int) -> tuple[list[list], dict]:
    truth = np.asarray([r.score for r in rows])
    domains = np.asarray([r.domain for r in rows])
    table, result = [], {}
    for domain in [*DOMAINS, "pooled"]:
        keep = np.ones(len(rows), bool) if domain == "pooled" else domains == domain
        if not keep.any():
            continue
        r_model = pearson(model_scores[keep], truth[keep])
        r_vader = pearson(lexicon[keep], truth[keep])
        lo, hi = C.bootstrap_diff(model_scores[keep], lexicon[keep], truth[keep], n_boot)
        beats = ("yes" if r_model > r_vader else "no") + (" (sig)" if lo > 0 or hi < 0 else "")
        human = DESIGN_HUMAN_R.get(domain)
        mae = float(np.abs(model_scores[keep] - truth[keep]).mean())
        result[domain] = {"n": int(keep.sum()), "model_r": r_model, "model_mae": mae, "vader_r": r_vader,
                          "vader_r_design": DESIGN_VADER_R.get(domain), "human_r_design": human,
                          "diff_ci95": [lo, hi], "beats_vader": beats,
                          "beats_human": None if human is None else bool(r_model > human)}
        table.append([domain, int(keep.sum()), r_model, mae, r_vader, DESIGN_VADER_R.get(domain), human,
                      f"[{lo:+.3f},{hi:+.3f}]", beats, "-" if human is None else ("yes" if r_model > human else "no")])
    return table, result


SCORE_HEADER = ["domain", "n", "model_r", "model_mae", "vader_r(run)", "vader_r(§9)", "human_r(§9)",
                "model-vader 95%CI", "beats VADER?", "beats human?"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=str(C.RESULTS_DIR))
    p.add_argument("--tag", default="")
    p.add_argument("--work-dir", default="/tmp/bench_accuracy", help="training run folder (last.pt, steps.jsonl)")
    p.add_argument("--config", default="tiny")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--no-ablation", action="store_true", help="skip the text-masked pass")
    C.add_data_args(p)
    C.add_train_args(p)
    args = p.parse_args(argv)
    started = time.perf_counter()
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    model, model_cfg, tokenizer, data, info = C.get_model(args, args.work_dir, log)
    device = C.pick_device(args.device)

    t0 = time.perf_counter()
    model_scores = C.evaluate_text(model, tokenizer, data.test_vader, args.eval_batch, device)
    lexicon = vader_lexicon([r.text for r in data.test_vader])
    rows, score_result = score_table(model_scores, lexicon, data.test_vader, args.bootstrap)
    scenes = C.evaluate_scenes(model, tokenizer, data.test_scenes, args.eval_batch, device,
                               ablation=not args.no_ablation)
    scene_lexicon_r = pearson(vader_lexicon([r.text for r in data.test_scenes]),
                                [r.score for r in data.test_scenes])
    eval_seconds = round(time.perf_counter() - t0, 1)

    det = scenes["detection"]
    masked = scenes.get("text_masked", {})
    det_rows = [["model", det["images"], det["map50"], det["map50_95"], scenes["score"]["pooled"]["pearson"]]]
    if masked:
        det_rows.append(["text masked", masked["detection"]["images"], masked["detection"]["map50"],
                         masked["detection"]["map50_95"], masked["score"]["pearson"]])
    det_rows.append(["VADER lexicon", "-", None, None, scene_lexicon_r])

    print(f"\naccuracy, model '{model_cfg.name}' ({info.get('trained_steps', 'checkpoint')} steps), "
          f"device {device}; held-out VADER test rows (text only):")
    print(C.table(SCORE_HEADER, rows))
    print("§9 = peer figures measured 2026-11-22 (not recomputed); vader_r(run) = vaderSentiment on these rows.")
    print(f"\nheld-out test scenes ({len(data.test_scenes)} images, texts from VADER test sentences):")
    print(C.table(["variant", "images", "mAP50", "mAP50-95", "score_r"], det_rows))
    name = f"bench_accuracy_{model_cfg.name}{('_' + args.tag) if args.tag else ''}.json"
    path = C.write_json(Path(args.out_dir) / name, {
        "args": vars(args), "environment": C.environment(), "data": data.describe(), "model": info,
        "score": score_result, "scenes": scenes, "scenes_vader_lexicon_r": scene_lexicon_r,
        "design_constants": {"source": "peer figures measured 2026-11-22 (team design notes)",
                             "vader_r": DESIGN_VADER_R, "human_r": DESIGN_HUMAN_R},
        "eval_seconds": eval_seconds, "seconds": round(time.perf_counter() - started, 1),
    })
    print(f"json: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
