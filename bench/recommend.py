"""「猜你喜欢」 offline: hit rate@5 of store.recommend.rank against best-sellers, on a generated history.

The history: services in clusters (a cluster shares a platform and tags, like 小红书 咖啡探店);
each customer favours one or two clusters and buys 2–6 services, mostly from them, by popularity
(Zipf), sometimes anything. Leave-one-out: for every customer, one purchase is hidden, the model is
fitted on everything else, and a hit is the hidden service among the 5 recommended for the rest
(what they already have is excluded from both methods). Seeds make the runs repeatable.

.venv/bin/python -m bench.recommend
.venv/bin/python -m bench.recommend --customers 5000 --services 400 --seeds 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from store.recommend import Item, Model, popular, rank

PLATFORMS = ("抖音", "小红书", "B站", "快手", "视频号", "微博")
TAGS = ("美妆", "咖啡", "探店", "数码", "母婴", "健身", "美食", "旅行", "家居", "穿搭", "宠物", "游戏")


def generate(
    rng: random.Random, services: int, customers: int, clusters: int
) -> tuple[dict[int, Item], list[set[int]]]:
    items: dict[int, Item] = {}
    members: list[list[int]] = [[] for _ in range(clusters)]
    for i in range(services):
        c = i % clusters
        tags = frozenset({TAGS[c % len(TAGS)], TAGS[(c * 5 + 3) % len(TAGS)]})
        items[i] = Item(i, PLATFORMS[c % len(PLATFORMS)], tags)
        members[c].append(i)
    weight = {i: 1 / (rank_in + 1) for m in members for rank_in, i in enumerate(m)}  # Zipf in a cluster
    everything = list(items)
    global_weight = [1 / (1 + (i * 7919) % services) ** 0.8 for i in everything]
    baskets = []
    for _ in range(customers):
        liked = rng.sample(range(clusters), rng.choice((1, 1, 2)))
        pool = [i for c in liked for i in members[c]]
        basket: set[int] = set()
        for _ in range(rng.randint(2, 6)):
            if rng.random() < 0.8:
                basket.add(rng.choices(pool, [weight[i] for i in pool])[0])
            else:
                basket.add(rng.choices(everything, global_weight)[0])
        if len(basket) >= 2:
            baskets.append(basket)
    return items, baskets


def evaluate(seed: int, services: int, customers: int, clusters: int, k: int) -> tuple[float, float, float]:
    rng = random.Random(seed)
    items, baskets = generate(rng, services, customers, clusters)
    held = [rng.choice(sorted(b)) for b in baskets]
    model = Model.fit(b - {h} for b, h in zip(baskets, held, strict=True))
    hits = base = 0
    started = time.perf_counter()
    for basket, hidden in zip(baskets, held, strict=True):
        rest = basket - {hidden}
        hits += hidden in rank(model, rest, items, k=k, exclude=rest)
        base += hidden in popular(model, items, k=k, exclude=rest)
    per_call = (time.perf_counter() - started) / len(baskets) * 1000
    return hits / len(baskets), base / len(baskets), per_call


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--clusters", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args(argv)
    ours, baseline = [], []
    for seed in range(args.seeds):
        hit, pop, ms = evaluate(seed, args.services, args.customers, args.clusters, args.k)
        ours.append(hit)
        baseline.append(pop)
        print(f"seed {seed}: co-occurrence {hit:.1%}  popularity {pop:.1%}  ({ms:.2f} ms per customer, both)")
    mean_ours, mean_base = statistics.mean(ours), statistics.mean(baseline)
    print(
        f"hit rate@{args.k}: co-occurrence + filling {mean_ours:.1%}, popularity {mean_base:.1%} "
        f"({mean_ours / mean_base:.1f}×)"
    )


if __name__ == "__main__":
    main()
