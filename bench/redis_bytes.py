"""Redis memory per thousand waiting endpoints: what the broker holds while endpoints wait for a worker.

    .venv/bin/python -m bench.redis_bytes [--endpoints 10000]

An endpoint with due work is awake: its wake row is in PostgreSQL, and Redis
holds one Celery message for it until a worker takes it (delivery.wakeups,
`send_task` as the product publishes it). This publishes that message for
`endpoints` endpoints into a queue of its own that no worker reads, reads
Redis's `used_memory` before and after, and deletes the queue. Prints the
bytes per thousand endpoints and the JSON.
"""

import argparse
import json
import os
import sys
import uuid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_bytes", description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=10_000)
    args = parser.parse_args(argv)
    import redis

    from bench import stack

    queue = f"bench-redis-bytes-{os.getpid()}"
    os.environ.update(stack.stack_env(database="postgres", queue=queue, ca_path=stack.ROOT / "none"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "webhooks_project.settings"
    import django

    django.setup()
    from celery import current_app

    from delivery.wakeups import SEND_TASK

    client = redis.Redis.from_url(stack.REDIS_URL)
    try:
        before = client.info("memory")["used_memory"]
        for _ in range(args.endpoints):
            current_app.send_task(SEND_TASK, args=[str(uuid.uuid4())], retry=False)
        waiting = client.llen(queue)
        after = client.info("memory")["used_memory"]
    finally:
        client.delete(queue)
    figures = {"endpoints": args.endpoints, "messages": waiting, "bytes": after - before,
               "bytes_per_thousand": (after - before) * 1000 / args.endpoints}
    print(f"{waiting:,} messages waiting: {after - before:,} B of Redis memory, "
          f"{figures['bytes_per_thousand'] / 1024:,.0f} KiB per thousand waiting endpoints")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
