"""Tokens per second of generate.generate against transformers' generate() on the same weights.

Random weights at GPT-2 124M's shape (12 layers, 768 wide, 12 heads, 1,024 positions, 50,257
tokens; transformers' GPT2LMHeadModel, which keeps its own key/value cache) and at GPT-1's (512
positions, 40,478 tokens; transformers' OpenAIGPTLMHeadModel, which has no cache and runs the whole
sequence again for each token). Greedy decoding of --gen_len tokens after a --prompt_len-token
prompt, in float32 and in bfloat16 (both sides' weights converted). Our model is exported with
hf_interop.export_hf and read back with from_pretrained, so both hold the same values. The repeats
interleave the two sides; each figure is the median. In float32 the two must give the same
tokens (the only failure); in bfloat16 the rounding differs between the two computations, so
the script prints how many leading tokens agree. Usage:

    python bench/bench_generate_hf.py [--shapes gpt2 gpt1] [--dtypes float32 bf16] [--repeats 3]
                                      [--gen_len 200] [--prompt_len 20] [--threads N]
"""
import argparse
import copy
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import bench_log  # noqa: E402
from generate import generate  # noqa: E402
from hf_interop import export_hf  # noqa: E402
from model_pytorch import LMModel, ModelConfig  # noqa: E402

SHAPES = {'gpt2': dict(arch='gpt2', n_vocab=50257, n_ctx=1024), 'gpt1': dict(arch='gpt1', n_vocab=40478, n_ctx=512)}
DTYPES = {'float32': torch.float32, 'bf16': torch.bfloat16}


def build_pair(shape, seed, workdir):
    """(our LMModel, transformers' model) of `shape` holding the same random weights, float32, eval mode."""
    import transformers
    s = SHAPES[shape]
    torch.manual_seed(seed)
    ours = LMModel(ModelConfig(arch=s['arch']), vocab=s['n_vocab'] + s['n_ctx'], n_ctx=s['n_ctx']).eval()
    folder = export_hf(ours, os.path.join(workdir, shape), n_vocab=s['n_vocab'])
    cls = transformers.GPT2LMHeadModel if shape == 'gpt2' else transformers.OpenAIGPTLMHeadModel
    return ours, cls.from_pretrained(folder).eval()


def time_ours(model, prompt, gen_len):
    start = time.perf_counter()
    out = generate(model, prompt, gen_len, greedy=True)
    return out, time.perf_counter() - start


def time_theirs(model, prompt, gen_len):
    ids = torch.tensor([prompt])
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=gen_len,
                             min_new_tokens=gen_len, pad_token_id=0, num_beams=1)
    return out[0, len(prompt):].tolist(), time.perf_counter() - start


def agreeing(a, b):
    """How many leading tokens of a and b are equal."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def run(shape, dtype, pair, args):
    """Time both sides --repeats times, interleaved; return a dict of the figures."""
    ours, theirs = (copy.deepcopy(m).to(DTYPES[dtype]) for m in pair)
    prompt = torch.randint(0, SHAPES[shape]['n_vocab'], (args.prompt_len,),
                           generator=torch.Generator().manual_seed(args.seed)).tolist()
    time_ours(ours, prompt, 4)
    time_theirs(theirs, prompt, 4)  # warm-up
    ours_s, theirs_s = [], []
    for _ in range(args.repeats):
        a, t = time_ours(ours, prompt, args.gen_len)
        ours_s.append(t)
        b, t = time_theirs(theirs, prompt, args.gen_len)
        theirs_s.append(t)
    same = agreeing(a, b)
    if dtype == 'float32':
        assert same == args.gen_len, f"{shape} float32: the tokens differ from step {same} on"
    rate_ours, rate_theirs = args.gen_len / statistics.median(ours_s), args.gen_len / statistics.median(theirs_s)
    return dict(shape=shape, dtype=dtype, ours_tokens_per_s=rate_ours, theirs_tokens_per_s=rate_theirs,
                ratio=rate_ours / rate_theirs, ours_s=ours_s, theirs_s=theirs_s, tokens_agreeing=same)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--shapes', nargs='+', default=['gpt2', 'gpt1'], choices=tuple(SHAPES))
    parser.add_argument('--dtypes', nargs='+', default=['float32', 'bf16'], choices=tuple(DTYPES))
    parser.add_argument('--gen_len', type=int, default=200)
    parser.add_argument('--prompt_len', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch decides)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import transformers
    print(f"random weights, {torch.get_num_threads()} threads, torch {torch.__version__}, transformers "
          f"{transformers.__version__}; prompt {args.prompt_len} tokens, {args.gen_len} new tokens, greedy, "
          f"median of {args.repeats}")
    print(f"{'shape':6} {'dtype':8} {'transformers':>14} {'this library':>14} {'ratio':>7}  tokens agreeing")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for shape in args.shapes:
            pair = build_pair(shape, args.seed, workdir)
            for dtype in args.dtypes:
                r = run(shape, dtype, pair, args)
                results.append(r)
                print(f"{shape:6} {dtype:8} {r['theirs_tokens_per_s']:9.2f} tok/s {r['ours_tokens_per_s']:9.2f} tok/s "
                      f"{r['ratio']:6.2f}x  {r['tokens_agreeing']} of {args.gen_len}", flush=True)
            del pair
    print("transformers: GPT2LMHeadModel.generate with its key/value cache (gpt2); OpenAIGPTLMHeadModel.generate, "
          "which has no cache (gpt1)")
    bench_log('bench_generate_hf', vars(args), results=results)


if __name__ == '__main__':
    main()
