"""Benchmarks: scripts that print a speed ratio against a baseline measured in the same run."""
import os
import platform

import torch

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'out')


def bench_log(name, settings, **results):
    """Write one run's settings and results to bench/out/{name}.jsonl (overwritten each run)."""
    from utils import ResultLogger
    machine = dict(torch=torch.__version__, torch_threads=torch.get_num_threads(), cpus=os.cpu_count(),
                   processor=platform.processor() or platform.machine(),
                   gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None)
    path = os.path.join(OUT_DIR, f'{name}.jsonl')
    with ResultLogger(path, **{**settings, **machine}) as log:
        log.log(**results)
    print(f'results written to {os.path.relpath(path)}')
