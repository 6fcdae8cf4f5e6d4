# Held-out code for bench/quant-quality.ts: written for lsc, not part of tiny-code's training
# data (the Python standard library).
import heapq
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(order=True)
class Job:
    priority: int
    name: str = field(compare=False)
    depends_on: list = field(default_factory=list, compare=False)


class Scheduler:
    """Runs jobs in priority order once everything they depend on has finished."""

    def __init__(self):
        self.jobs = {}
        self.waiting = defaultdict(set)
        self.done = []

    def add(self, job):
        if job.name in self.jobs:
            raise ValueError("duplicate job: %s" % job.name)
        self.jobs[job.name] = job
        for dep in job.depends_on:
            self.waiting[job.name].add(dep)

    def ready(self):
        heap = []
        for name, job in self.jobs.items():
            if name in self.done:
                continue
            if not self.waiting[name] - set(self.done):
                heapq.heappush(heap, job)
        return heap

    def run(self, action):
        while len(self.done) < len(self.jobs):
            heap = self.ready()
            if not heap:
                missing = [n for n in self.jobs if n not in self.done]
                raise RuntimeError("cycle among jobs: " + ", ".join(sorted(missing)))
            job = heapq.heappop(heap)
            action(job)
            self.done.append(job.name)
        return list(self.done)


def parse_line(line):
    """Parses 'name priority dep1,dep2' into a Job."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError("expected a name and a priority, got %r" % line)
    deps = parts[2].split(",") if len(parts) > 2 else []
    return Job(int(parts[1]), parts[0], deps)


def load(path):
    scheduler = Scheduler()
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                scheduler.add(parse_line(line))
            except ValueError as e:
                raise ValueError("%s:%d: %s" % (path, number, e)) from None
    return scheduler


def moving_average(values, width):
    total = 0.0
    out = []
    for i, v in enumerate(values):
        total += v
        if i >= width:
            total -= values[i - width]
        out.append(total / min(i + 1, width))
    return out


if __name__ == "__main__":
    import sys

    s = load(sys.argv[1])
    for name in s.run(lambda job: print("running", job.name)):
        print(name)
