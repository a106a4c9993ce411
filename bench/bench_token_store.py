"""Bounded memory of the token store: encode and pre-train on generated corpora up to 10x a memory limit.

    .venv/bin/python bench/bench_token_store.py [--sizes_mb 256 1024 5120] [--limit_mb 512] [--workdir /tmp]

For each corpus size the script writes a corpus of generated English-like text (random
sentences over a few hundred words, in files of --file_mb) under --workdir, then runs
`pretrain.py` itself in a child process, the whole job: the character vocabulary read
from the corpus, the token store encoded (in parallel processes, one per core) and
--updates updates of a small model on windows drawn from the memory-mapped store, then
the model written. The child runs inside a memory cgroup limited to --limit_mb (a cgroup
v1 `memory` group created under this process's own, removed afterwards; with
--no_cgroup, or where none can be created, without a limit). For each size it reports
the child's peak RSS (its own and its encoding workers': wait4's ru_maxrss), the
cgroup's peak usage (memory.max_usage_in_bytes: page cache included, so up to the limit
by construction) and how many times the cgroup hit its limit (failcnt, pages
reclaimed instead of a kill), and the wall time of the run. A child killed by the limit
is reported as such. The corpus and its store are deleted after each size; a size is
skipped when the disk lacks 4x its space (text, character ids of 2 bytes each, parts).
Flat peak RSS across sizes, with the largest corpus 10x the limit, is the claim shown.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_log  # noqa: E402

MB = 1 << 20
WORDS = ('the a of and to in was he that it his her with as had for she on at by not but be from they my '
         'which this all were you have one so an said there their when been what would who out if into more '
         'no old man up could time now them little then some its over like than only very before our upon '
         'great long came made after down went good back other about your much house night eyes day hand '
         'away through again saw never face thought come first head light where door room still life left '
         'know way look just well might must any looked even people voice felt once last while himself '
         'heart how here across moment turned something asked without around against nothing toward under '
         'between water better ship river garden morning letter window road children mother father king').split()


def text_pool(n_bytes, seed):
    """About n_bytes of random sentences (10 to 20 words, a capital, a full stop, a newline)."""
    rng = np.random.default_rng(seed)
    words = np.array(WORDS)
    lines, size = [], 0
    while size < n_bytes:
        s = ' '.join(words[rng.integers(0, len(words), rng.integers(10, 21))])
        lines.append(s[0].upper() + s[1:] + '.\n')
        size += len(lines[-1])
    return ''.join(lines)


def write_corpus(folder, size_mb, file_mb, seed=0):
    """About size_mb of text (within 4 MB) in files of file_mb (each a different rotation of
    one pool of generated sentences, cut at a line end); returns the bytes written."""
    os.makedirs(folder, exist_ok=True)
    pool = text_pool(4 * MB, seed)
    rng = np.random.default_rng(seed)
    written, i = 0, 0
    while size_mb * MB - written > len(pool):  # the last file at least a pool long: whole lines to cut at
        n = min(file_mb * MB, size_mb * MB - written)
        cut = pool.index('\n', int(rng.integers(0, len(pool) // 2))) + 1
        rotated = (pool[cut:] + pool[:cut]).encode()
        path = os.path.join(folder, f'{i:05d}.txt')
        with open(path + '.tmp', 'wb') as f:
            for _ in range(n // len(rotated)):
                f.write(rotated)
            tail = rotated[:n % len(rotated)]
            f.write(tail[:tail.rfind(b'\n') + 1])
        os.replace(path + '.tmp', path)
        written += os.path.getsize(path)
        i += 1
    return written


def make_cgroup(limit_mb, name):
    """A cgroup v1 memory group under this process's own, limited to limit_mb; returns its
    path, or None when it cannot be made (no cgroup v1 memory controller, no permission)."""
    try:
        with open('/proc/self/cgroup') as f:
            own = next(line.split(':', 2)[2].strip() for line in f if line.split(':')[1] == 'memory')
        path = os.path.join('/sys/fs/cgroup/memory' + own, name)
        os.mkdir(path)
        with open(os.path.join(path, 'memory.limit_in_bytes'), 'w') as f:
            f.write(str(limit_mb * MB))
        return path
    except (OSError, StopIteration):
        return None


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def run_child(corpus, work, opts, cgroup):
    """pretrain.py on `corpus` in a child process (inside `cgroup` when given). Returns a
    dict: returncode, max_rss_mb (wait4), seconds, and the cgroup's peak and failcnt."""
    cmd = [sys.executable, os.path.join(ROOT, 'pretrain.py'), '--data', corpus, '--tokenizer', 'char',
           '--n_layer', '2', '--n_embd', '64', '--n_head', '2', '--n_ctx', str(opts.n_ctx), '--n_batch', '16',
           '--n_iter', '1', '--max_updates', str(opts.updates), '--eval_every', '0', '--warmup_updates', '10',
           '--valid_fraction', '0', '--device', 'cpu', '--desc', 'store', '--save_dir', os.path.join(work, 'save'),
           '--log_dir', os.path.join(work, 'log'), '--cache_dir', os.path.join(work, 'cache')]

    def enter_cgroup():
        with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as f:
            f.write(str(os.getpid()))

    t = time.perf_counter()
    child = subprocess.Popen(cmd, preexec_fn=enter_cgroup if cgroup else None, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read().decode(errors='replace')
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    result = dict(returncode=child.returncode, max_rss_mb=usage.ru_maxrss / 1024, seconds=time.perf_counter() - t,
                  stderr_tail=stderr.strip().splitlines()[-1:] if child.returncode else [])
    if cgroup:
        result.update(cgroup_peak_mb=read_int(os.path.join(cgroup, 'memory.max_usage_in_bytes')) / MB,
                      cgroup_failcnt=read_int(os.path.join(cgroup, 'memory.failcnt')))
    return result


def store_sizes(work):
    """(tokens, bytes) of the store the child built."""
    cache = os.path.join(work, 'cache')
    folder = next(os.path.join(cache, n) for n in os.listdir(cache) if not n.startswith('.'))
    with open(os.path.join(folder, 'meta.json')) as f:
        meta = json.load(f)
    size = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
    return meta['n_train_tokens'] + meta['n_valid_tokens'], size


def bench_size(size_mb, opts, index):
    """Write a corpus of size_mb, run the child on it, delete both; returns the results dict."""
    free_mb = shutil.disk_usage(opts.workdir).free / MB
    if free_mb < 4 * size_mb + 2048:
        print(f"{size_mb} MB: skipped, {free_mb:.0f} MB free on {opts.workdir} (needs {4 * size_mb + 2048})")
        return dict(size_mb=size_mb, skipped=f"{free_mb:.0f} MB free")
    work = tempfile.mkdtemp(dir=opts.workdir, prefix='bench_token_store.')
    cgroup = None if opts.no_cgroup else make_cgroup(opts.limit_mb, f'bench_token_store_{os.getpid()}_{index}')
    try:
        t = time.perf_counter()
        n_bytes = write_corpus(os.path.join(work, 'corpus'), size_mb, opts.file_mb, seed=index)
        generated_s = time.perf_counter() - t
        result = dict(size_mb=n_bytes / MB, generate_s=generated_s, limit_mb=opts.limit_mb if cgroup else None,
                      **run_child(os.path.join(work, 'corpus'), work, opts, cgroup))
        if result['returncode'] == 0:
            result['store_tokens'], store_bytes = store_sizes(work)
            result['store_mb'] = store_bytes / MB
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cgroup:
            os.rmdir(cgroup)
    limit = f"limit {opts.limit_mb} MB" if cgroup else "no limit"
    outcome = "ok" if result['returncode'] == 0 else f"FAILED (exit {result['returncode']}: {result['stderr_tail']})"
    cg = f", cgroup peak {result['cgroup_peak_mb']:.0f} MB, hit the limit {result['cgroup_failcnt']} times" \
        if cgroup else ""
    print(f"corpus {result['size_mb']:8.0f} MB ({result['size_mb'] / opts.limit_mb:5.1f}x the limit), {limit}: "
          f"{outcome}; peak RSS {result['max_rss_mb']:.0f} MB{cg}; pretrain.py {result['seconds']:.0f} s "
          f"(corpus written in {generated_s:.0f} s)")
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--sizes_mb', type=int, nargs='+', default=[256, 1024, 5120], help='corpus sizes to run')
    p.add_argument('--limit_mb', type=int, default=512, help="the cgroup's memory limit")
    p.add_argument('--file_mb', type=int, default=128, help='size of each generated file')
    p.add_argument('--updates', type=int, default=50, help='updates of the small model on the store')
    p.add_argument('--n_ctx', type=int, default=256)
    p.add_argument('--workdir', default=tempfile.gettempdir(), help='where the corpora and stores are written')
    p.add_argument('--no_cgroup', action='store_true', help='run without a memory limit')
    opts = p.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{shutil.disk_usage(opts.workdir).free / MB / 1024:.0f} GB free on {opts.workdir}")
    results = [bench_size(size, opts, i) for i, size in enumerate(opts.sizes_mb)]
    done = [r for r in results if r.get('returncode') == 0]
    if done:
        rss = [r['max_rss_mb'] for r in done]
        print(f"peak RSS from {min(r['size_mb'] for r in done):.0f} MB to {max(r['size_mb'] for r in done):.0f} MB of "
              f"text: {min(rss):.0f} to {max(rss):.0f} MB")
    bench_log('bench_token_store', vars(opts), runs=results)


if __name__ == '__main__':
    main()
