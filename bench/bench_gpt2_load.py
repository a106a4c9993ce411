"""Loading GPT-2's release format: time and peak memory against transformers' from_pretrained.

    python bench/bench_gpt2_load.py [--n_layer 12 --n_embd 768 --n_head 12 --n_ctx 1024 --n_vocab 50257]
                                    [--repeats 3] [--workdir /tmp]

Writes a checkpoint in the release's format (hparams.json, checkpoint, model.ckpt.index,
model.ckpt.data-00000-of-00001; tf_checkpoint.write_gpt2_checkpoint, random values) at the given
shapes, GPT-2 124M's by default, into a temporary folder under --workdir, and the same weights as
a Hugging Face gpt2 folder (export_hf: config.json, model.safetensors). Then, --repeats times, two
fresh child processes each load one of them:

- ours: an LMModel (arch 'gpt2') built from hparams.json, then weights.load_pretrained: the index
  parsed, each tensor memory-mapped, its CRC32C and values checked, then copied;
- transformers: GPT2LMHeadModel.from_pretrained of the Hugging Face folder.

Each child reports its wall time (ours: building the model and loading it, also apart) up to
the model's first forward pass of a few tokens and with it, and its peak resident memory
(VmHWM, reset through /proc/self/clear_refs) through that pass above what it held after its
imports, as a multiple of the data file's size (ours: also the peak above the built model). The
ratios are taken with the first forward, since transformers' from_pretrained maps
model.safetensors and reads each weight only when it is first used. The logits of the two must
agree (the only failure). Both read files the writer just wrote, so from the page cache.
Building our model draws its random initialisation, which the load then overwrites;
from_pretrained skips it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_log  # noqa: E402

MB = 1 << 20
TOKENS = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]  # taken modulo the vocabulary's size

CHILD = r'''
import json, os, sys, time
sys.path.insert(0, {root!r})


def status(field):
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ':'))


def reset_peak():
    with open('/proc/self/clear_refs', 'w') as f:  # '5': VmHWM starts again from VmRSS
        f.write('5')


how, folder, out = sys.argv[1:4]
tokens = {tokens!r}
import torch
if how == 'ours':
    import weights
    from model_pytorch import LMModel, ModelConfig
    from tf_checkpoint import read_hparams
else:
    from transformers import GPT2LMHeadModel  # its modules imported before the clock starts, as ours are
base = status('VmRSS')
reset_peak()
t0 = time.perf_counter()
if how == 'ours':
    hp = read_hparams(folder)
    model = LMModel(ModelConfig(n_embd=hp['n_embd'], n_head=hp['n_head'], n_layer=hp['n_layer'], arch='gpt2'),
                    vocab=hp['n_vocab'] + hp['n_ctx'], n_ctx=hp['n_ctx'])
    t1 = time.perf_counter()
    built, build_peak = status('VmRSS'), status('VmHWM')
    reset_peak()
    weights.load_pretrained(model, folder)
else:
    model = GPT2LMHeadModel.from_pretrained(folder)
    t1, built, build_peak = t0, base, base
t2 = time.perf_counter()
model.eval()
x = torch.tensor([tokens])
with torch.no_grad():  # reads every weight: transformers' from_pretrained maps the file and reads it only now
    if how == 'ours':
        n_vocab = hp['n_vocab']
        logits = model(torch.stack([x, n_vocab + torch.arange(x.size(1))[None]], dim=-1))[..., :n_vocab]
    else:
        logits = model(x).logits
t3 = time.perf_counter()
peak = status('VmHWM')
torch.save(logits, out)
print(json.dumps(dict(seconds=t2 - t0, build_s=t1 - t0, load_s=t2 - t1, ready_s=t3 - t0,
                      added=max(build_peak, peak) - base, load_added=peak - built)))
'''


def write_checkpoints(folder, hparams):
    """The release's format in folder/release and the same weights as a Hugging Face folder in folder/hf."""
    import weights
    from hf_interop import export_hf
    from model_pytorch import LMModel, ModelConfig
    from tf_checkpoint import write_gpt2_checkpoint
    release = os.path.join(folder, 'release')
    write_gpt2_checkpoint(release, hparams, seed=0)
    cfg = ModelConfig(n_embd=hparams['n_embd'], n_head=hparams['n_head'], n_layer=hparams['n_layer'], arch='gpt2')
    model = LMModel(cfg, vocab=hparams['n_vocab'] + hparams['n_ctx'], n_ctx=hparams['n_ctx'])
    weights.load_pretrained(model, release)
    hf = export_hf(model, os.path.join(folder, 'hf'), n_vocab=hparams['n_vocab'], n_special=0)
    return release, hf


def run_child(how, folder, out, tokens):
    code = CHILD.format(root=ROOT, tokens=tokens)
    proc = subprocess.run([sys.executable, '-c', code, how, folder, out], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        sys.exit(f"FAIL: the {how} child exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(values):
    return dict(median=statistics.median(values), min=min(values), max=max(values))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in (('n_vocab', 50257), ('n_ctx', 1024), ('n_embd', 768), ('n_head', 12), ('n_layer', 12)):
        p.add_argument(f'--{name}', type=int, default=default, help=f'hparams.json\'s {name} (default {default})')
    p.add_argument('--repeats', type=int, default=3, help='child processes of each kind (default 3)')
    p.add_argument('--workdir', default=None, help='where the temporary checkpoints go (default: the system temp)')
    args = p.parse_args(argv)
    import torch
    hparams = {k: getattr(args, k) for k in ('n_vocab', 'n_ctx', 'n_embd', 'n_head', 'n_layer')}
    tokens = [t % args.n_vocab for t in TOKENS][:args.n_ctx]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        release, hf = write_checkpoints(tmp, hparams)
        size = os.path.getsize(os.path.join(release, 'model.ckpt.data-00000-of-00001'))
        print(f"checkpoint: {args.n_layer} x {args.n_embd}, {args.n_ctx} positions, {args.n_vocab} tokens: "
              f"model.ckpt.data {size / MB:.1f} MiB, model.ckpt.index "
              f"{os.path.getsize(os.path.join(release, 'model.ckpt.index')) / 1024:.1f} KiB")
        runs = {'ours': [], 'transformers': []}
        max_diff = 0.0
        for r in range(args.repeats):
            logits = {}
            for how, folder in (('ours', release), ('transformers', hf)):
                out = os.path.join(tmp, f'{how}.pt')
                runs[how].append(run_child(how, folder, out, tokens))
                logits[how] = torch.load(out)
            max_diff = max(max_diff, float((logits['ours'] - logits['transformers']).abs().max()))
            o, t = runs['ours'][-1], runs['transformers'][-1]
            print(f"run {r + 1}: ours {o['seconds']:.2f} s (build {o['build_s']:.2f} + load {o['load_s']:.2f}; with "
                  f"the first forward {o['ready_s']:.2f}), +{o['added'] / MB:.0f} MiB = {o['added'] / size:.2f}x (the "
                  f"load +{o['load_added'] / MB:.0f} MiB over the built model); transformers {t['seconds']:.2f} s "
                  f"(with the first forward {t['ready_s']:.2f}), +{t['added'] / MB:.0f} MiB = {t['added'] / size:.2f}x")
    results = {how: {k: summary([r[k] for r in rs]) for k in rs[0]} for how, rs in runs.items()}
    o, t = results['ours'], results['transformers']
    print(f"ours, build + load: median {o['seconds']['median']:.2f} s (load alone {o['load_s']['median']:.2f} s; "
          f"with the first forward {o['ready_s']['median']:.2f} s), peak memory +{o['added']['median'] / size:.2f}x "
          f"the data file (the load +{o['load_added']['median'] / size:.2f}x over the built model)")
    print(f"transformers from_pretrained: median {t['seconds']['median']:.2f} s (with the first forward "
          f"{t['ready_s']['median']:.2f} s), peak memory +{t['added']['median'] / size:.2f}x the data file")
    speed = t['ready_s']['median'] / o['ready_s']['median']
    load_speed = t['ready_s']['median'] / (o['ready_s']['median'] - o['build_s']['median'])
    memory = t['added']['median'] / o['added']['median']
    print(f"ratio transformers / ours, to the first forward: time {speed:.2f}x (without our build "
          f"{load_speed:.2f}x), peak memory {memory:.2f}x")
    same = max_diff <= 1e-4
    print(f"same logits (max difference {max_diff:.2e}): {same}")
    bench_log('bench_gpt2_load', vars(args), data_bytes=size, ours=o, transformers=t, time_ratio=speed,
              load_time_ratio=load_speed,
              memory_ratio=memory, ours_memory_x=o['added']['median'] / size, max_logit_diff=max_diff)
    if not same:
        sys.exit(f"FAIL: the two loads give logits {max_diff:.2e} apart")
    return results


if __name__ == '__main__':
    main()
