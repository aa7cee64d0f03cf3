"""Where a graph's influence on the logits sits: features, errors, the BOS token, other tokens.

A readable attribution graph has most of its influence in features; a graph whose influence
sits in error nodes is a weak transcoder set, and one whose influence sits in the BOS token is
an attribution artefact (see the BOS note in README.md, "Attribution: what is computed").

    python bench/influence_shares.py -t ../shared/transcoders/gemma-3-270m-plt-2k -t my-set
    python bench/influence_shares.py -t my-set --prompt "Fact: Michael Jordan plays the sport of"
    python bench/influence_shares.py -t my-set --featured

Prints one Markdown row per (transcoder set, prompt) and the mean per set.
"""

from __future__ import annotations

import argparse
import time

PROMPTS = [
    "Fact: Michael Jordan plays the sport of",
    "The capital of the state containing Dallas is",
    'The opposite of "small" is "',
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default="gemma-3-270m")
    ap.add_argument("-t", "--transcoders", action="append", required=True)
    ap.add_argument("--prompt", action="append", help="repeatable; default: three standard prompts")
    ap.add_argument("--featured", action="store_true", help="the setup's ten featured example prompts")
    ap.add_argument("--max-feature-nodes", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch

    import glassbox
    from glassbox.graph.prune import influence_shares

    if args.threads:
        torch.set_num_threads(args.threads)
    model = glassbox.load_model(args.model, device="cpu")
    prompts = args.prompt or PROMPTS
    if args.featured:
        from glassbox.examples import FEATURED

        prompts = [f.prompt for f in FEATURED]
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {args.model}, max_feature_nodes {args.max_feature_nodes}\n")
    print("| transcoders | prompt | features | errors | BOS token | other tokens | replacement |")
    print("|---|---|---|---|---|---|---|")
    for tc_path in args.transcoders:
        tcs = glassbox.load_transcoders(tc_path)
        rows = []
        for prompt in prompts:
            result = glassbox.trace(prompt, model=model, transcoders=tcs,
                                    max_feature_nodes=args.max_feature_nodes)
            sh = influence_shares(result.graph)
            rows.append(sh)
            shown = " ".join(prompt.split())[:60]
            print(f"| {tcs.name} | `{shown}` | {sh['features']:.1%} | {sh['errors']:.1%} | {sh['bos']:.1%} "
                  f"| {sh['other tokens']:.1%} | {result.replacement_score:.3f} |", flush=True)
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        print(f"| {tcs.name} | **mean** | {mean['features']:.1%} | {mean['errors']:.1%} | {mean['bos']:.1%} "
              f"| {mean['other tokens']:.1%} | |", flush=True)


if __name__ == "__main__":
    main()
